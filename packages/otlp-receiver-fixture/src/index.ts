/**
 * An OTLP/HTTP receiver on loopback that decodes what an exporter sends, for tests and benchmarks (private).
 */
export * from "./OtlpReceiver.js"
