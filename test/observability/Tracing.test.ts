/**
 * Renew's traces, metrics and logs as an OTLP backend (Jaeger v2, a Collector) receives them: the engine runs for
 * real against a scripted loopback token endpoint, `@renew/opentelemetry` exports to a loopback OTLP/HTTP receiver,
 * and the assertions read what arrived on the wire, decoded from protobuf or JSON.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshScheduler, Telemetry, TokenEndpoint, TokenStore } from "@renew/core"
import { Otel } from "@renew/opentelemetry"
import { ConfigProvider, Deferred, Effect, Either, Exit, Fiber, FiberStatus, Layer, Metric, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import { vi } from "vitest"
import { main as jaegerExample } from "../../packages/opentelemetry/examples/jaeger.js"
import { Engine } from "@renew/store-testkit"
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "@renew/otlp-receiver-fixture"
import type { ScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"

const { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } = Engine

/** A grant key that is a user id: it must never reach a trace or a metric, only its hash. */
const KEY = "user:alice@example.com"
// The grant key's label: keyed by the client secret (issue 12, item 8), never the bare key nor an unkeyed hash.
const KEY_LABEL = Telemetry.grantKeyHasher(Redacted.make(CLIENT_SECRET))(KEY)
const FAST_RETRY = { initialDelay: "10 millis", jitter: false } as const
const SERVICE = "renew-test"
const CORE_VERSION: string = JSON.parse(Fs.readFileSync(new URL("../../packages/core/package.json", import.meta.url), "utf8")).version

const receiverScoped = Effect.acquireRelease(
  Effect.promise(() => startOtlpReceiver()),
  (receiver) => Effect.promise(() => receiver.close())
)

const unavailable = { kind: "respond", status: 503, body: "" } as const

/**
 * Runs `program` against the engine with `Otel.layer` pointed at the receiver. When this returns, the layer is
 * closed, so its final flush has reached the receiver: nothing in these tests waits on an export interval.
 */
const traced = <A, E>(
  receiver: OtlpReceiver,
  endpoint: ScriptedTokenEndpoint,
  program: Effect.Effect<A, E, Refresher.Refresher | TokenStore.TokenStore>,
  options: {
    readonly protocol?: Otel.Protocol
    readonly metrics?: boolean
    readonly engine?: Parameters<typeof engine>[1]
    /** Instead of the engine built from `options.engine`. */
    readonly layer?: Layer.Layer<Refresher.Refresher | TokenStore.TokenStore>
  } = {}
) =>
  program.pipe(
    Effect.provide(options.layer ?? engine(endpoint, { refresher: { retry: FAST_RETRY }, ...options.engine })),
    Effect.provide(Otel.layer({
      serviceName: SERVICE,
      endpoint: receiver.url,
      ...(options.protocol !== undefined ? { protocol: options.protocol } : {}),
      ...(options.metrics !== undefined ? { metrics: options.metrics } : {})
    }))
  )

/** The engine of `traced`, with the token endpoint's answers held in the HTTP client until `delivered` completes. */
const engineHoldingAnswers = (endpoint: ScriptedTokenEndpoint, delivered: Deferred.Deferred<void>) =>
  Refresher.layer({ retry: FAST_RETRY }).pipe(
    Layer.provide(TokenEndpoint.layer({ url: endpoint.url, clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET) })),
    Layer.provide(
      Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, HttpClient.tap(() => Deferred.await(delivered))))
        .pipe(Layer.provide(NodeHttpClient.layerUndici))
    ),
    Layer.provideMerge(TokenStore.layerMemory),
    Layer.orDie
  )

const named = (spans: ReadonlyArray<ReceivedSpan>, name: string) => spans.filter((span) => span.name === name)

const only = (spans: ReadonlyArray<ReceivedSpan>, name: string): ReceivedSpan => {
  const found = named(spans, name)
  assert.strictEqual(found.length, 1, `exactly one ${name} span (got ${found.length})`)
  return found[0]!
}

const byStart = (a: ReceivedSpan, b: ReceivedSpan) =>
  BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1

const countNames = (spans: ReadonlyArray<ReceivedSpan>) => {
  const counts: Record<string, number> = {}
  for (const span of spans) counts[span.name] = (counts[span.name] ?? 0) + 1
  return counts
}

/** Every string an exported span carries, for "never present" checks. */
const spanStrings = (span: ReceivedSpan): Array<string> => [
  span.name,
  ...Object.entries(span.attributes).flatMap(([k, v]) => [k, String(v)]),
  ...span.events.flatMap((event) => [
    event.name,
    ...Object.entries(event.attributes).flatMap(([k, v]) => [k, String(v)])
  ]),
  span.status.message ?? ""
]

describe("tracing", () => {
  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it.scopedLive(`a refresh failing 503, 503 then succeeding is one trace with one CLIENT span per attempt (${protocol})`, () =>
      Effect.gen(function*() {
        const receiver = yield* receiverScoped
        const endpoint = yield* scriptedEndpoint()
        endpoint.script(unavailable, unavailable)
        const token = yield* traced(
          receiver,
          endpoint,
          Effect.zipRight(seedExpired(endpoint, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))),
          { protocol }
        )
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 3)

        const spans = yield* Effect.promise(() =>
          receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0)
        )
        assert.deepStrictEqual(receiver.errors, [])
        const expectedType = protocol === "http/json" ? "application/json" : "application/x-protobuf"
        assert.isTrue(receiver.requests.length > 0)
        assert.isTrue(receiver.requests.every((r) => r.path === "/v1/traces" && r.contentType === expectedType))

        // One trace, and exactly these spans in it.
        assert.isTrue(spans.every((s) => /^[0-9a-f]{32}$/.test(s.traceId) && /^[0-9a-f]{16}$/.test(s.spanId)))
        assert.strictEqual(new Set(spans.map((s) => s.traceId)).size, 1, "every span shares one trace id")
        // Exactly one CLIENT span per HTTP attempt: the HTTP client's own span is not recorded.
        assert.deepStrictEqual(countNames(spans), {
          "renew.refresh": 1,
          "renew.lock.wait": 1,
          "renew.refresh.attempt": 3
        })
        assert.strictEqual(spans.filter((s) => s.kind === 3).length, 3, "three CLIENT spans")
        assert.isTrue(spans.every((s) => s.serviceName === SERVICE))
        // The instrumentation scope is the library, not the service.
        assert.isTrue(spans.every((s) => s.scope.name === "@renew/core" && s.scope.version === CORE_VERSION))

        const refresh = only(spans, Telemetry.SpanNames.refresh)
        assert.isUndefined(refresh.parentSpanId, "the refresh is the root here (no caller span)")
        assert.strictEqual(refresh.status.code, 0, "a successful span stays UNSET")
        assert.strictEqual(only(spans, Telemetry.SpanNames.lockWait).status.code, 0)
        assert.strictEqual(refresh.attributes["renew.grant.key_hash"], KEY_LABEL)
        assert.strictEqual(refresh.attributes["oauth.client_id"], CLIENT_ID)
        assert.strictEqual(refresh.attributes["server.address"], "127.0.0.1")
        assert.strictEqual(refresh.attributes["renew.outcome"], "success")
        assert.strictEqual(refresh.attributes["renew.attempts"], 3)
        assert.strictEqual(refresh.attributes["renew.trigger"], "due")
        assert.strictEqual(refresh.attributes["renew.single_flight.waiters"], 1)

        const lockWait = only(spans, Telemetry.SpanNames.lockWait)
        assert.strictEqual(lockWait.parentSpanId, refresh.spanId)

        // Three attempts under the refresh, in order, each with the answer it got.
        const attempts = named(spans, Telemetry.SpanNames.attempt).sort(byStart)
        assert.deepStrictEqual(attempts.map((a) => a.parentSpanId), [refresh.spanId, refresh.spanId, refresh.spanId])
        assert.deepStrictEqual(attempts.map((a) => a.attributes["renew.attempt"]), [1, 2, 3])
        assert.deepStrictEqual(attempts.map((a) => a.attributes["http.response.status_code"]), [503, 503, 200])
        assert.deepStrictEqual(attempts.map((a) => a.attributes["error.type"]), ["ServerError", "ServerError", undefined])
        assert.deepStrictEqual(attempts.map((a) => a.status.code), [2, 2, 0], "ERROR, ERROR, UNSET")
        assert.deepStrictEqual(attempts.map((a) => a.kind), [3, 3, 3], "client spans")
        const port = Number(new URL(endpoint.url).port)
        for (const attempt of attempts) {
          // OpenTelemetry HTTP client conventions: the host alone, the port apart, the full URL.
          assert.strictEqual(attempt.attributes["http.request.method"], "POST")
          assert.strictEqual(attempt.attributes["server.address"], "127.0.0.1")
          assert.strictEqual(attempt.attributes["server.port"], port)
          assert.strictEqual(attempt.attributes["url.full"], endpoint.url)
          assert.strictEqual(attempt.attributes["oauth.client_id"], CLIENT_ID)
        }
        // A failed attempt: ERROR, the error's message, one exception event with its type and no stack.
        for (const failed of attempts.slice(0, 2)) {
          assert.include(failed.status.message ?? "", "503")
          const exceptions = failed.events.filter((e) => e.name === "exception")
          assert.strictEqual(exceptions.length, 1)
          assert.strictEqual(exceptions[0]!.attributes["exception.type"], "ServerError")
          assert.isUndefined(exceptions[0]!.attributes["exception.stacktrace"])
        }
        assert.deepStrictEqual(attempts[2]!.events, [])
        // The backoff really happened between attempts (10 ms, then 20 ms; a little slack for timer rounding).
        const gap = (i: number) => Number(BigInt(attempts[i + 1]!.startTimeUnixNano) - BigInt(attempts[i]!.endTimeUnixNano)) / 1e6
        assert.isAtLeast(gap(0), 8)
        assert.isAtLeast(gap(1), 18)

        // Two retries recorded on the refresh span, with the delay the policy chose.
        const retries = refresh.events.filter((e) => e.name === Telemetry.Events.retry)
        assert.deepStrictEqual(retries.map((e) => e.attributes), [
          { "renew.attempt": 1, "error.type": "ServerError", "renew.retry.delay_ms": 10 },
          { "renew.attempt": 2, "error.type": "ServerError", "renew.retry.delay_ms": 20 }
        ])
        assert.isFalse(refresh.events.some((e) => e.name === Telemetry.Events.giveUp))

        // The raw grant key is nowhere; its hash is where it should be.
        assert.isFalse(spans.some((s) => spanStrings(s).some((text) => text.includes(KEY))), "raw key in a span")
        assert.notInclude(receiver.payloadText(), KEY)
        assert.include(receiver.payloadText(), KEY_LABEL)
      }))
  }

  it.scopedLive("sends no traceparent to the token endpoint unless propagateTraceContext is on", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      // Off (the default): the authorization server is usually a third party.
      const quiet = yield* scriptedEndpoint()
      yield* traced(receiver, quiet, Effect.zipRight(seedExpired(quiet, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))))
      assert.strictEqual(quiet.refreshRequests, 1)
      assert.isTrue(quiet.requests.every((r) => r.headers.traceparent === undefined && r.headers.tracestate === undefined))
      // …while the spans are still exported.
      const quietSpans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.attempt).length === 1)
      )
      assert.strictEqual(named(quietSpans, Telemetry.SpanNames.refresh).length, 1)
      receiver.clear()

      // On: W3C trace context of the attempt (the request's CLIENT span), in the same trace as the refresh.
      const loud = yield* scriptedEndpoint()
      yield* traced(
        receiver,
        loud,
        Effect.zipRight(seedExpired(loud, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))),
        { engine: { endpoint: { propagateTraceContext: true } } }
      )
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length === 1)
      )
      const refreshSpan = only(spans, Telemetry.SpanNames.refresh)
      const attemptSpan = only(spans, Telemetry.SpanNames.attempt)
      assert.strictEqual(loud.requests.length, 1)
      assert.strictEqual(loud.requests[0]!.headers.traceparent, `00-${refreshSpan.traceId}-${attemptSpan.spanId}-01`)
    }))

  it.scopedLive("100 concurrent callers on an expired grant: one refresh span with 100 waiters", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      // The answer is held in the client until all 100 callers wait on the refresh, however slow the machine.
      const delivered = yield* Deferred.make<void>()
      const tokens = yield* traced(
        receiver,
        endpoint,
        Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          yield* seedExpired(endpoint, KEY)
          // Each caller in a span of its own, as request handlers would be.
          const callers = yield* Effect.forEach(
            Array.from({ length: 100 }),
            () => Effect.fork(refresher.getAccessToken(KEY).pipe(Effect.withSpan("caller")))
          )
          const waiting = Effect.map(
            Effect.forEach(callers, (caller) => caller.status),
            (statuses) => statuses.every(FiberStatus.isSuspended)
          )
          const deadline = Date.now() + 30_000
          while (!(yield* waiting)) {
            assert.isBelow(Date.now(), deadline, "100 callers wait on the refresh within 30 s")
            yield* Effect.sleep("5 millis")
          }
          yield* Deferred.succeed(delivered, undefined)
          return yield* Fiber.joinAll(callers)
        }),
        { layer: engineHoldingAnswers(endpoint, delivered) }
      )
      assert.strictEqual(endpoint.refreshRequests, 1)
      assert.deepStrictEqual([...new Set(tokens.map(Redacted.value))], [endpoint.lastIssued()!.accessToken])
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0)
      )
      const refresh = only(spans, Telemetry.SpanNames.refresh)
      assert.strictEqual(refresh.attributes["renew.single_flight.waiters"], 100)
      assert.strictEqual(refresh.attributes["renew.attempts"], 1)
      assert.strictEqual(only(spans, Telemetry.SpanNames.attempt).parentSpanId, refresh.spanId)
      assert.strictEqual(named(spans, Telemetry.SpanNames.lockWait).length, 1)
      // The shared refresh sits in the trace of the caller that started it; the 99 others only waited.
      const callers = named(spans, "caller")
      assert.strictEqual(callers.length, 100)
      const starter = callers.find((c) => c.spanId === refresh.parentSpanId)
      assert.isDefined(starter, "the refresh is a child of one caller's span")
      assert.strictEqual(refresh.traceId, starter!.traceId)
      assert.strictEqual(callers.filter((c) => c.traceId === refresh.traceId).length, 1)
    }))
})

describe("scheduled refreshes", () => {
  it.scopedLive("a scheduler's batch is a span; each grant's refresh is a trace of its own, linked to the batch", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      const report = yield* traced(
        receiver,
        endpoint,
        Effect.gen(function*() {
          for (const key of ["user:a", "user:b", "user:c"]) yield* seedExpired(endpoint, key)
          const scheduler = yield* RefreshScheduler.make({ maxPerSecond: 1000 })
          return yield* scheduler.sweep
        }).pipe(Effect.provide(Engine.endpointLayer(endpoint)))
      )
      assert.strictEqual(report.refreshed, 3)
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length >= 3)
      )
      const batch = only(spans, Telemetry.SpanNames.schedulerBatch)
      assert.strictEqual(batch.attributes["renew.scheduler.batch_size"], 3)
      const refreshes = named(spans, Telemetry.SpanNames.refresh)
      assert.strictEqual(refreshes.length, 3)
      for (const refresh of refreshes) {
        assert.strictEqual(refresh.attributes["renew.trigger"], "scheduled")
        assert.isUndefined(refresh.parentSpanId, "a root span, not the batch's child")
        assert.notStrictEqual(refresh.traceId, batch.traceId)
        assert.deepStrictEqual(refresh.links, [{ traceId: batch.traceId, spanId: batch.spanId }])
      }
    }))
})

describe("metrics", () => {
  it.scopedLive("outcomes, retries, cache hits and second-based durations arrive with OpenTelemetry names and units", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(unavailable, unavailable)
      yield* traced(
        receiver,
        endpoint,
        Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          yield* seedExpired(endpoint, KEY)
          yield* refresher.getAccessToken(KEY)
          for (let i = 0; i < 5; i++) yield* refresher.getAccessToken(KEY)
        }),
        { metrics: true }
      )
      // Default 60 s interval: what arrived is the final flush of the layer's teardown.
      assert.isTrue(receiver.requests.some((r) => r.path === "/v1/metrics"))
      assert.deepStrictEqual(receiver.errors, [])

      const metricOf = (name: string, type: "sum" | "histogram", unit: string) => {
        const metric = receiver.latestMetric(name)
        assert.isDefined(metric, `${name} exported`)
        assert.strictEqual(metric!.type, type, name)
        assert.strictEqual(metric!.unit, unit, `${name}: the unit is in the unit field`)
        assert.deepStrictEqual(metric!.scope, { name: "@renew/core", version: CORE_VERSION }, name)
        assert.isNotEmpty(metric!.description, name)
        return metric!
      }
      const sumOf = (name: string, unit: string, attributes: Record<string, unknown> = {}) => {
        const point = metricOf(name, "sum", unit).points.find((p) =>
          JSON.stringify(p.attributes) === JSON.stringify(attributes)
        )
        assert.isDefined(point, `${name}${JSON.stringify(attributes)} exported`)
        return point!.value!
      }
      // Recorded while the layer lived: exactly this run.
      assert.strictEqual(sumOf("renew.refreshes", "{refresh}", { "renew.outcome": "success" }), 1)
      assert.strictEqual(sumOf("renew.refresh.retries", "{retry}"), 2)
      assert.strictEqual(sumOf("renew.token.cache_hits", "{token}"), 5)

      const attempts = metricOf("renew.refresh.attempt.duration", "histogram", "s").points[0]!
      assert.strictEqual(attempts.count, 3)
      // Seconds: three loopback requests take more than nothing and far less than the 10 s timeout each.
      assert.isAbove(attempts.sum!, 0)
      assert.isBelow(attempts.sum!, 5)
      assert.deepStrictEqual(attempts.bounds, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
      const lockWait = metricOf("renew.lock.wait.duration", "histogram", "s").points[0]!
      assert.strictEqual(lockWait.count, 1)
      assert.isBelow(lockWait.sum!, 5)
      assert.strictEqual(receiver.latestMetric("renew.refreshes")!.serviceName, SERVICE)
      // Today's names only: none of the 0.1 names (renew_*_total, *_ms) is exported any more.
      assert.isFalse(receiver.metrics.some((m) => m.name.startsWith("renew_")), "no 0.1 metric name")

      // Labels are bounded values only: no grant key (nor even its hash) on any metric.
      for (const metric of receiver.metrics.filter((m) => m.name.startsWith("renew."))) {
        for (const point of metric.points) {
          for (const [label, value] of Object.entries(point.attributes)) {
            assert.notInclude(String(value), KEY, `${metric.name}{${label}}`)
            assert.notStrictEqual(value, KEY_LABEL, `${metric.name}{${label}}`)
          }
        }
      }
      const metricsText = receiver.requests.filter((r) => r.path === "/v1/metrics")
        .map((r) => r.body.toString("latin1") + JSON.stringify(r.decoded)).join("\n")
      assert.notInclude(metricsText, KEY)
      assert.include(metricsText, "renew.refreshes", "the search covers the metric payloads")
    }))

  it.scopedLive("the application's own Effect metrics are still exported, under their own scope", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      const own = Metric.counter("app_jobs_total", { incremental: true })
      yield* traced(
        receiver,
        endpoint,
        Effect.zipRight(Metric.increment(own), Effect.zipRight(seedExpired(endpoint, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY)))),
        { metrics: true }
      )
      const app = receiver.latestMetric("app_jobs_total")
      assert.isDefined(app)
      assert.notStrictEqual(app!.scope.name, "@renew/core")
      // Renew's metrics are exported once, through the @renew/core scope only.
      assert.deepStrictEqual(
        [...new Set(receiver.metrics.filter((m) => m.name === "renew.refreshes").map((m) => m.scope.name))],
        ["@renew/core"]
      )
    }))
})

describe("secrets", () => {
  for (const protocol of ["http/protobuf", "http/json"] as const) {
    it.scopedLive(`no client secret, refresh token or access token in any exported payload (${protocol})`, () =>
      Effect.gen(function*() {
        const receiver = yield* receiverScoped
        const endpoint = yield* scriptedEndpoint()
        const leaked: Array<string> = [CLIENT_SECRET, "at_initial_expired"]
        yield* traced(
          receiver,
          endpoint,
          Effect.gen(function*() {
            const refresher = yield* Refresher.Refresher
            const store = yield* TokenStore.TokenStore
            const storedRefreshToken = (key: string) =>
              Effect.map(store.get(key), (grant) => Option.getOrThrow(grant).refreshToken)

            // A: the server echoes the refresh token and the secret in a 503, then issues tokens.
            yield* seedExpired(endpoint, "a")
            const rtA = Redacted.value((yield* storedRefreshToken("a"))!)
            endpoint.script({
              kind: "respond",
              status: 503,
              body: { error: "server_error", error_description: `refresh_token ${rtA} of ${CLIENT_SECRET} failed` }
            })
            leaked.push(Redacted.value(yield* refresher.getAccessToken("a")))
            for (let i = 0; i < 3; i++) yield* refresher.getAccessToken("a")
            // …and a forced refresh rotates again.
            leaked.push(Redacted.value((yield* refresher.refresh("a")).accessToken!))

            // B: a terminal invalid_grant that quotes the refresh token and the secret (logged, recorded on the span).
            yield* seedExpired(endpoint, "b")
            const rtB = Redacted.value((yield* storedRefreshToken("b"))!)
            endpoint.script({
              kind: "respond",
              status: 400,
              body: { error: "invalid_grant", error_description: `token ${rtB} revoked; client_secret=${CLIENT_SECRET}` }
            })
            const failure = yield* Effect.flip(refresher.getAccessToken("b"))
            assert.strictEqual(failure._tag, "InvalidGrant")

            // C: a 200 the engine rejects (wrong token_type) whose body holds an access token.
            yield* seedExpired(endpoint, "c")
            const rejected = "at_CANARY-rejected-access-token-5d1e0b"
            leaked.push(rejected)
            endpoint.script({
              kind: "respond",
              status: 200,
              body: { access_token: rejected, token_type: "mac", refresh_token: "rt_CANARY-rejected-refresh-9a8b7c" }
            })
            leaked.push("rt_CANARY-rejected-refresh-9a8b7c")
            const c = yield* Effect.either(refresher.getAccessToken("c"))
            if (Either.isRight(c)) leaked.push(Redacted.value(c.right))
          }),
          { protocol, metrics: true, engine: { refresher: { retry: FAST_RETRY, forcedRefreshCooldown: 0 } } }
        )
        // Every refresh token the client ever presented, every one the server issued, the Basic credentials.
        for (const request of endpoint.requests) {
          if (request.form.refresh_token !== undefined) leaked.push(request.form.refresh_token)
          const authorization = request.headers.authorization
          if (typeof authorization === "string") leaked.push(authorization, authorization.replace(/^Basic /, ""))
        }
        leaked.push(endpoint.lastIssued()!.accessToken, endpoint.lastIssued()!.refreshToken!)
        assert.isAtLeast(endpoint.refreshRequests, 5)

        yield* Effect.promise(() =>
          receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length >= 4)
        )
        assert.deepStrictEqual(receiver.errors, [])
        const text = receiver.payloadText()
        // The search is over real payloads: what should be there is.
        assert.include(text, CLIENT_ID)
        assert.include(text, "InvalidGrant")
        assert.include(text, "renew.refreshes")
        for (const secret of new Set(leaked)) {
          assert.isAtLeast(secret.length, 16)
          assert.notInclude(text, secret, "a secret reached the exporter")
        }
      }))
  }
})

describe("layerConfig", () => {
  const fromEnv = (env: Record<string, string>) => ConfigProvider.fromMap(new Map(Object.entries(env)))

  it.scopedLive("with no endpoint it is empty: nothing is exported and the program runs", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      const nativeTracer = yield* Effect.tracer
      const envs: Array<Record<string, string>> = [
        {},
        { OTEL_SERVICE_NAME: "renew-nowhere", OTEL_METRICS_EXPORTER: "otlp" },
        { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: "true" }
      ]
      for (const [i, env] of envs.entries()) {
        assert.isUndefined(yield* Effect.withConfigProvider(Otel.config, fromEnv(env)), JSON.stringify(env))
        const key = `k-${i}`
        const [token, tracer] = yield* Effect.zipRight(
          seedExpired(endpoint, key),
          Effect.zip(Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(key)), Effect.tracer)
        ).pipe(
          Effect.provide(engine(endpoint, { refresher: { retry: FAST_RETRY } })),
          Effect.provide(Otel.layerConfig),
          Effect.withConfigProvider(fromEnv(env))
        )
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(tracer, nativeTracer, "Effect's own tracer: no OpenTelemetry SDK was started")
      }
      assert.strictEqual(endpoint.refreshRequests, 3)
      yield* Effect.sleep("50 millis")
      assert.strictEqual(receiver.requests.length, 0)
    }))

  it.scopedLive("with OTEL_EXPORTER_OTLP_ENDPOINT, spans arrive with the service name and resource attributes", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.zipRight(seedExpired(endpoint, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))).pipe(
        Effect.provide(engine(endpoint, { refresher: { retry: FAST_RETRY } })),
        Effect.provide(Otel.layerConfig),
        Effect.withConfigProvider(fromEnv({
          OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_SERVICE_NAME: "renew-from-env",
          OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test,service.namespace=billing%20team"
        }))
      )
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0)
      )
      const refresh = only(spans, Telemetry.SpanNames.refresh)
      assert.strictEqual(refresh.serviceName, "renew-from-env")
      assert.strictEqual(refresh.resource["deployment.environment.name"], "test")
      assert.strictEqual(refresh.resource["service.namespace"], "billing team")
      assert.strictEqual(only(spans, Telemetry.SpanNames.attempt).parentSpanId, refresh.spanId)
      assert.isTrue(receiver.requests.every((r) => r.path === "/v1/traces" && r.contentType === "application/json"))
    }))

  it.scopedLive("OTEL_METRICS_EXPORTER=otlp adds metrics; the traces protocol and endpoint can be set per signal", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.zipRight(seedExpired(endpoint, KEY), Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))).pipe(
        Effect.provide(engine(endpoint, { refresher: { retry: FAST_RETRY } })),
        Effect.provide(Otel.layerConfig),
        Effect.withConfigProvider(fromEnv({
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
          OTEL_METRICS_EXPORTER: "otlp"
        }))
      )
      yield* Effect.promise(() => receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0))
      const metric = yield* Effect.promise(() => receiver.waitForMetric("renew.refreshes"))
      assert.strictEqual(metric.serviceName, "renew", "default service name")
      const types = new Set(receiver.requests.map((r) => `${r.path} ${r.contentType}`))
      assert.deepStrictEqual([...types].sort(), ["/v1/metrics application/json", "/v1/traces application/x-protobuf"])
    }))

  it.effect("refuses grpc instead of exporting to the wrong port", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(Otel.layerConfig)).pipe(
          Effect.withConfigProvider(fromEnv({
            OTEL_EXPORTER_OTLP_ENDPOINT: "http://localhost:4317",
            OTEL_EXPORTER_OTLP_PROTOCOL: "grpc"
          }))
        )
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "grpc is not supported")
    }))
})

describe("logger", () => {
  it.scopedLive("a log line written inside a refresh carries the exported span's trace and span ids", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      const lines: Array<string> = []
      const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
        lines.push(args.map(String).join(" "))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      yield* traced(
        receiver,
        endpoint,
        Effect.gen(function*() {
          yield* Effect.logInfo("before any span")
          yield* seedExpired(endpoint, KEY)
          yield* Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY))
        }).pipe(Effect.provide(Otel.logger))
      )
      spy.mockRestore()
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0)
      )
      const refresh = only(spans, Telemetry.SpanNames.refresh)
      const line = lines.find((l) => l.includes("renew: refreshed access token"))
      assert.isDefined(line, `log lines: ${lines.join("\n")}`)
      // The default logger's logfmt, plus the ids.
      assert.match(line!, /^timestamp=\S+ level=INFO fiber=#\d+ message="renew: refreshed access token \(due\)"/)
      assert.include(line!, `trace_id=${refresh.traceId}`)
      assert.include(line!, `span_id=${refresh.spanId}`)
      assert.include(line!, `renew.grant.key_hash=${KEY_LABEL}`)
      assert.notInclude(line!, KEY)
      // Outside any span there is nothing to correlate with.
      const outside = lines.find((l) => l.includes("before any span"))
      assert.isDefined(outside)
      assert.notInclude(outside!, "trace_id=")
    }))
})

describe("README example", () => {
  it.scopedLive("packages/opentelemetry/examples/jaeger.ts exports its refresh trace and logs with trace ids", () =>
    Effect.gen(function*() {
      const receiver = yield* receiverScoped
      const endpoint = yield* scriptedEndpoint()
      const lines: Array<string> = []
      const spy = vi.spyOn(console, "log").mockImplementation((...args: Array<unknown>) => {
        lines.push(args.map(String).join(" "))
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => spy.mockRestore()))
      yield* jaegerExample.pipe(Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url],
          ["OTEL_SERVICE_NAME", "renew-example"],
          ["TOKEN_URL", endpoint.url],
          ["CLIENT_ID", CLIENT_ID],
          ["CLIENT_SECRET", CLIENT_SECRET],
          ["REFRESH_TOKEN", endpoint.mintRefreshToken()]
        ])
      )))
      spy.mockRestore()
      assert.strictEqual(endpoint.refreshRequests, 1)
      const spans = yield* Effect.promise(() =>
        receiver.waitForSpans((spans) => named(spans, Telemetry.SpanNames.refresh).length > 0)
      )
      const refresh = only(spans, Telemetry.SpanNames.refresh)
      assert.strictEqual(refresh.serviceName, "renew-example")
      assert.strictEqual(refresh.attributes["renew.outcome"], "success")
      assert.strictEqual(only(spans, Telemetry.SpanNames.attempt).parentSpanId, refresh.spanId)
      const line = lines.find((l) => l.includes("renew: refreshed access token"))
      assert.include(line ?? "", `trace_id=${refresh.traceId}`)
      assert.isTrue(lines.some((l) => l.includes("user-42 has a fresh access token")))
    }))
})
