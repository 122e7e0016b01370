/**
 * The negative cache (ER-3; issue 11, failure 5): a refresh that failed is replayed to later callers without a request,
 * for `failureCooldown` after a terminal failure and for `staleRetryInterval` after a transient one when there is no
 * valid token to serve. A grant stored meanwhile (a different refresh token) is not held back by it.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenManager, TokenStore } from "@renew/core"
import { Context, Effect, Either, Layer, Redacted, TestClock } from "effect"
import { startScriptedTokenEndpoint, type Step } from "@renew/scripted-endpoint-fixture"
import { seenErrors } from "./support/canary.js"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } from "./support/harness.js"

const KEY = "user-1"

const invalidScope: Step = { kind: "respond", status: 400, body: { error: "invalid_scope" } }
const unavailable: Step = { kind: "respond", status: 503, body: "<html>down for maintenance</html>" }
const times = (n: number, step: Step): ReadonlyArray<Step> => Array.from({ length: n }, () => step)

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe("negative cache", () => {
  it.scoped("a terminal invalid_scope: 16 calls in 1 s make one request and all fail alike; after 30 s it asks again", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      // Every request would fail the same way: only the request count tells a negative cache from none.
      endpoint.script(...times(20, invalidScope))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        for (let i = 0; i < 16; i++) {
          const error = yield* Effect.flip(refresher.getAccessToken(KEY))
          seen.add(error)
          assert.strictEqual(error._tag, "InvalidScope", `call ${i}`)
          yield* TestClock.adjust("62 millis")
        }
        assert.strictEqual(endpoint.refreshRequests, 1, "16 calls in 1 s on a terminal failure")
        // The default failureCooldown is 30 s: past it, the server is asked again.
        yield* TestClock.adjust("30 seconds")
        seen.add(yield* Effect.flip(refresher.getAccessToken(KEY)))
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(Effect.provide(engine(endpoint)))
      seen.assertNoSecrets(endpoint)
    }))

  it.scoped("a 503 without Retry-After and no valid token: 48 calls in 1 s make one request; after 5 s it asks again", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(...times(60, unavailable))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        for (let i = 0; i < 48; i++) {
          const error = yield* Effect.flip(refresher.getAccessToken(KEY))
          seen.add(error)
          assert.strictEqual(error._tag, "ServerError", `call ${i}`)
          yield* TestClock.adjust("20 millis")
        }
        assert.strictEqual(endpoint.refreshRequests, 1, "48 calls in 1 s on a failing server")
        // staleRetryInterval (default 5 s) bounds the replay of a transient failure.
        yield* TestClock.adjust("5 seconds")
        seen.add(yield* Effect.flip(refresher.getAccessToken(KEY)))
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { retry: { maxAttempts: 1 } } })))
      seen.assertNoSecrets(endpoint)
    }))

  it.scoped("a grant stored with setGrant after a terminal failure is refreshed at once, not answered from the cache", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(invalidScope)
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        assert.strictEqual((yield* Effect.flip(refresher.getAccessToken(KEY)))._tag, "InvalidScope")
        yield* TestClock.adjust("1 second")
        yield* refresher.setGrant(KEY, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("a grant another engine stored on the shared store after a terminal failure is not held back either", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(invalidScope)
      const store = Layer.succeed(TokenStore.TokenStore, yield* TokenStore.makeMemory)
      const a = Context.get(yield* Layer.build(engine(endpoint, { store })), Refresher.Refresher)
      const b = Context.get(yield* Layer.build(engine(endpoint, { store })), Refresher.Refresher)
      yield* a.setGrant(KEY, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
      assert.strictEqual((yield* Effect.flip(a.getAccessToken(KEY)))._tag, "InvalidScope")
      yield* TestClock.adjust("1 second")
      // "Another process" re-authorizes the user: a different refresh token, still expired access token.
      yield* b.setGrant(KEY, { accessToken: "at_expired_2", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
      const token = yield* Effect.either(a.getAccessToken(KEY))
      assert.isTrue(Either.isRight(token), `got ${Either.isLeft(token) ? token.left._tag : ""}`)
      assert.strictEqual(endpoint.refreshRequests, 2)
    }))

  it("facade: 16 calls on a terminal invalid_scope make one request", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    const tokens = TokenManager.createTokenManager(({
      tokenEndpoint: endpoint.url,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      failureCooldownSeconds: 30
    }))
    cleanups.push(() => tokens.dispose(), () => endpoint.close())
    endpoint.script(...times(20, invalidScope))
    await tokens.setGrant(KEY, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const seen = seenErrors()
    for (let i = 0; i < 16; i++) {
      const error = await tokens.getAccessToken(KEY).then(() => undefined, (e: unknown) => e)
      seen.add(error)
      assert.isTrue(RefreshError.isRefreshError(error))
      assert.strictEqual((error as RefreshError.RefreshError)._tag, "InvalidScope")
    }
    assert.strictEqual(endpoint.refreshRequests, 1)
    seen.assertNoSecrets(endpoint)
  })
})
