/**
 * Renew's spans and metrics through the OpenTelemetry API (`@opentelemetry/api`, an optional peer dependency), for an
 * application that runs the OpenTelemetry SDK itself. The Promise facade uses `layerGlobal` unless created with
 * `telemetry: false`; `@renew/opentelemetry` uses `layerTracer` and `layerMetrics` with the SDK it starts.
 *
 * What is recorded follows OpenTelemetry's conventions: instrumentation scope `@renew/core` with the package version;
 * one CLIENT span per HTTP request with the HTTP semantic-convention attributes; status UNSET on success, ERROR with
 * `error.type` on failure; exception events without deployment paths; metric durations in seconds with their unit.
 *
 * @since 0.2.0
 */
import type * as OtelApi from "@opentelemetry/api"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as MetricBridge from "./internal/metricBridge.js"
import * as OtelLayer from "./internal/otelLayer.js"
import * as OtelTracer from "./internal/otelTracer.js"
import { SCOPE_NAME, VERSION } from "./internal/version.js"

/**
 * The instrumentation scope of Renew's spans and metrics.
 *
 * @since 0.2.0
 * @category models
 */
export const scope: { readonly name: string; readonly version: string } = { name: SCOPE_NAME, version: VERSION }

/**
 * The names of Renew's metrics (`renew.refreshes`, `renew.refresh.attempt.duration`, …), as recorded into an
 * OpenTelemetry meter. A live set: each name is in it from when the module defining the metric is loaded.
 *
 * @since 0.2.0
 * @category models
 */
export const metricNames: ReadonlySet<string> = MetricBridge.names

/**
 * Records Effect spans through `provider`: Renew's (`renew.*`) under the `@renew/core` scope, any other span (the
 * application's own `Effect.withSpan`) under `otherSpans` (default: the `effect` scope).
 *
 * @example
 * ```ts
 * import * as OtelApi from "@opentelemetry/api"
 * import { OpenTelemetry } from "@renew/core"
 *
 * const provider = OtelApi.trace.getTracerProvider()
 * const Tracing = OpenTelemetry.layerTracer(OtelApi, provider)
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerTracer = (
  api: typeof OtelApi,
  provider: OtelApi.TracerProvider,
  options?: { readonly otherSpans?: OtelApi.Tracer | undefined }
): Layer.Layer<never> => {
  const renew = { api, tracer: provider.getTracer(SCOPE_NAME, VERSION) }
  const other = { api, tracer: options?.otherSpans ?? provider.getTracer("effect") }
  return Layer.unwrapEffect(Effect.map(
    Effect.tracer,
    (fallback) =>
      Layer.setTracer(
        OtelTracer.make((name) => (OtelLayer.isRenewSpan(name) ? renew : other), fallback, { activeContextAsParent: true })
      )
  ))
}

/**
 * Records Renew's metrics into `meter` while the layer lives (they stay Effect metrics as well). Obtain the meter with
 * `meterProvider.getMeter(OpenTelemetry.scope.name, OpenTelemetry.scope.version)`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMetrics = (meter: OtelApi.Meter): Layer.Layer<never> =>
  Layer.scopedDiscard(Effect.acquireRelease(
    Effect.sync(() => MetricBridge.addMeterSource(() => meter)),
    (remove) => Effect.sync(remove)
  ))

/**
 * Spans and metrics through the global TracerProvider and MeterProvider the application registered with
 * `@opentelemetry/api` (what the OpenTelemetry Node SDK's `start()` does). Starts no SDK, and does nothing — not even
 * loading `@opentelemetry/api` — while none is registered: spans stay Effect's own until a provider appears, and
 * metrics stay Effect metrics. Checked at each span and each metric update, so an SDK started after this layer is
 * picked up.
 *
 * @example
 * ```ts
 * import * as Effect from "effect/Effect"
 * import { OpenTelemetry } from "@renew/core"
 *
 * // After the application's `new NodeSDK({ … }).start()` (@opentelemetry/sdk-node):
 * program.pipe(Effect.provide(Engine), Effect.provide(OpenTelemetry.layerGlobal))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layerGlobal: Layer.Layer<never> = OtelLayer.global({ activeContextAsParent: true })
