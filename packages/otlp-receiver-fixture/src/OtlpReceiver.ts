/**
 * A loopback OTLP/HTTP receiver standing in for Jaeger (traces) and a Collector (metrics) in tests.
 *
 * `POST /v1/traces` and `POST /v1/metrics`, as JSON (`application/json`) or protobuf (`application/x-protobuf`,
 * decoded with protobufjs from a hand-written subset of the OTLP schema below), gzip or not. Every request body is
 * kept as received (after gunzip) for secret searches; spans and metric data points are normalised to one shape
 * whatever the encoding, so a test asserts the same thing for both protocols.
 *
 * Plain `node:http`, no dependency on the code under test.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { gunzipSync } from "node:zlib"
import protobuf from "protobufjs"

/**
 * The subset of opentelemetry-proto (common/v1, resource/v1, trace/v1, metrics/v1, collector/*) the tests read.
 * Field numbers are the specification's; fields not listed are skipped by the decoder as unknown fields.
 */
const OTLP_SCHEMA = `
syntax = "proto3";
package otlp;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }

message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  repeated Event events = 11;
  repeated Link links = 13;
  Status status = 15;
  fixed32 flags = 16;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; fixed32 flags = 6; }
message Status { string message = 2; int32 code = 3; }

message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; string schema_url = 3; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; string schema_url = 3; }
message Metric {
  string name = 1;
  string description = 2;
  string unit = 3;
  oneof data {
    Gauge gauge = 5;
    Sum sum = 7;
    Histogram histogram = 9;
  }
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  oneof value {
    double as_double = 4;
    sfixed64 as_int = 6;
  }
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  fixed64 count = 4;
  optional double sum = 5;
  repeated fixed64 bucket_counts = 6;
  repeated double explicit_bounds = 7;
  optional double min = 11;
  optional double max = 12;
}
`

const root = protobuf.parse(OTLP_SCHEMA).root
const TraceRequest = root.lookupType("otlp.ExportTraceServiceRequest")
const MetricsRequest = root.lookupType("otlp.ExportMetricsServiceRequest")

/** protobuf → the JSON mapping's shape: camelCase names, 64-bit integers as decimal strings, bytes as base64. */
const toObjectOptions: protobuf.IConversionOptions = { longs: String, bytes: String, enums: Number, oneofs: false }

export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  /** Undefined for a root span. */
  readonly parentSpanId: string | undefined
  readonly name: string
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number
  readonly attributes: Record<string, unknown>
  readonly events: ReadonlyArray<{ readonly name: string; readonly attributes: Record<string, unknown> }>
  /** Spans this one is linked to (not parented by). */
  readonly links: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  readonly status: { readonly code: number; readonly message: string | undefined }
  /** Decimal string (nanoseconds since the epoch); compare with BigInt. */
  readonly startTimeUnixNano: string
  readonly endTimeUnixNano: string
  readonly serviceName: string | undefined
  readonly resource: Record<string, unknown>
  /** The instrumentation scope that recorded it. */
  readonly scope: { readonly name: string; readonly version: string | undefined }
}

export interface ReceivedPoint {
  readonly attributes: Record<string, unknown>
  /** Sum and gauge points. */
  readonly value?: number
  /** Histogram points. */
  readonly count?: number
  readonly sum?: number
  /** Histogram points: the upper bounds of the buckets. */
  readonly bounds?: ReadonlyArray<number>
}

export interface ReceivedMetric {
  readonly name: string
  /** UCUM unit (`s`, `{refresh}`, `1`), `""` when none was sent. */
  readonly unit: string
  readonly description: string
  readonly scope: { readonly name: string; readonly version: string | undefined }
  readonly type: "sum" | "gauge" | "histogram"
  readonly points: ReadonlyArray<ReceivedPoint>
  readonly serviceName: string | undefined
}

export interface ReceivedRequest {
  readonly path: string
  readonly contentType: string
  readonly headers: Record<string, string | string[] | undefined>
  /** The body as received (after gunzip). */
  readonly body: Buffer
  /** The decoded request as a plain object (for a protobuf body: protobufjs `toObject`). */
  readonly decoded: unknown
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>`: the OTLP/HTTP base URL. */
  readonly url: string
  readonly requests: ReadonlyArray<ReceivedRequest>
  /** Every span received, in arrival order. */
  readonly spans: ReadonlyArray<ReceivedSpan>
  /** Every metric of every export, in arrival order (cumulative exports repeat a metric each time). */
  readonly metrics: ReadonlyArray<ReceivedMetric>
  /** Requests that could not be decoded (they were answered 400). */
  readonly errors: ReadonlyArray<string>
  /**
   * Everything exported, as one searchable string: each raw body read as latin1 (protobuf strings are UTF-8 bytes
   * on the wire, so an ASCII secret appears as itself) and as UTF-8, plus its decoded form.
   */
  payloadText(): string
  /** The last export of a metric (the current cumulative value), if any. */
  latestMetric(name: string): ReceivedMetric | undefined
  /** Resolves with all spans once `predicate` holds for them. */
  waitForSpans(
    predicate: (spans: ReadonlyArray<ReceivedSpan>) => boolean,
    timeoutMs?: number
  ): Promise<ReadonlyArray<ReceivedSpan>>
  /** Resolves with the first exported `name` (latest first) for which `predicate` holds. */
  waitForMetric(
    name: string,
    predicate?: (metric: ReceivedMetric) => boolean,
    timeoutMs?: number
  ): Promise<ReceivedMetric>
  /** Forgets everything received so far. */
  clear(): void
  close(): Promise<void>
}

// --- normalisation (the JSON mapping and protobufjs `toObject` share one shape) --------------------------------

type Json = any

const hexOf = (encoding: "json" | "protobuf", id: unknown): string | undefined => {
  if (typeof id !== "string" || id === "") return undefined
  // The JSON encoding carries ids as hex already; protobufjs renders bytes as base64.
  return encoding === "json" ? id.toLowerCase() : Buffer.from(id, "base64").toString("hex")
}

const anyValue = (value: Json): unknown => {
  if (value === undefined || value === null) return undefined
  if ("stringValue" in value) return value.stringValue
  if ("boolValue" in value) return value.boolValue
  if ("intValue" in value) return Number(value.intValue)
  if ("doubleValue" in value) return Number(value.doubleValue)
  if ("arrayValue" in value) return ((value.arrayValue?.values ?? []) as Array<Json>).map(anyValue)
  if ("kvlistValue" in value) return attributesOf(value.kvlistValue?.values)
  if ("bytesValue" in value) return value.bytesValue
  return undefined
}

const attributesOf = (list: Json): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const kv of (list ?? []) as Array<Json>) out[kv.key] = anyValue(kv.value)
  return out
}

const scopeOf = (scope: Json) => ({
  name: String(scope?.name ?? ""),
  version: scope?.version === undefined || scope.version === "" ? undefined : String(scope.version)
})

const nanos = (value: unknown): string => (value === undefined || value === null ? "0" : String(value))

const spansOf = (encoding: "json" | "protobuf", request: Json): Array<ReceivedSpan> => {
  const out: Array<ReceivedSpan> = []
  for (const rs of (request.resourceSpans ?? []) as Array<Json>) {
    const resource = attributesOf(rs.resource?.attributes)
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined
    for (const ss of (rs.scopeSpans ?? []) as Array<Json>) {
      const scope = scopeOf(ss.scope)
      for (const span of (ss.spans ?? []) as Array<Json>) {
        out.push({
          traceId: hexOf(encoding, span.traceId) ?? "",
          spanId: hexOf(encoding, span.spanId) ?? "",
          parentSpanId: hexOf(encoding, span.parentSpanId),
          name: span.name ?? "",
          kind: Number(span.kind ?? 0),
          attributes: attributesOf(span.attributes),
          events: ((span.events ?? []) as Array<Json>).map((event) => ({
            name: event.name ?? "",
            attributes: attributesOf(event.attributes)
          })),
          links: ((span.links ?? []) as Array<Json>).map((link) => ({
            traceId: hexOf(encoding, link.traceId) ?? "",
            spanId: hexOf(encoding, link.spanId) ?? ""
          })),
          status: {
            code: Number(span.status?.code ?? 0),
            message: span.status?.message === undefined || span.status.message === "" ? undefined : span.status.message
          },
          startTimeUnixNano: nanos(span.startTimeUnixNano),
          endTimeUnixNano: nanos(span.endTimeUnixNano),
          serviceName,
          resource,
          scope
        })
      }
    }
  }
  return out
}

const numberPoint = (point: Json): ReceivedPoint => ({
  attributes: attributesOf(point.attributes),
  value: Number(point.asDouble ?? point.asInt ?? 0)
})

const metricsOf = (request: Json): Array<ReceivedMetric> => {
  const out: Array<ReceivedMetric> = []
  for (const rm of (request.resourceMetrics ?? []) as Array<Json>) {
    const resource = attributesOf(rm.resource?.attributes)
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined
    for (const sm of (rm.scopeMetrics ?? []) as Array<Json>) {
      const scope = scopeOf(sm.scope)
      for (const metric of (sm.metrics ?? []) as Array<Json>) {
        const about = { name: metric.name, unit: metric.unit ?? "", description: metric.description ?? "", scope }
        if (metric.histogram !== undefined) {
          out.push({
            ...about,
            type: "histogram",
            serviceName,
            points: ((metric.histogram.dataPoints ?? []) as Array<Json>).map((point) => ({
              attributes: attributesOf(point.attributes),
              count: Number(point.count ?? 0),
              sum: Number(point.sum ?? 0),
              bounds: ((point.explicitBounds ?? []) as Array<unknown>).map(Number)
            }))
          })
        } else if (metric.sum !== undefined) {
          out.push({ ...about, type: "sum", serviceName, points: (metric.sum.dataPoints ?? []).map(numberPoint) })
        } else if (metric.gauge !== undefined) {
          out.push({
            ...about,
            type: "gauge",
            serviceName,
            points: (metric.gauge.dataPoints ?? []).map(numberPoint)
          })
        }
      }
    }
  }
  return out
}

// --- server ------------------------------------------------------------------------------------------------------

export const startOtlpReceiver = async (): Promise<OtlpReceiver> => {
  const requests: Array<ReceivedRequest> = []
  const spans: Array<ReceivedSpan> = []
  const metrics: Array<ReceivedMetric> = []
  const errors: Array<string> = []
  const sockets = new Set<Socket>()
  const wakers = new Set<() => void>()

  const answer = (res: ServerResponse, status: number, contentType: string, body: string | Buffer) => {
    res.writeHead(status, { "content-type": contentType, "content-length": String(Buffer.byteLength(body)) })
    res.end(body)
  }

  const handle = (req: IncomingMessage, raw: Buffer, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    if (req.method !== "POST" || (path !== "/v1/traces" && path !== "/v1/metrics")) {
      return answer(res, 404, "text/plain", "not found")
    }
    const json = contentType === "application/json"
    if (!json && contentType !== "application/x-protobuf") {
      errors.push(`${path}: unsupported content-type ${contentType}`)
      return answer(res, 415, "text/plain", "unsupported media type")
    }
    let body: Buffer
    let decoded: Json
    try {
      body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw
      if (json) {
        decoded = JSON.parse(body.toString("utf8"))
      } else {
        const type = path === "/v1/traces" ? TraceRequest : MetricsRequest
        decoded = type.toObject(type.decode(body), toObjectOptions)
      }
    } catch (error) {
      errors.push(`${path}: ${String(error)}`)
      return answer(res, 400, "text/plain", "bad request")
    }
    requests.push({ path, contentType, headers: { ...req.headers }, body, decoded })
    if (path === "/v1/traces") spans.push(...spansOf(json ? "json" : "protobuf", decoded))
    else metrics.push(...metricsOf(decoded))
    for (const wake of [...wakers]) wake()
    // An empty Export*ServiceResponse: full success.
    return json ? answer(res, 200, "application/json", "{}") : answer(res, 200, "application/x-protobuf", Buffer.alloc(0))
  }

  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("error", () => {})
    req.on("end", () => handle(req, Buffer.concat(chunks), res))
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo

  /** Resolves with `probe()` once it is defined, re-checking after every received request. */
  const waitFor = <A>(probe: () => A | undefined, timeoutMs: number, what: () => string): Promise<A> =>
    new Promise<A>((resolve, reject) => {
      const first = probe()
      if (first !== undefined) return resolve(first)
      const check = () => {
        const found = probe()
        if (found === undefined) return
        clearTimeout(timer)
        wakers.delete(check)
        resolve(found)
      }
      const timer = setTimeout(() => {
        wakers.delete(check)
        reject(new Error(`OtlpReceiver: timed out after ${timeoutMs} ms waiting for ${what()}`))
      }, timeoutMs)
      wakers.add(check)
    })

  const latest = (name: string, predicate: (metric: ReceivedMetric) => boolean = () => true) => {
    for (let i = metrics.length - 1; i >= 0; i--) {
      if (metrics[i]!.name === name && predicate(metrics[i]!)) return metrics[i]
    }
    return undefined
  }

  let closing: Promise<void> | undefined

  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests.slice()
    },
    get spans() {
      return spans.slice()
    },
    get metrics() {
      return metrics.slice()
    },
    get errors() {
      return errors.slice()
    },
    payloadText: () =>
      requests
        .map((r) => `${r.body.toString("latin1")}\n${r.body.toString("utf8")}\n${JSON.stringify(r.decoded)}`)
        .join("\n"),
    latestMetric: (name) => latest(name),
    waitForSpans: (predicate, timeoutMs = 30_000) =>
      waitFor(
        () => (predicate(spans) ? spans.slice() : undefined),
        timeoutMs,
        () => `spans (got ${spans.length}: ${spans.map((s) => s.name).join(", ")})`
      ),
    waitForMetric: (name, predicate = () => true, timeoutMs = 30_000) =>
      waitFor(
        () => latest(name, predicate),
        timeoutMs,
        () => `metric ${name} (got ${[...new Set(metrics.map((m) => m.name))].join(", ") || "none"})`
      ),
    clear: () => {
      requests.length = 0
      spans.length = 0
      metrics.length = 0
      errors.length = 0
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
        sockets.clear()
      })
      return closing
    }
  }
}
