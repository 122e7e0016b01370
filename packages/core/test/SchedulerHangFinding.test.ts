/**
 * A finding about the engine's failure policy that the RefreshScheduler makes reachable for every grant in a store,
 * reported rather than changed (the policy belongs to `Refresher`; see the scheduler-facade report).
 *
 * A token endpoint that accepts connections and never answers (a hung authorization server, a proxy holding requests)
 * makes every attempt a `Timeout` after the request was sent: an unknown outcome; so does a connection dropped after
 * the request was written (a network cut, a proxy resetting). The first keeps the grant's
 * refresh-in-flight intent; the grant is due again a minute later (the in-flight minute), and the scheduler's next
 * refresh is the one recovery presentation. If the endpoint still hangs, that recovery also ends without an outcome,
 * and the grant is marked `rotation_lost` — although the server never processed either request and says the refresh
 * token is active. With the scheduler, a hang of a couple of minutes marks every grant that came due during it, and
 * every one of those users must authorize again.
 *
 * Expected (this test's assertions): a grant whose presentations all ended without any answer stays alive (its intent
 * kept, tried again later), so it is refreshed once the server answers. `it.scoped.fails` records that the engine does
 * not do this yet; remove `.fails` with the fix.
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

describe("RefreshScheduler against a token endpoint that never answers (finding)", () => {
  for (const [what, step] of cases) {
    it.scoped.fails(`the endpoint ${what}: two sweeps do not mark a grant whose refresh token the server never consumed`, () =>
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
        }).pipe(Effect.provide(replica))
      }), { timeout: 60_000 })
  }
})
