/**
 * Callers against a token endpoint that accepts requests and never answers. Each attempt's outcome is unknown, so the
 * grant keeps its intent and is never marked dead; and the endpoint is not hammered: after each unanswered refresh,
 * callers get the error without a request for the retry interval (5 s), whatever their rate.
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, TokenStore } from "@renew/core"
import { Effect, Either, Fiber, TestClock } from "effect"
import { engine, scriptedEndpoint, seedExpired } from "./support/harness.js"
import { realSleep } from "./support/time.js"

const KEY = "user-1"

describe("a token endpoint that never answers", () => {
  it.scoped("callers every 100 ms for 16 s: one request per retry interval, the grant never marked dead", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(...Array.from({ length: 10 }, () => ({ kind: "hang" }) as const))
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const errors = new Set<string>()
        let at = 0
        while (at < 16_000) {
          const before = endpoint.refreshRequests
          const call = yield* Effect.fork(Effect.either(refresher.getAccessToken(KEY)))
          // Answered from the replayed error at once, or sent: then the 1 s timeout runs on the TestClock.
          const deadline = Date.now() + 30_000
          while ((yield* Fiber.poll(call))._tag === "None" && endpoint.refreshRequests === before) {
            if (Date.now() > deadline) assert.fail("the call neither ended nor reached the server")
            yield* realSleep(5)
          }
          if (endpoint.refreshRequests > before) {
            yield* TestClock.adjust("1 second")
            at += 1_000
          }
          const result = yield* Fiber.join(call)
          if (Either.isLeft(result)) errors.add(result.left._tag)
          yield* TestClock.adjust("100 millis")
          at += 100
        }
        // 0 s, then every 5 s retry interval plus the 1 s timeout: about one request per 6 s.
        assert.isAtMost(endpoint.refreshRequests, 4, "requests to an endpoint that does not answer")
        assert.isAtLeast(endpoint.refreshRequests, 2, "the recovery asked the server again")
        assert.deepStrictEqual([...errors], ["Timeout"])
        const stored = yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.get(KEY))
        assert.isTrue(stored._tag === "Some" && stored.value.reauthRequired === undefined, "the grant is alive")
      }).pipe(Effect.provide(engine(endpoint, {
        refresher: { retry: { maxAttempts: 1 } },
        endpoint: { timeout: "1 second" }
      })))
    }), { timeout: 120_000 })
})
