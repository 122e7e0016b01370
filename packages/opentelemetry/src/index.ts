/**
 * @since 0.1.0
 */

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
export * as Otel from "./Otel.js"
