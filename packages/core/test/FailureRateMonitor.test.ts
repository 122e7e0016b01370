import { HttpClient, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { FailureRateMonitor, Refresher, RefreshError, TokenEndpoint, TokenStore } from "@renew/core"
import { Effect, Either, Exit, Layer, Logger, Redacted, TestClock } from "effect"
import { fakeEndpoint, KEY, seedExpired, tokenResponse } from "./support/fakeEndpoint.js"
import { joinWithin } from "./support/time.js"

const CLIENT = "client-a"

/** Records hook calls and log lines. */
const recorder = () => {
  const events: Array<{ kind: "alert" | "clear"; alert: FailureRateMonitor.FailureRateAlert }> = []
  const logs: Array<string> = []
  const options: FailureRateMonitor.FailureRateMonitorOptions = {
    window: "1 minute",
    threshold: 0.5,
    minVolume: 4,
    evaluateEvery: "5 seconds",
    onAlert: (alert) => Effect.sync(() => void events.push({ kind: "alert", alert })),
    onClear: (alert) => Effect.sync(() => void events.push({ kind: "clear", alert }))
  }
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message.join(" ") : message)))
  )
  return { events, logs, options, logger }
}

describe("FailureRateMonitor", () => {
  it.scoped("raises when the ratio crosses the threshold with enough volume, and clears on recovery", () =>
    Effect.gen(function*() {
      const { events, logger, logs, options } = recorder()
      const monitor = yield* FailureRateMonitor.make(options).pipe(Effect.provide(logger))
      const record = (tag: string | undefined) => monitor.record(CLIENT, tag).pipe(Effect.provide(logger))
      // 3 failures: 100 % but under the minimum volume.
      for (let i = 0; i < 3; i++) yield* record("InvalidClient")
      assert.strictEqual(events.length, 0)
      yield* record("InvalidClient")
      assert.strictEqual(events.length, 1)
      assert.strictEqual(events[0]!.kind, "alert")
      assert.deepStrictEqual(events[0]!.alert.byTag, { InvalidClient: 4 })
      assert.strictEqual(events[0]!.alert.total, 4)
      assert.isDefined(yield* monitor.current(CLIENT))
      assert.isTrue(logs.some((line) => line.includes("failure-rate alert raised") && line.includes("InvalidClient: 4")))
      // More failures do not raise it again.
      yield* record("ServerError")
      assert.strictEqual(events.length, 1)
      // Successes bring the ratio under the threshold: cleared.
      // 5 failures, 6 successes: 45 % < 50 %.
      for (let i = 0; i < 6; i++) yield* record(undefined)
      assert.strictEqual(events.length, 2)
      assert.strictEqual(events[1]!.kind, "clear")
      assert.isUndefined(yield* monitor.current(CLIENT))
      // Other clients are independent.
      yield* monitor.record("client-b", undefined)
      assert.strictEqual(events.length, 2)
    }))

  it.scoped("failures age out of the window: the alert clears on virtual time without new refreshes", () =>
    Effect.gen(function*() {
      const { events, options } = recorder()
      const monitor = yield* FailureRateMonitor.make(options)
      for (let i = 0; i < 6; i++) yield* monitor.record(CLIENT, "ServerError")
      assert.deepStrictEqual(events.map((e) => e.kind), ["alert"])
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(events.map((e) => e.kind), ["alert"])
      yield* TestClock.adjust("35 seconds")
      assert.deepStrictEqual(events.map((e) => e.kind), ["alert", "clear"])
      assert.strictEqual(events[1]!.alert.total, 0)
    }))

  it.scoped("old failures do not count toward a new alert", () =>
    Effect.gen(function*() {
      const { events, options } = recorder()
      const monitor = yield* FailureRateMonitor.make(options)
      for (let i = 0; i < 3; i++) yield* monitor.record(CLIENT, "Timeout")
      yield* TestClock.adjust("2 minutes")
      for (let i = 0; i < 3; i++) yield* monitor.record(CLIENT, "Timeout")
      assert.strictEqual(events.length, 0, "3 + 3 failures, but never 4 in one window")
    }))

  it.scoped("the Refresher reports refreshes that reached the token endpoint", () =>
    Effect.gen(function*() {
      const { events, options } = recorder()
      // A token endpoint that always says invalid_client.
      const http = Layer.succeed(
        HttpClient.HttpClient,
        HttpClient.make((request) =>
          Effect.succeed(HttpClientResponse.fromWeb(
            request,
            new Response(JSON.stringify({ error: "invalid_client" }), {
              status: 401,
              headers: { "content-type": "application/json" }
            })
          ))
        )
      )
      // No client pause here, so every refresh reaches the server.
      const layer = Refresher.layer({ invalidClientPause: 0 }).pipe(
        Layer.provide(TokenEndpoint.layer({ url: "https://auth.example.com/token", clientId: CLIENT })),
        Layer.provide(FailureRateMonitor.layer(options)),
        Layer.provide(http),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        for (let i = 0; i < 4; i++) {
          yield* refresher.setGrant(`user-${i}`, { accessToken: "a", refreshToken: "r", expiresIn: 0 })
          const error = yield* Effect.flip(refresher.getAccessToken(`user-${i}`))
          assert.strictEqual(error._tag, "InvalidClient")
        }
        // A missing grant never reaches the server: not counted.
        yield* Effect.flip(refresher.getAccessToken("nobody"))
        assert.strictEqual(events.length, 1)
        assert.deepStrictEqual(events[0]!.alert.byTag, { InvalidClient: 4 })
        assert.strictEqual(events[0]!.alert.clientId, CLIENT)
      }).pipe(Effect.provide(layer))
      assert.isFalse(Redacted.isRedacted(events[0]!.alert))
    }))
})

describe("FailureRateMonitor hooks never reach the callers", () => {
  // The hooks run in the flight's (uninterruptible) completion, before its callers are answered.
  it.effect("a failing onClear hook does not change the refresh's outcome", () =>
    Effect.gen(function*() {
      let calls = 0
      const layer = Refresher.layer({ retry: { maxAttempts: 1 }, staleRetryInterval: 0 }).pipe(
        Layer.provide(fakeEndpoint(() =>
          ++calls === 1
            ? Effect.fail(new RefreshError.ServerError({ status: 503 }))
            : Effect.succeed(tokenResponse(`at_${calls}`, `rt_${calls + 1}`))
        )),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.provide(FailureRateMonitor.layer({
          minVolume: 1,
          threshold: 0.6,
          onClear: () => Effect.die(new Error("webhook down"))
        })),
        Layer.orDie
      )
      const exit = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        yield* Effect.flip(refresher.getAccessToken(KEY)) // ServerError: alert raised
        return yield* Effect.exit(refresher.getAccessToken(KEY)) // succeeds at the server: alert cleared
      }).pipe(Effect.provide(layer))
      assert.isTrue(Exit.isSuccess(exit), `expected the refreshed token, got ${Exit.isFailure(exit) ? exit.cause : ""}`)
    }))

  it.scoped("a hanging onAlert hook does not hang the callers", () =>
    Effect.gen(function*() {
      const layer = Refresher.layer({ retry: { maxAttempts: 1 } }).pipe(
        Layer.provide(fakeEndpoint(() => Effect.fail(new RefreshError.ServerError({ status: 503 })))),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.provide(FailureRateMonitor.layer({ minVolume: 1, onAlert: () => Effect.never })),
        Layer.orDie
      )
      const run = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        const caller = yield* Effect.forkDaemon(Effect.either(refresher.getAccessToken(KEY)))
        return yield* joinWithin(caller, "the caller, with an onAlert hook that never ends")
        // Daemons: should one hang where nothing can interrupt it, the test still ends, with joinWithin's message.
      }).pipe(Effect.provide(layer), Effect.forkDaemon)
      const result = yield* joinWithin(run, "the layer's shutdown, with an onAlert hook that never ends")
      assert.strictEqual(Either.isLeft(result) ? result.left._tag : "", "ServerError")
    }))
})
