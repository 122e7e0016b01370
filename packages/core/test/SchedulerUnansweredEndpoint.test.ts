/**
 * The RefreshScheduler against a token endpoint that never answers: it accepts connections and hangs (every attempt a
 * `Timeout` after the request was sent), or drops every connection mid-request. Each attempt's outcome is unknown, so
 * the grant keeps its refresh-in-flight intent and comes due again a minute later. With the scheduler, a grant can meet
 * such an outage several times in a row; a recovery that ends without an answer must keep the intent (the server may
 * never have seen the request), never mark the grant dead, so that it is refreshed once the server answers. Before
 * 85f8761 the second unanswered presentation marked it `rotation_lost`, for every grant that came due during the
 * outage.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshEvents, RefreshScheduler, TokenEndpoint, TokenStore } from "@renew/core"
import { Effect, Fiber, Layer, Redacted, TestClock } from "effect"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint } from "./support/harness.js"
import { realSleep } from "./support/time.js"

const cases = [
  ["hangs (every attempt times out after it was sent)", { kind: "hang" }],
  ["drops every connection mid-request", { kind: "reset" }]
] as const

describe("RefreshScheduler against a token endpoint that never answers", () => {
  for (const [what, step] of cases) {
    it.scoped(`the endpoint ${what}: the grant stays alive through two sweeps, and is refreshed once it answers`, () =>
      Effect.gen(function*() {
        const endpoint = yield* scriptedEndpoint()
        const events: Array<RefreshEvents.RefreshEvent> = []
        const endpointLayer = TokenEndpoint.layer({
          url: endpoint.url,
          clientId: CLIENT_ID,
          clientSecret: Redacted.make(CLIENT_SECRET),
          timeout: "1 second"
        }).pipe(Layer.provide(NodeHttpClient.layerUndici))
        const replica = Layer.effect(RefreshScheduler.RefreshScheduler, RefreshScheduler.make({ maxPerSecond: 1_000 })).pipe(
          Layer.provideMerge(
            engine(endpoint, { refresher: { retry: { maxAttempts: 1 } }, endpoint: { timeout: "1 second" } }).pipe(
              Layer.provide(RefreshEvents.layer((event) => Effect.sync(() => void events.push(event))))
            )
          ),
          Layer.provide(endpointLayer),
          Layer.orDie
        )
        yield* Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          const scheduler = yield* RefreshScheduler.RefreshScheduler
          const store = yield* TokenStore.TokenStore
          const refreshToken = endpoint.mintRefreshToken()
          yield* refresher.setGrant("user-1", { accessToken: "at_expired", refreshToken, expiresIn: 0 })
          endpoint.script(step, step)
          for (const sent of [1, 2]) {
            const sweep = yield* Effect.fork(scheduler.sweep)
            yield* Effect.promise(() => endpoint.waitForRequests(sent))
            yield* realSleep(50)
            yield* TestClock.adjust("1 second") // the per-attempt timeout (a hang)
            assert.strictEqual((yield* Fiber.join(sweep)).failed, 1)
            yield* TestClock.adjust("3 minutes") // past the in-flight minute and the claim's hold
          }
          // The server never answered, and says so: the refresh token was never consumed.
          assert.isTrue(endpoint.isActive(refreshToken))
          assert.strictEqual(endpoint.issuedTokens.length, 0)
          const stored = yield* store.get("user-1")
          assert.isTrue(stored._tag === "Some")
          assert.deepStrictEqual(events.map((event) => event._tag), [], "no ReauthRequired when the server never answered")
          assert.isUndefined(stored._tag === "Some" ? stored.value.reauthRequired : "missing", "the grant is not marked")
          // The server answers again: the next sweep presents the same refresh token, once, and stores the new grant.
          const report = yield* scheduler.sweep
          assert.strictEqual(report.refreshed, 1)
          assert.strictEqual(endpoint.presentations(refreshToken), 3)
          assert.strictEqual(endpoint.issuedTokens.length, 1)
          const refreshed = yield* store.get("user-1")
          assert.strictEqual(
            refreshed._tag === "Some" ? Redacted.value(refreshed.value.accessToken!) : undefined,
            endpoint.lastIssued()!.accessToken
          )
        }).pipe(Effect.provide(replica))
      }), { timeout: 60_000 })
  }
})
