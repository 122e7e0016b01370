/**
 * An `invalid_grant` never kills a grant that is alive or was replaced meanwhile (issue 11, failures 2 and 6): a
 * replayed error fails as it is (no diagnosis, no marking), and a grant stored during the refresh is what callers get
 * (ER-2).
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenManager, TokenStore } from "@renew/core"
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Deferred, Effect, Either, Layer, Option, Redacted, TestClock } from "effect"
import { startScriptedTokenEndpoint, type Step } from "@renew/scripted-endpoint-fixture"
import { seenErrors } from "./support/canary.js"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } from "./support/harness.js"
import { joinWithin } from "./support/time.js"

const KEY = "user-1"

const invalidGrant = (): Step => ({
  kind: "respond",
  status: 400,
  body: { error: "invalid_grant", error_description: "grant request is invalid" }
})

const stored = (key: string) =>
  Effect.flatMap(TokenStore.TokenStore, (store) => store.get(key)).pipe(Effect.map(Option.getOrThrow))

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe("invalid_grant", () => {
  // Failure 2: the replay inside the cooldown ran the diagnosis again and marked the grant needs_reauth ("unknown").
  it.scoped("introspection says the refresh token is active: the grant is kept, and the replay neither asks nor marks it", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        // A policy rejection: the server says invalid_grant although the refresh token is live (introspects active).
        endpoint.script(invalidGrant())
        const first = yield* Effect.flip(refresher.getAccessToken(KEY))
        seen.add(first)
        assert.strictEqual(first._tag, "InvalidGrant")
        assert.strictEqual(endpoint.refreshRequests, 1)
        assert.isUndefined((yield* stored(KEY)).reauthRequired, "an alive refresh token is never marked dead")
        const requestsAfterFirst = endpoint.requests.length

        yield* TestClock.adjust("1 second")
        const second = yield* Effect.flip(refresher.getAccessToken(KEY))
        seen.add(second)
        assert.strictEqual(second._tag, "InvalidGrant")
        assert.strictEqual(
          second._tag === "InvalidGrant" ? second.reason : "",
          first._tag === "InvalidGrant" ? first.reason : ""
        )
        assert.strictEqual(endpoint.requests.length, requestsAfterFirst, "a replay sends nothing (no refresh, no introspection)")
        assert.isUndefined((yield* stored(KEY)).reauthRequired, "a replayed error marks nothing")

        // Past the cooldown the engine asks again; the token is live, so it works.
        yield* TestClock.adjust("30 seconds")
        const token = yield* Effect.either(refresher.getAccessToken(KEY))
        assert.isTrue(Either.isRight(token), `got ${Either.isLeft(token) ? token.left._tag : ""}`)
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(
        Effect.provide(engine(endpoint, {
          endpoint: { introspectionUrl: endpoint.introspectionUrl },
          refresher: { failureCooldown: "30 seconds" }
        }))
      )
      seen.assertNoSecrets(endpoint)
    }))

  // Failure 6 (ER-2): the waiter got the terminal error although a fresh grant had been stored meanwhile.
  it.scoped("a grant stored while an invalid_grant is on its way is what the caller gets; nothing is marked", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      // The server's answer is held in the client until the grant is stored, however slow the machine.
      const delivered = yield* Deferred.make<void>()
      const held = HttpClient.tap(() => Deferred.await(delivered))
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        endpoint.script(invalidGrant())
        const caller = yield* Effect.fork(Effect.either(refresher.getAccessToken(KEY)))
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        // The user re-authorizes while the doomed refresh is in flight.
        yield* refresher.setGrant(KEY, { accessToken: "at_fresh", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
        yield* Deferred.succeed(delivered, undefined)
        const result = yield* joinWithin(caller, "the caller")
        assert.isTrue(Either.isRight(result), `got ${Either.isLeft(result) ? result.left._tag : ""}`)
        assert.strictEqual(Either.isRight(result) ? Redacted.value(result.right) : "", "at_fresh")
        const grant = yield* stored(KEY)
        assert.isUndefined(grant.reauthRequired)
        assert.strictEqual(Redacted.value(grant.accessToken!), "at_fresh")
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { http: held })))
    }))

  it("facade: a grant stored while an invalid_grant is on its way is what the caller gets", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    // The server's answer is held in the client until the grant is stored, however slow the machine.
    let deliver = () => {}
    const delivered = new Promise<void>((resolve) => (deliver = resolve))
    const tokens = TokenManager.createTokenManager({
      tokenEndpoint: endpoint.url,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      httpClient: Layer.effect(
        HttpClient.HttpClient,
        Effect.map(HttpClient.HttpClient, HttpClient.tap(() => Effect.promise(() => delivered)))
      ).pipe(Layer.provide(NodeHttpClient.layerUndici))
    })
    cleanups.push(() => tokens.dispose(), () => endpoint.close())
    await tokens.setGrant(KEY, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    endpoint.script(invalidGrant())
    const pending = tokens.getAccessToken(KEY).then((token) => ({ token }), (error: unknown) => ({ error }))
    await endpoint.waitForRequests(1)
    await tokens.setGrant(KEY, { accessToken: "at_fresh", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
    deliver()
    const result = await pending
    const seen = seenErrors()
    if ("error" in result) seen.add(result.error)
    seen.assertNoSecrets(endpoint)
    assert.isTrue(
      "token" in result,
      "error" in result && RefreshError.isRefreshError(result.error) ? `got ${result.error._tag}` : String(result)
    )
    assert.strictEqual("token" in result ? result.token : undefined, "at_fresh")
    assert.strictEqual(await tokens.getAccessToken(KEY), "at_fresh")
    assert.strictEqual(endpoint.refreshRequests, 1)
  })
})
