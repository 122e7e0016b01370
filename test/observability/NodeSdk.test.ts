/**
 * The Promise facade in a plain Node service instrumented with the OpenTelemetry Node SDK: no Effect in the
 * application code, no `@renew/opentelemetry`. The SDK is the application's (`NodeSDK.start()`, in-memory exporters);
 * Renew records through the global providers it registered, with a `node:http` request handler's span as the parent.
 */
import * as OtelApi from "@opentelemetry/api"
import { NodeSDK } from "@opentelemetry/sdk-node"
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { TokenManager } from "@renew/core"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import * as Fs from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, afterEach, assert, beforeAll, beforeEach, describe, it } from "vitest"

const CLIENT_ID = "orders-api"
const CLIENT_SECRET = "cs_CANARY-node-sdk-4f2a9c1e7b"
const KEY = "user:carol@example.com"
const CORE_VERSION: string =
  JSON.parse(Fs.readFileSync(new URL("../../packages/core/package.json", import.meta.url), "utf8")).version

const spans = new InMemorySpanExporter()
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const metricReader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 600_000 })
const sdk = new NodeSDK({
  serviceName: "orders-api",
  autoDetectResources: false,
  spanProcessors: [new SimpleSpanProcessor(spans)],
  metricReaders: [metricReader],
  logRecordProcessors: []
})

beforeAll(() => sdk.start())
afterAll(async () => {
  await sdk.shutdown()
  // Leave the worker as it was: no global provider for whatever runs next in it.
  OtelApi.trace.disable()
  OtelApi.metrics.disable()
  OtelApi.context.disable()
  OtelApi.propagation.disable()
})

const cleanups: Array<() => Promise<void>> = []
beforeEach(() => spans.reset())
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/**
 * The application: a token manager and a `node:http` server whose handler, like an HTTP instrumentation would, runs
 * each request in an active SERVER span and calls `getAccessToken` inside it.
 */
const service = async (options: Partial<TokenManager.TokenManagerOptions> = {}) => {
  const endpoint: ScriptedTokenEndpoint = await startScriptedTokenEndpoint({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET
  })
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    retry: { initialDelay: "10 millis", jitter: false },
    ...options
  })
  const tracer = OtelApi.trace.getTracer("orders-api")
  const server: Server = createServer((req, res) => {
    tracer.startActiveSpan(`GET ${req.url}`, { kind: OtelApi.SpanKind.SERVER }, (span) => {
      const user = new URL(req.url ?? "/", "http://localhost").searchParams.get("user")
      tokens.getAccessToken(user ?? KEY).then(
        (token) => {
          res.end(token === "at_old" || token === "at_current" ? "stale" : "fresh")
          span.end()
        },
        (error: { readonly _tag?: string }) => {
          res.statusCode = 502
          res.end(String(error._tag))
          span.setStatus({ code: OtelApi.SpanStatusCode.ERROR })
          span.end()
        }
      )
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanups.push(
    () => endpoint.close(),
    () => tokens.dispose(),
    () => new Promise((resolve) => server.close(() => resolve()))
  )
  const get = async (path: string) => {
    const response = await fetch(`${url}${path}`)
    return { status: response.status, body: await response.text() }
  }
  return { endpoint, tokens, get }
}

const named = (name: string): Array<ReadableSpan> => spans.getFinishedSpans().filter((span) => span.name === name)
const only = (name: string): ReadableSpan => {
  const found = named(name)
  assert.strictEqual(found.length, 1, `exactly one ${name} span (got ${found.length})`)
  return found[0]!
}
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId
const byStart = (a: ReadableSpan, b: ReadableSpan) =>
  a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]

/** Every string a span carries, for "never present" checks. */
const spanText = (span: ReadableSpan): string =>
  JSON.stringify({
    name: span.name,
    attributes: span.attributes,
    events: span.events,
    status: span.status,
    links: span.links
  })

describe("the Promise facade with the OpenTelemetry Node SDK", () => {
  it("a refresh started in a node:http request handler is a child of the request's span", async () => {
    const { endpoint, get, tokens } = await service()
    await tokens.setGrant(KEY, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    endpoint.script({ kind: "respond", status: 503, body: "" })

    assert.deepStrictEqual(await get("/orders"), { status: 200, body: "fresh" })
    assert.strictEqual(endpoint.refreshRequests, 2)

    const request = only("GET /orders")
    const refresh = only("renew.refresh")
    assert.strictEqual(refresh.spanContext().traceId, request.spanContext().traceId, "in the request's trace")
    assert.strictEqual(parentOf(refresh), request.spanContext().spanId, "renew.refresh is the request span's child")
    assert.strictEqual(refresh.instrumentationScope.name, "@renew/core")
    assert.strictEqual(refresh.instrumentationScope.version, CORE_VERSION)
    assert.strictEqual(refresh.status.code, OtelApi.SpanStatusCode.UNSET)
    assert.strictEqual(refresh.attributes["renew.outcome"], "success")
    assert.strictEqual(refresh.attributes["renew.attempts"], 2)
    assert.strictEqual(parentOf(only("renew.lock.wait")), refresh.spanContext().spanId)

    // One CLIENT span per HTTP attempt, with the HTTP semantic-convention attributes; the failed one is ERROR.
    const clients = spans.getFinishedSpans().filter((span) => span.kind === OtelApi.SpanKind.CLIENT)
    const attempts = named("renew.refresh.attempt").sort(byStart)
    assert.deepStrictEqual(clients.map((span) => span.name), ["renew.refresh.attempt", "renew.refresh.attempt"])
    for (const attempt of attempts) {
      assert.strictEqual(parentOf(attempt), refresh.spanContext().spanId)
      assert.strictEqual(attempt.attributes["http.request.method"], "POST")
      assert.strictEqual(attempt.attributes["server.address"], "127.0.0.1")
      assert.strictEqual(attempt.attributes["server.port"], Number(new URL(endpoint.url).port))
      assert.strictEqual(attempt.attributes["url.full"], endpoint.url)
    }
    assert.deepStrictEqual(attempts.map((a) => a.attributes["http.response.status_code"]), [503, 200])
    assert.deepStrictEqual(attempts.map((a) => a.attributes["error.type"]), ["ServerError", undefined])
    assert.deepStrictEqual(attempts.map((a) => a.status.code), [OtelApi.SpanStatusCode.ERROR, OtelApi.SpanStatusCode.UNSET])
  })

  it("concurrent requests: each refresh is the child of the request that started it", async () => {
    const { endpoint, get, tokens } = await service()
    const users = Array.from({ length: 16 }, (_, i) => `user:${i}`)
    for (const user of users) {
      await tokens.setGrant(user, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    }
    const responses = await Promise.all(users.map((user) => get(`/orders?user=${encodeURIComponent(user)}`)))
    assert.deepStrictEqual(new Set(responses.map((r) => `${r.status} ${r.body}`)), new Set(["200 fresh"]))
    assert.strictEqual(endpoint.refreshRequests, users.length)
    const requests = spans.getFinishedSpans().filter((span) => span.name.startsWith("GET /orders?user="))
    const refreshes = named("renew.refresh")
    assert.strictEqual(requests.length, users.length)
    assert.strictEqual(refreshes.length, users.length)
    for (const request of requests) {
      const children = refreshes.filter((refresh) => parentOf(refresh) === request.spanContext().spanId)
      assert.strictEqual(children.length, 1, `${request.name}: one renew.refresh child`)
      assert.strictEqual(children[0]!.spanContext().traceId, request.spanContext().traceId)
    }
  })

  it("a refresh-ahead refresh a request starts runs in the background, under that request's span", async () => {
    const { endpoint, get, tokens } = await service({ minValiditySeconds: 0 })
    // A 3 s lifetime: past its prefetch point (half the lifetime) after 1.5 s, stale at expiry. In between, a call is
    // answered at once with the current token and starts the refresh in the background.
    await tokens.setGrant(KEY, { accessToken: "at_current", refreshToken: endpoint.mintRefreshToken(), expiresIn: 4 })
    await new Promise((resolve) => setTimeout(resolve, 1_900))
    assert.deepStrictEqual(await get("/orders"), { status: 200, body: "stale" })
    const deadline = Date.now() + 30_000
    while (named("renew.refresh").length === 0) {
      assert.isBelow(Date.now(), deadline, `the background refresh ends within 30 s (${endpoint.refreshRequests} requests; ${spans.getFinishedSpans().map((s) => s.name).join()})`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const refresh = only("renew.refresh")
    assert.strictEqual(refresh.attributes["renew.trigger"], "prefetch")
    assert.strictEqual(parentOf(refresh), only("GET /orders").spanContext().spanId)
    assert.strictEqual(refresh.spanContext().traceId, only("GET /orders").spanContext().traceId)
  })

  it("callers that join a refresh in flight are counted on it, not linked", async () => {
    const { endpoint, get, tokens } = await service()
    await tokens.setGrant(KEY, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    // The answer is held until the second request has joined.
    endpoint.script({ kind: "issue", delayMs: 400 })
    const first = get("/a")
    while (endpoint.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    const second = get("/b")
    assert.deepStrictEqual(await Promise.all([first, second]), [
      { status: 200, body: "fresh" },
      { status: 200, body: "fresh" }
    ])
    assert.strictEqual(endpoint.refreshRequests, 1)
    const refresh = only("renew.refresh")
    assert.strictEqual(refresh.attributes["renew.single_flight.waiters"], 2)
    assert.deepStrictEqual(refresh.links, [])
    assert.strictEqual(parentOf(refresh), only("GET /a").spanContext().spanId, "the caller that started it")
    assert.notStrictEqual(refresh.spanContext().traceId, only("GET /b").spanContext().traceId)
  })

  it("metrics reach the SDK's MeterProvider in seconds, with units, under the @renew/core scope", async () => {
    const { endpoint, get, tokens } = await service()
    await tokens.setGrant(KEY, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    metricExporter.reset()
    await get("/orders")
    await get("/orders")
    // Cache hits are counted in batches; disposing counts the last ones.
    await tokens.dispose()
    await metricReader.forceFlush()
    const scopes = metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics)
    const renew = scopes.filter((scope) => scope.scope.name === "@renew/core")
    assert.isNotEmpty(renew)
    assert.isTrue(renew.every((scope) => scope.scope.version === CORE_VERSION))
    const metric = (name: string): MetricData => {
      const found = renew.flatMap((scope) => scope.metrics).filter((m) => m.descriptor.name === name).at(-1)
      assert.isDefined(found, `${name} exported`)
      return found!
    }
    const duration = metric("renew.refresh.attempt.duration")
    assert.strictEqual(duration.descriptor.unit, "s")
    const point = duration.dataPoints[0] as DataPoint<Histogram>
    assert.isAtLeast(point.value.count, 1)
    assert.isAbove(point.value.sum!, 0)
    assert.isBelow(point.value.sum!, 5, "seconds, not milliseconds")
    assert.deepStrictEqual(point.value.buckets.boundaries, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    const refreshes = metric("renew.refreshes")
    assert.strictEqual(refreshes.descriptor.unit, "{refresh}")
    assert.isTrue(refreshes.dataPoints.some((p) => p.attributes["renew.outcome"] === "success" && Number(p.value) >= 1))
    assert.strictEqual(metric("renew.lock.wait.duration").descriptor.unit, "s")
    assert.isTrue(metric("renew.token.cache_hits").dataPoints.some((p) => Number(p.value) >= 1))
  })

  it("a failed refresh is ERROR with error.type; no secret, token or grant key in any span", async () => {
    const { endpoint, get, tokens } = await service()
    const refreshToken = endpoint.mintRefreshToken()
    await tokens.setGrant(KEY, { accessToken: "at_CANARY-old-access-7c1d", refreshToken, expiresIn: 0 })
    // The server quotes the refresh token and the client secret back.
    endpoint.script({
      kind: "respond",
      status: 400,
      body: { error: "invalid_grant", error_description: `token ${refreshToken} revoked; client_secret=${CLIENT_SECRET}` }
    })
    assert.deepStrictEqual(await get("/orders"), { status: 502, body: "InvalidGrant" })

    const refresh = only("renew.refresh")
    assert.strictEqual(refresh.status.code, OtelApi.SpanStatusCode.ERROR)
    assert.strictEqual(refresh.attributes["error.type"], "InvalidGrant")
    const attempt = only("renew.refresh.attempt")
    assert.strictEqual(attempt.status.code, OtelApi.SpanStatusCode.ERROR)
    assert.strictEqual(attempt.attributes["error.type"], "InvalidGrant")
    assert.strictEqual(attempt.attributes["oauth.error"], "invalid_grant")
    const exceptions = spans.getFinishedSpans().flatMap((span) => span.events).filter((e) => e.name === "exception")
    assert.isNotEmpty(exceptions)
    for (const exception of exceptions) {
      assert.isUndefined(exception.attributes?.["exception.stacktrace"], "no stack trace on an expected failure")
    }

    const text = spans.getFinishedSpans().map(spanText).join("\n")
    assert.include(text, "InvalidGrant", "the search covers the exported spans")
    const authorization = endpoint.requests[0]!.headers.authorization
    for (const secret of [CLIENT_SECRET, refreshToken, "at_CANARY-old-access-7c1d", String(authorization), KEY]) {
      assert.notInclude(text, secret)
    }
    assert.notMatch(text, /\/work\/|\/home\/|\/srv\//, "no deployment path")
  })

  it("background refreshes (the scheduler, no caller) are traced through the SDK too", async () => {
    const { endpoint, tokens } = await service({ background: { intervalSeconds: 0.05 } })
    // Due at once, and no caller ever asks: only the scheduler's fibers, started with the manager, refresh it.
    await tokens.setGrant(KEY, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const deadline = Date.now() + 30_000
    while (named("renew.refresh").length === 0) {
      assert.isBelow(Date.now(), deadline, `a scheduled refresh span within 30 s (requests: ${endpoint.refreshRequests}, spans: ${spans.getFinishedSpans().map((s) => s.name).join()})`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const refresh = named("renew.refresh")[0]!
    assert.strictEqual(refresh.attributes["renew.trigger"], "scheduled")
    assert.strictEqual(refresh.instrumentationScope.name, "@renew/core")
    const batch = named("renew.scheduler.batch")
    assert.isNotEmpty(batch)
    assert.deepStrictEqual(refresh.links.map((link) => link.context.spanId), [batch[0]!.spanContext().spanId])
  })

  it("telemetry: false records nothing through OpenTelemetry", async () => {
    const { endpoint, get, tokens } = await service({ telemetry: false })
    await tokens.setGrant(KEY, { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    assert.deepStrictEqual(await get("/orders"), { status: 200, body: "fresh" })
    assert.strictEqual(endpoint.refreshRequests, 1)
    assert.strictEqual(named("GET /orders").length, 1)
    assert.isFalse(spans.getFinishedSpans().some((span) => span.name.startsWith("renew.")))
  })
})
