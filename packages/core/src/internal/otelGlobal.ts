/**
 * What the application registered with the OpenTelemetry API, read without loading the API: `@opentelemetry/api` is
 * an optional peer, and loading it costs tens of milliseconds that an application without an SDK should not pay.
 *
 * @internal
 */
import type * as OtelApi from "@opentelemetry/api"
import * as Context from "effect/Context"
import * as Tracer from "effect/Tracer"
import { createRequire } from "node:module"

/** @internal */
export type Api = typeof OtelApi

/**
 * Where every copy of the OpenTelemetry API 1.x in the process keeps the global TracerProvider, MeterProvider and
 * ContextManager (`@opentelemetry/api`'s `internal/global-utils`): shared by design, so a copy loaded by the
 * application and ours see the same registrations.
 */
const GLOBAL_KEY = Symbol.for("opentelemetry.js.api.1")

interface Registered {
  readonly trace?: unknown
  readonly metrics?: unknown
  readonly context?: unknown
}

/** @internal */
export const registered = (): Registered | undefined =>
  (globalThis as { [GLOBAL_KEY]?: Registered })[GLOBAL_KEY]

let api: Api | null | undefined

/** The OpenTelemetry API, loaded on first use; `undefined` when it is not installed. @internal */
export const loadApi = (): Api | undefined => {
  if (api === undefined) {
    try {
      // Synchronous, so a Promise caller's active context can be read during its call.
      api = createRequire(import.meta.url)("@opentelemetry/api") as Api
    } catch {
      api = null
    }
  }
  return api ?? undefined
}

/** The API when the application registered a global TracerProvider. @internal */
export const tracingApi = (): Api | undefined => registered()?.trace !== undefined ? loadApi() : undefined

/**
 * The OpenTelemetry context a span of ours was started in (for its children: baggage and the caller's span), or that
 * a Promise caller was in.
 *
 * @internal
 */
export class OtelContext extends Context.Tag("@renew/core/internal/OtelContext")<OtelContext, OtelApi.Context>() {}

/**
 * The active OpenTelemetry span of the code calling the Promise facade, as the parent for the spans of its call;
 * `undefined` without a registered TracerProvider or an active span.
 *
 * @internal
 */
export const callerSpan = (): Tracer.ExternalSpan | undefined => {
  const otel = tracingApi()
  if (otel === undefined) return undefined
  const active = otel.context.active()
  const span = otel.trace.getSpan(active)
  if (span === undefined) return undefined
  const spanContext = span.spanContext()
  if (!otel.isSpanContextValid(spanContext)) return undefined
  return Tracer.externalSpan({
    traceId: spanContext.traceId,
    spanId: spanContext.spanId,
    sampled: (spanContext.traceFlags & 1) === 1,
    context: Context.make(OtelContext, active)
  })
}
