/**
 * Against a real authorization server (oidc-provider, exp = floor(now in seconds) + TTL): the expiry Renew computes
 * for an access token is never later than the server's own, whatever the sub-second phase of the request.
 */
import { assert, describe, it } from "@effect/vitest"
import { TokenStore } from "@renew/core"
import { Effect, Redacted } from "effect"
import { authServer, engineFor } from "../support/authServerEngine.js"

describe("the expiry Renew computes for an access token", () => {
  it.scopedLive("is never later than the server's exp", () =>
    Effect.gen(function*() {
      const s = yield* authServer({ accessTokenTtlSeconds: 2 })
      const r = yield* engineFor(s, "basic", yield* TokenStore.makeMemory)
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
        // Real time, only to vary the sub-second phase of the next request; nothing depends on how long it takes.
        yield* Effect.sleep(`${97 * i} millis`)
      }
      assert.deepStrictEqual(overshoots.filter((ms) => ms > 0), [], "ms by which Renew thinks the token lives longer than it does")
    }))
})
