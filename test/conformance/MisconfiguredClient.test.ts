/**
 * Against a real authorization server (oidc-provider): a client sending a refresh token issued to another client gets
 * invalid_grant, and Renew must not take that as the end of the user's grant while the server still reports the token
 * active. Fixing the client's configuration is enough to refresh again.
 */
import { assert, describe, it } from "@effect/vitest"
import { TokenStore } from "@renew/core"
import { Effect, Option } from "effect"
import { authServer, engineFor } from "../support/authServerEngine.js"

describe("a misconfigured client does not cost the user their grant", () => {
  it.scopedLive("a refresh token the server still reports active is not marked dead by a misconfigured client", () =>
    Effect.gen(function*() {
      const s = yield* authServer({ accessTokenTtlSeconds: 2 })
      const store = yield* TokenStore.makeMemory
      const misconfigured = yield* engineFor(s, "post", store)
      const g = yield* Effect.promise(() => s.obtainGrant())
      yield* misconfigured.setGrant("k", { accessToken: g.accessToken, refreshToken: g.refreshToken, expiresIn: 0 })
      const error = yield* Effect.flip(misconfigured.getAccessToken("k"))
      assert.strictEqual(error._tag, "InvalidGrant")
      assert.isTrue((yield* Effect.promise(() => s.introspect(g.refreshToken))).active) // Renew saw this too
      // The operator fixes the client id: the user's grant should still work.
      const fixed = yield* engineFor(s, "basic", store)
      const token = yield* Effect.either(fixed.getAccessToken("k"))
      assert.strictEqual(token._tag, "Right", `grant was left marked ${Option.getOrThrow(yield* store.get("k")).reauthRequired}`)
    }))
})
