// Regressions found against the real server: each once failed.
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, it } from "@effect/vitest"
import { startAuthServer } from "@renew/auth-server-fixture"
import { Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import { Context, Effect, Layer, Option, Redacted } from "effect"

const server = Effect.acquireRelease(Effect.promise(() => startAuthServer({ accessTokenTtlSeconds: 2 })), (s) => Effect.promise(() => s.close()))
const engine = (s: Awaited<ReturnType<typeof startAuthServer>>, client: "basic" | "post", store: TokenStore.TokenStore["Type"]) =>
  Effect.map(Layer.build(Refresher.layer({ forcedRefreshCooldown: 0 }).pipe(
    Layer.provide(TokenEndpoint.layer({ url: s.tokenEndpoint, clientId: s.clients[client].clientId, clientSecret: Redacted.make(s.clients[client].clientSecret), authMethod: s.clients[client].authMethod, introspectionUrl: s.introspectionEndpoint })),
    Layer.provide(NodeHttpClient.layerUndici), Layer.provide(Layer.succeed(TokenStore.TokenStore, store)), Layer.orDie)), (ctx) => Context.get(ctx, Refresher.Refresher))

it.scopedLive("a refresh token the server still reports active is not marked dead by a misconfigured client", () =>
  Effect.gen(function*() {
    const s = yield* server
    const store = yield* TokenStore.makeMemory
    const misconfigured = yield* engine(s, "post", store)
    const g = yield* Effect.promise(() => s.obtainGrant())
    yield* misconfigured.setGrant("k", { accessToken: g.accessToken, refreshToken: g.refreshToken, expiresIn: 0 })
    const error = yield* Effect.flip(misconfigured.getAccessToken("k"))
    assert.strictEqual(error._tag, "InvalidGrant")
    assert.isTrue((yield* Effect.promise(() => s.introspect(g.refreshToken))).active) // Renew saw this too
    // The operator fixes the client id: the user's grant should still work.
    const fixed = yield* engine(s, "basic", store)
    const token = yield* Effect.either(fixed.getAccessToken("k"))
    assert.strictEqual(token._tag, "Right", `grant was left marked ${Option.getOrThrow(yield* store.get("k")).reauthRequired}`)
  }))

it.scopedLive("the expiry Renew computes is never later than the server's exp", () =>
  Effect.gen(function*() {
    const s = yield* server
    const r = yield* engine(s, "basic", yield* TokenStore.makeMemory)
    const g = yield* Effect.promise(() => s.obtainGrant())
    yield* r.setGrant("k", { accessToken: g.accessToken, refreshToken: g.refreshToken, expiresIn: 0 })
    const overshoots: Array<number> = []
    for (let i = 0; i < 10; i++) {
      const grant = yield* r.refresh("k")
      // The server's own record: introspection would answer a bare { active: false } (no exp, so nothing compared)
      // once the 2 s token expired, which a slow machine reaches before asking.
      const expiresAt = s.expiryOf(Redacted.value(grant.accessToken!))
      assert.isDefined(expiresAt, "the server issued this access token")
      overshoots.push(grant.expiresAt - expiresAt!)
      yield* Effect.sleep(`${97 * i} millis`)
    }
    assert.deepStrictEqual(overshoots.filter((ms) => ms > 0), [], "ms by which Renew thinks the token lives longer than it does")
  }))
