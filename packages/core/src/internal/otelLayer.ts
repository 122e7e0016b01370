/**
 * Spans and metrics through the global providers the application registered (`OpenTelemetry.layerGlobal`, and the
 * Promise facade's runtime).
 *
 * @internal
 */
import type * as OtelApi from "@opentelemetry/api"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MetricBridge from "./metricBridge.js"
import * as OtelGlobal from "./otelGlobal.js"
import * as OtelTracer from "./otelTracer.js"
import { SCOPE_NAME, VERSION } from "./version.js"

/** Renew's own spans; the scope of any other span is the caller's choice. @internal */
export const isRenewSpan = (name: string): boolean => name.startsWith("renew.")

type Resolved = { readonly api: OtelGlobal.Api; readonly tracer: OtelApi.Tracer }

/** Global tracers by scope, obtained again when the registered provider changes. */
const globalTracers = (): (name: string) => Resolved | undefined => {
  let provider: unknown
  let renew: Resolved | undefined
  let other: Resolved | undefined
  return (name) => {
    const registered = OtelGlobal.registered()?.trace
    if (registered === undefined) return undefined
    if (registered !== provider) {
      const api = OtelGlobal.loadApi()
      if (api === undefined) return undefined
      provider = registered
      renew = { api, tracer: api.trace.getTracer(SCOPE_NAME, VERSION) }
      other = { api, tracer: api.trace.getTracer("effect") }
    }
    return isRenewSpan(name) ? renew : other
  }
}

const globalMeter = (): () => OtelApi.Meter | undefined => {
  let provider: unknown
  let meter: OtelApi.Meter | undefined
  return () => {
    const registered = OtelGlobal.registered()?.metrics
    if (registered === undefined) return undefined
    if (registered !== provider) {
      const api = OtelGlobal.loadApi()
      if (api === undefined) return undefined
      provider = registered
      meter = api.metrics.getMeter(SCOPE_NAME, VERSION)
    }
    return meter
  }
}

/** @internal */
export const global = (options: { readonly activeContextAsParent: boolean }): Layer.Layer<never> =>
  Layer.mergeAll(
    Layer.unwrapEffect(Effect.map(
      Effect.tracer,
      (fallback) => Layer.setTracer(OtelTracer.make(globalTracers(), fallback, options))
    )),
    Layer.scopedDiscard(Effect.acquireRelease(
      Effect.sync(() => MetricBridge.addMeterSource(globalMeter())),
      (remove) => Effect.sync(remove)
    ))
  )
