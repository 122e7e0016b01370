/**
 * An Effect `Tracer` that records spans through the OpenTelemetry API, with OpenTelemetry's conventions where Effect's
 * own bridge (`@effect/opentelemetry`) departs from them:
 * - a span that succeeds keeps status UNSET (instrumentation libraries leave OK to the application);
 * - a failed span has status ERROR, `error.type` (the error's `_tag`) and one exception event with the type and the
 *   message; an expected failure has no stack, a defect's stack keeps file names only (no deployment paths);
 * - stack-like attributes Effect adds (`code.stacktrace`, a logged `effect.cause`) keep file names only;
 * - while a CLIENT span of ours is current, the active OpenTelemetry context suppresses tracing of HTTP
 *   instrumentations (undici, http), so each token request is exactly one CLIENT span.
 *
 * @internal
 */
import type * as OtelApi from "@opentelemetry/api"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Exit from "effect/Exit"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { type Api, OtelContext, registered } from "./otelGlobal.js"

/** `@opentelemetry/core`'s `suppressTracing` key: the API's `createContextKey` is `Symbol.for` its description. */
const SUPPRESS_TRACING = Symbol.for("OpenTelemetry SDK Context Key SUPPRESS_TRACING")

/** A span's tracer, or `undefined` to leave the span to the fallback tracer. @internal */
export type TracerFor = (spanName: string) => { readonly api: Api; readonly tracer: OtelApi.Tracer } | undefined

const hrTime = (nanos: bigint): OtelApi.HrTime => [Number(nanos / 1_000_000_000n), Number(nanos % 1_000_000_000n)]

/**
 * File names instead of absolute paths (`/srv/app/node_modules/x/y.js:1:2` → `y.js:1:2`, also `file://` URLs and
 * Windows paths) in a stack-like text.
 *
 * @internal
 */
export const stripPaths = (text: string): string =>
  text.replace(/(^|[\s(@])(?:file:\/\/)?(?:[A-Za-z]:)?(?:[\\/][^\\/\s():]+)*[\\/]([^\\/\s():]+)/g, "$1$2")

const STACK_LIKE = new Set(["code.stacktrace", "effect.cause", "exception.stacktrace"])

const attributeValue = (key: string, value: unknown): OtelApi.AttributeValue | undefined => {
  switch (typeof value) {
    case "string":
      return STACK_LIKE.has(key) ? stripPaths(value) : value
    case "number":
    case "boolean":
      return value
    case "bigint":
      return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
    case "undefined":
      return undefined
    default:
      if (value === null) return undefined
      if (Array.isArray(value) && value.every((item) => ["string", "number", "boolean"].includes(typeof item))) {
        return value as OtelApi.AttributeValue
      }
      // Objects as Effect renders them (a Redacted value stays "<redacted>").
      return Inspectable.toStringUnknown(value)
  }
}

const attributesOf = (record: Record<string, unknown> | undefined): OtelApi.Attributes | undefined => {
  if (record === undefined) return undefined
  const out: OtelApi.Attributes = {}
  for (const key of Object.keys(record)) {
    const value = attributeValue(key, record[key])
    if (value !== undefined) out[key] = value
  }
  return out
}

const spanContextOf = (span: Tracer.AnySpan): OtelApi.SpanContext =>
  span instanceof BridgeSpan ? span.span.spanContext() : {
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.sampled ? 1 : 0,
    isRemote: span._tag === "ExternalSpan"
  }

/** The context a child of `parent` starts in. */
const contextOfParent = (api: Api, parent: Tracer.AnySpan): OtelApi.Context => {
  if (parent instanceof BridgeSpan) return parent.otelContext
  const captured = Context.getOption(parent.context, OtelContext)
  if (Option.isSome(captured)) return captured.value
  return api.trace.setSpanContext(api.ROOT_CONTEXT, spanContextOf(parent))
}

/** The type of a failure for `error.type`: the `_tag` of Renew's errors, else the error's name. */
const errorTypeOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    if ("_tag" in error && typeof error._tag === "string") return error._tag
    if (error instanceof Error) return error.name
  }
  return "_OTHER"
}

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : Inspectable.toStringUnknown(error)

class BridgeSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly span: OtelApi.Span
  /** The context this span's children start in. */
  readonly otelContext: OtelApi.Context
  readonly spanId: string
  readonly traceId: string
  readonly sampled: boolean
  readonly parent: Option.Option<Tracer.AnySpan>
  readonly attributes = new Map<string, unknown>()
  status: Tracer.SpanStatus

  constructor(
    readonly api: Api,
    tracer: OtelApi.Tracer,
    readonly name: string,
    parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    readonly links: Array<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind,
    options: Tracer.SpanOptions | undefined,
    activeContextAsParent: boolean
  ) {
    let parentContext: OtelApi.Context
    if (Option.isSome(parent)) {
      this.parent = parent
      parentContext = contextOfParent(api, parent.value)
    } else if (options?.root === true || !activeContextAsParent) {
      this.parent = Option.none()
      parentContext = api.trace.deleteSpan(api.context.active())
    } else {
      // An OpenTelemetry-instrumented caller's active span, when Effect code runs inside one.
      parentContext = api.context.active()
      const active = api.trace.getSpan(parentContext)?.spanContext()
      this.parent = active !== undefined && api.isSpanContextValid(active)
        ? Option.some(Tracer.externalSpan({
          traceId: active.traceId,
          spanId: active.spanId,
          sampled: (active.traceFlags & 1) === 1
        }))
        : Option.none()
    }
    this.span = tracer.startSpan(name, {
      kind: KINDS[kind],
      startTime: hrTime(startTime),
      ...(links.length > 0 ? { links: links.map(linkOf) } : {})
    }, parentContext)
    this.otelContext = api.trace.setSpan(parentContext, this.span)
    const spanContext = this.span.spanContext()
    this.spanId = spanContext.spanId
    this.traceId = spanContext.traceId
    this.sampled = (spanContext.traceFlags & 1) === 1
    this.status = { _tag: "Started", startTime }
  }

  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
    const converted = attributeValue(key, value)
    if (converted !== undefined) this.span.setAttribute(key, converted)
  }

  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    this.span.addEvent(name, attributesOf(attributes), hrTime(startTime))
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
    this.span.addLinks(links.map(linkOf))
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    const time = hrTime(endTime)
    // Success and interruption leave the status UNSET.
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      const failure = Cause.failureOption(exit.cause)
      const error = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
      const type = errorTypeOf(error)
      const message = messageOf(error)
      const stack = Option.isNone(failure) && error instanceof Error && error.stack !== undefined
        ? { stack: stripPaths(error.stack) }
        : {}
      this.span.recordException({ name: type, message, ...stack }, time)
      if (!this.attributes.has("error.type")) this.span.setAttribute("error.type", type)
      this.span.setStatus({ code: this.api.SpanStatusCode.ERROR, message })
    }
    this.span.end(time)
  }
}

const KINDS: Record<Tracer.SpanKind, OtelApi.SpanKind> = {
  internal: 0 as OtelApi.SpanKind.INTERNAL,
  server: 1 as OtelApi.SpanKind.SERVER,
  client: 2 as OtelApi.SpanKind.CLIENT,
  producer: 3 as OtelApi.SpanKind.PRODUCER,
  consumer: 4 as OtelApi.SpanKind.CONSUMER
}

const linkOf = (link: Tracer.SpanLink): OtelApi.Link => {
  const attributes = attributesOf(link.attributes)
  return { context: spanContextOf(link.span), ...(attributes !== undefined ? { attributes } : {}) }
}

/**
 * An Effect tracer over OpenTelemetry tracers: spans `tracerFor` gives a tracer for are recorded through it, the
 * others through `fallback` (Effect's own tracer while no provider is registered).
 *
 * With `activeContextAsParent`, a span without an Effect parent is the child of the active OpenTelemetry span, as for
 * Effect code run from an OpenTelemetry-instrumented handler. The Promise facade turns it off and passes each caller's
 * span explicitly: a fiber resumes on Effect's scheduler, whose turn may run in another request's async context.
 *
 * @internal
 */
export const make = (
  tracerFor: TracerFor,
  fallback: Tracer.Tracer,
  options: { readonly activeContextAsParent: boolean }
): Tracer.Tracer => {
  // Making the current span the active OpenTelemetry context costs a Context per fiber step: only worth it when a
  // context manager is registered (without one, the API drops the context anyway). Checked again at each span start.
  const contextManager = () => registered()?.context !== undefined
  let propagate = contextManager()
  return Tracer.make({
    span(name, parent, context, links, startTime, kind, spanOptions) {
      const resolved = tracerFor(name)
      if (resolved === undefined) return fallback.span(name, parent, context, links, startTime, kind, spanOptions)
      propagate = contextManager()
      return new BridgeSpan(
        resolved.api,
        resolved.tracer,
        name,
        parent,
        context,
        links.slice(),
        startTime,
        kind,
        spanOptions,
        options.activeContextAsParent
      )
    },
    context(execution, fiber) {
      const current = fiber.currentSpan
      if (!propagate || !(current instanceof BridgeSpan)) return fallback.context(execution, fiber)
      const active = current.kind === "client"
        ? current.otelContext.setValue(SUPPRESS_TRACING, true)
        : current.otelContext
      return current.api.context.with(active, execution)
    }
  })
}
