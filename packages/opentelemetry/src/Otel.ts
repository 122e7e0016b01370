/**
 * OpenTelemetry export for Renew: the `renew.*` spans and metrics of `@renew/core` sent over OTLP/HTTP to Jaeger v2,
 * an OpenTelemetry Collector, Tempo, or any OTLP backend, plus a logger that stamps every log line with the current
 * trace and span ids.
 *
 * - `layer(options)`: explicit configuration.
 * - `layerConfig`: the standard `OTEL_*` environment variables, read through Effect `Config`. Without an endpoint it
 *   is `Layer.empty`, so it can always be provided.
 * - `logger`: Effect's default logger, plus `trace_id` and `span_id`.
 *
 * Closing the layer flushes: spans and metrics recorded before the scope closes are exported before it finishes
 * closing (bounded by `shutdownTimeout`), so a CLI that exits right after a refresh still gets its trace out.
 *
 * @since 0.1.0
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtelResource from "@effect/opentelemetry/Resource"
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { OTLPMetricExporter as OTLPMetricExporterJson } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPMetricExporter as OTLPMetricExporterProto } from "@opentelemetry/exporter-metrics-otlp-proto"
import { OTLPTraceExporter as OTLPTraceExporterJson } from "@opentelemetry/exporter-trace-otlp-http"
import { OTLPTraceExporter as OTLPTraceExporterProto } from "@opentelemetry/exporter-trace-otlp-proto"
import { MeterProvider, type MetricProducer, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Tracer from "effect/Tracer"
import * as OtelApi from "@opentelemetry/api"
import { OpenTelemetry } from "@renew/core"

/**
 * The OTLP/HTTP encoding. Jaeger v2 and the Collector accept both on port 4318.
 *
 * @since 0.1.0
 * @category models
 */
export type Protocol = "http/protobuf" | "http/json"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `service.name` of the resource: the service Jaeger lists. */
  readonly serviceName: string
  /** `service.version` of the resource. */
  readonly serviceVersion?: string | undefined
  /**
   * The OTLP/HTTP base URL, e.g. `http://localhost:4318`. Traces go to `${endpoint}/v1/traces`, metrics to
   * `${endpoint}/v1/metrics`.
   */
  readonly endpoint: string
  /** Default `http/protobuf`. */
  readonly protocol?: Protocol | undefined
  /** Extra resource attributes (`deployment.environment.name`, `service.namespace`, …). */
  readonly resourceAttributes?: Readonly<Record<string, string>> | undefined
  /**
   * Headers sent with every export (for example a backend's API key). They are handed to the exporter only, never
   * recorded anywhere.
   */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  /**
   * Export the `renew_*` metrics too (to `${endpoint}/v1/metrics`). Default off: Jaeger takes traces only. `true`
   * exports every 60 seconds and on shutdown.
   */
  readonly metrics?: boolean | { readonly exportIntervalMillis?: number | undefined } | undefined
  /** The longest a shutdown waits for the final flush. Default 3 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

/** Fully resolved settings, shared by `layer` and `layerConfig`. */
interface Resolved {
  readonly serviceName: string
  readonly serviceVersion: string | undefined
  readonly resourceAttributes: Readonly<Record<string, string>>
  readonly traces: { readonly url: string; readonly protocol: Protocol; readonly headers: Record<string, string> } | undefined
  readonly metrics:
    | {
      readonly url: string
      readonly protocol: Protocol
      readonly headers: Record<string, string>
      readonly exportIntervalMillis: number | undefined
    }
    | undefined
  readonly shutdownTimeout: Duration.DurationInput | undefined
}

/** Appends a signal path to an OTLP base URL, as the OTLP exporter specification does. */
const signalUrl = (base: string, signal: "traces" | "metrics"): string => `${base.replace(/\/+$/, "")}/v1/${signal}`

const revealHeaders = (
  headers: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    out[name] = Redacted.isRedacted(value) ? Redacted.value(value) : value
  }
  return out
}

/**
 * Effect's own metrics other than Renew's (the application's), as `@effect/opentelemetry` exports them; Renew's are
 * recorded through the MeterProvider instead, with their units and the `@renew/core` scope.
 */
const otherEffectMetrics = (producer: MetricProducer): MetricProducer => ({
  collect: (options) =>
    producer.collect(options).then((result) => ({
      ...result,
      resourceMetrics: {
        ...result.resourceMetrics,
        scopeMetrics: result.resourceMetrics.scopeMetrics
          .map((scope) => ({
            ...scope,
            metrics: scope.metrics.filter((metric) => !OpenTelemetry.metricNames.has(metric.descriptor.name))
          }))
          .filter((scope) => scope.metrics.length > 0)
      }
    }))
})

/** Flushes, then shuts down, within the shutdown timeout. */
const closing = (provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> }, timeout: Duration.DurationInput) =>
  Effect.promise(() => provider.forceFlush().then(() => provider.shutdown())).pipe(
    Effect.ignoreLogged,
    Effect.interruptible,
    Effect.timeoutOption(timeout)
  )

const makeLayer = (settings: Resolved): Layer.Layer<never> => {
  if (settings.traces === undefined && settings.metrics === undefined) return Layer.empty
  const { metrics, traces } = settings
  const shutdownTimeout = settings.shutdownTimeout ?? "3 seconds"
  const resource = OtelResource.layerFromEnv(OtelResource.configToAttributes({
    serviceName: settings.serviceName,
    ...(settings.serviceVersion !== undefined ? { serviceVersion: settings.serviceVersion } : {}),
    attributes: { ...settings.resourceAttributes }
  }))
  // Renew's spans under the `@renew/core` scope, the application's own Effect spans under its service name.
  const tracing = traces === undefined ? Layer.empty : Layer.unwrapEffect(
    Effect.map(OtelTracer.OtelTracerProvider, (provider) =>
      OpenTelemetry.layerTracer(OtelApi, provider, {
        otherSpans: provider.getTracer(settings.serviceName, settings.serviceVersion)
      }))
  ).pipe(Layer.provide(NodeSdk.layerTracerProvider(
    new BatchSpanProcessor(
      traces.protocol === "http/json"
        ? new OTLPTraceExporterJson({ url: traces.url, headers: traces.headers })
        : new OTLPTraceExporterProto({ url: traces.url, headers: traces.headers })
    ),
    { shutdownTimeout }
  )))
  const metering = metrics === undefined ? Layer.empty : Layer.unwrapScoped(Effect.gen(function*() {
    const reader = new PeriodicExportingMetricReader({
      exporter: metrics.protocol === "http/json"
        ? new OTLPMetricExporterJson({ url: metrics.url, headers: metrics.headers })
        : new OTLPMetricExporterProto({ url: metrics.url, headers: metrics.headers }),
      metricProducers: [otherEffectMetrics(yield* OtelMetrics.makeProducer)],
      ...(metrics.exportIntervalMillis !== undefined
        ? {
          exportIntervalMillis: metrics.exportIntervalMillis,
          // The reader refuses a timeout longer than the interval; 30 s is its own default.
          exportTimeoutMillis: Math.min(30_000, metrics.exportIntervalMillis)
        }
        : {})
    })
    const resourceValue = yield* OtelResource.Resource
    const provider = yield* Effect.acquireRelease(
      Effect.sync(() => new MeterProvider({ resource: resourceValue, readers: [reader] })),
      (provider) => closing(provider, shutdownTimeout)
    )
    return OpenTelemetry.layerMetrics(provider.getMeter(OpenTelemetry.scope.name, OpenTelemetry.scope.version))
  }))
  // No log-record processor: Jaeger takes traces only, and Effect logs already become span events.
  return Layer.mergeAll(tracing, metering).pipe(Layer.provide(resource))
}

/**
 * Exports Renew's traces (and, when asked, metrics) over OTLP/HTTP.
 *
 * @example
 * ```ts
 * import { Otel } from "@renew/opentelemetry"
 * import { Effect } from "effect"
 *
 * const Telemetry = Otel.layer({ serviceName: "billing-worker", endpoint: "http://localhost:4318" })
 * program.pipe(Effect.provide(Engine), Effect.provide(Telemetry))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<never> => {
  const protocol = options.protocol ?? "http/protobuf"
  const headers = revealHeaders(options.headers)
  const metricsOption = options.metrics ?? false
  return makeLayer({
    serviceName: options.serviceName,
    serviceVersion: options.serviceVersion,
    resourceAttributes: options.resourceAttributes ?? {},
    traces: { url: signalUrl(options.endpoint, "traces"), protocol, headers },
    metrics: metricsOption === false
      ? undefined
      : {
        url: signalUrl(options.endpoint, "metrics"),
        protocol,
        headers,
        exportIntervalMillis: metricsOption === true ? undefined : metricsOption.exportIntervalMillis
      },
    shutdownTimeout: options.shutdownTimeout
  })
}

// --- environment -------------------------------------------------------------------------------------------------

/** An optional variable; empty counts as unset (OpenTelemetry environment variable specification). */
const optional = (name: string): Config.Config<Option.Option<string>> =>
  Config.string(name).pipe(
    Config.option,
    Config.map(Option.flatMap((value) => (value.trim() === "" ? Option.none() : Option.some(value.trim()))))
  )

const protocolOf = (name: string): Config.Config<Option.Option<Protocol>> =>
  Config.mapOrFail(optional(name), (value) => {
    if (Option.isNone(value)) return Either.right(Option.none())
    const protocol = value.value.toLowerCase()
    if (protocol === "http/protobuf" || protocol === "http/json") return Either.right(Option.some(protocol))
    return Either.left(ConfigError.InvalidData(
      [name],
      protocol === "grpc"
        ? "grpc is not supported by @renew/opentelemetry; use http/protobuf (OTLP/HTTP, port 4318)"
        : `expected http/protobuf or http/json, got ${JSON.stringify(value.value)}`
    ))
  })

const percentDecode = (value: string): string => {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/** `k=v,k2=v2` with percent-encoded values (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS). */
const parseList = (value: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const pair of value.split(",")) {
    const eq = pair.indexOf("=")
    if (eq <= 0) continue
    const key = pair.slice(0, eq).trim()
    if (key === "") continue
    out[percentDecode(key)] = percentDecode(pair.slice(eq + 1).trim())
  }
  return out
}

const headersOf = (name: string): Config.Config<Option.Option<Redacted.Redacted<Record<string, string>>>> =>
  Config.map(
    Config.option(Config.redacted(name)),
    Option.map((value) => Redacted.make(parseList(Redacted.value(value))))
  )

const exporterList = (name: string, fallback: string): Config.Config<ReadonlyArray<string>> =>
  Config.map(optional(name), (value) =>
    Option.getOrElse(value, () => fallback).split(",").map((item) => item.trim().toLowerCase()))

const positiveInteger = (name: string): Config.Config<Option.Option<number>> =>
  Config.mapOrFail(optional(name), (value) => {
    if (Option.isNone(value)) return Either.right(Option.none())
    const n = Number(value.value)
    return Number.isInteger(n) && n > 0
      ? Either.right(Option.some(n))
      : Either.left(ConfigError.InvalidData([name], `expected a positive integer (milliseconds), got ${value.value}`))
  })

/**
 * The settings `layerConfig` reads, resolved; `undefined` when telemetry is off. Exposed for diagnostics (a CLI's
 * `--print-config`); header values stay redacted.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<
  | {
    readonly serviceName: string
    readonly resourceAttributes: Readonly<Record<string, string>>
    readonly traces: { readonly url: string; readonly protocol: Protocol } | undefined
    readonly metrics: { readonly url: string; readonly protocol: Protocol; readonly exportIntervalMillis: number | undefined } | undefined
    readonly headers: {
      readonly traces: Redacted.Redacted<Record<string, string>>
      readonly metrics: Redacted.Redacted<Record<string, string>>
    }
  }
  | undefined
> = Config.all({
  disabled: Config.map(optional("OTEL_SDK_DISABLED"), (v) => Option.getOrElse(v, () => "").toLowerCase() === "true"),
  endpoint: optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
  tracesEndpoint: optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
  metricsEndpoint: optional("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
  protocol: protocolOf("OTEL_EXPORTER_OTLP_PROTOCOL"),
  tracesProtocol: protocolOf("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
  metricsProtocol: protocolOf("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
  headers: headersOf("OTEL_EXPORTER_OTLP_HEADERS"),
  tracesHeaders: headersOf("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
  metricsHeaders: headersOf("OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
  serviceName: optional("OTEL_SERVICE_NAME"),
  resourceAttributes: Config.map(optional("OTEL_RESOURCE_ATTRIBUTES"), (v) => parseList(Option.getOrElse(v, () => ""))),
  tracesExporter: exporterList("OTEL_TRACES_EXPORTER", "otlp"),
  metricsExporter: exporterList("OTEL_METRICS_EXPORTER", "none"),
  metricExportInterval: positiveInteger("OTEL_METRIC_EXPORT_INTERVAL")
}).pipe(Config.map((env) => {
  if (env.disabled) return undefined
  const base = Option.getOrUndefined(env.endpoint)
  // A signal-specific endpoint is a full URL, used as it is; the generic one is a base.
  const tracesUrl = Option.getOrElse(env.tracesEndpoint, () => base === undefined ? "" : signalUrl(base, "traces"))
  const metricsUrl = Option.getOrElse(env.metricsEndpoint, () => base === undefined ? "" : signalUrl(base, "metrics"))
  const traces = tracesUrl !== "" && env.tracesExporter.includes("otlp")
    ? { url: tracesUrl, protocol: Option.getOrElse(Option.orElse(env.tracesProtocol, () => env.protocol), () => "http/protobuf" as const) }
    : undefined
  const metrics = metricsUrl !== "" && env.metricsExporter.includes("otlp")
    ? {
      url: metricsUrl,
      protocol: Option.getOrElse(Option.orElse(env.metricsProtocol, () => env.protocol), () => "http/protobuf" as const),
      exportIntervalMillis: Option.getOrUndefined(env.metricExportInterval)
    }
    : undefined
  if (traces === undefined && metrics === undefined) return undefined
  const { "service.name": attributeServiceName, ...resourceAttributes } = env.resourceAttributes
  const generic = Option.getOrElse(env.headers, () => Redacted.make({}))
  return {
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (specification).
    serviceName: Option.getOrElse(env.serviceName, () => attributeServiceName ?? "renew"),
    resourceAttributes,
    traces,
    metrics,
    headers: {
      traces: Option.getOrElse(env.tracesHeaders, () => generic),
      metrics: Option.getOrElse(env.metricsHeaders, () => generic)
    }
  }
}))

/**
 * `layer`, configured from the standard OpenTelemetry environment variables through Effect `Config` (so a
 * `ConfigProvider` can supply them too):
 *
 * | variable | effect |
 * | --- | --- |
 * | `OTEL_EXPORTER_OTLP_ENDPOINT` | OTLP/HTTP base URL, e.g. `http://localhost:4318` |
 * | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `_METRICS_ENDPOINT` | full URL of one signal (wins over the base) |
 * | `OTEL_EXPORTER_OTLP_PROTOCOL` / `_TRACES_PROTOCOL` / `_METRICS_PROTOCOL` | `http/protobuf` (default) or `http/json` |
 * | `OTEL_EXPORTER_OTLP_HEADERS` / `_TRACES_HEADERS` / `_METRICS_HEADERS` | `k=v,k2=v2` sent with each export |
 * | `OTEL_SERVICE_NAME` | `service.name`, default `renew` |
 * | `OTEL_RESOURCE_ATTRIBUTES` | `k=v,k2=v2`, percent-encoded values |
 * | `OTEL_TRACES_EXPORTER` | `none` turns traces off (default `otlp`) |
 * | `OTEL_METRICS_EXPORTER` | `otlp` turns metrics on (default off) |
 * | `OTEL_METRIC_EXPORT_INTERVAL` | metrics export interval, ms (default 60000) |
 * | `OTEL_SDK_DISABLED` | `true`: nothing at all |
 *
 * Without an endpoint it is `Layer.empty`: nothing is started and nothing is exported. `grpc` is refused with a
 * `ConfigError` rather than silently sent to the wrong port.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<never, ConfigError.ConfigError> = Layer.unwrapEffect(
  Effect.map(config, (resolved) =>
    resolved === undefined
      ? Layer.empty
      : makeLayer({
        serviceName: resolved.serviceName,
        serviceVersion: undefined,
        resourceAttributes: resolved.resourceAttributes,
        traces: resolved.traces && { ...resolved.traces, headers: Redacted.value(resolved.headers.traces) },
        metrics: resolved.metrics && { ...resolved.metrics, headers: Redacted.value(resolved.headers.metrics) },
        shutdownTimeout: undefined
      }))
)

// --- logs --------------------------------------------------------------------------------------------------------

/**
 * The span current where a log call was made, if any.
 *
 * @since 0.1.0
 * @category logging
 */
export const spanOfLog = (context: FiberRefs.FiberRefs): Tracer.AnySpan | undefined =>
  Option.getOrUndefined(Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan))

/**
 * Adds `trace_id` and `span_id` annotations of the current span to every entry `self` formats.
 *
 * @since 0.1.0
 * @category logging
 */
export const withTraceIds = <Message, Output>(self: Logger.Logger<Message, Output>): Logger.Logger<Message, Output> =>
  Logger.mapInputOptions(self, (options: Logger.Logger.Options<Message>) => {
    const span = spanOfLog(options.context)
    if (span === undefined) return options
    return {
      ...options,
      annotations: HashMap.set(HashMap.set(options.annotations, "trace_id", span.traceId), "span_id", span.spanId)
    }
  })

/**
 * Effect's default logger (logfmt-style lines on the console), with `trace_id` and `span_id` of the current span on
 * every line, so a log line leads to its trace in Jaeger.
 *
 * @example
 * ```ts
 * import { Otel } from "@renew/opentelemetry"
 * import { Effect } from "effect"
 *
 * program.pipe(Effect.provide(Otel.logger))
 * // timestamp=… level=INFO fiber=#12 message="renew: refreshed access token (due)" renew.grant.key_hash=… trace_id=4bf9… span_id=00f0…
 * ```
 *
 * @since 0.1.0
 * @category logging
 */
export const logger: Layer.Layer<never> = Layer.merge(
  Logger.replace(Logger.defaultLogger, Logger.withConsoleLog(withTraceIds(Logger.stringLogger))),
  // `NodeRuntime.runMain` installs its pretty logger instead of the default one: replace that too, or every line
  // would be printed twice.
  Logger.remove(Logger.prettyLoggerDefault)
)
