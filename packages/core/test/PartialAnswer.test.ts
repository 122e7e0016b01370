/**
 * A 2xx that carries a new refresh token but no usable access token (issue 12, item 2): the server has rotated, and
 * that answer holds the only copy of the grant's next refresh token. The engine stores it, fails the caller with
 * MalformedResponse (never showing the token), and the next refresh uses it: the grant survives.
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, TokenStore } from "@renew/core"
import { Effect, Option, Redacted } from "effect"
import { engine, scriptedEndpoint, seedExpired } from "./support/harness.js"

const KEY = "user-partial"

describe("a 2xx without a usable access token", () => {
  it.scopedLive("keeps the rotated refresh token it carried; the next refresh uses it", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const store = yield* TokenStore.TokenStore
        yield* seedExpired(endpoint, KEY)
        const presented = Redacted.value(Option.getOrThrow(yield* store.get(KEY)).refreshToken!)
        const next = endpoint.mintRefreshToken()
        endpoint.script({ kind: "respond", status: 200, body: { token_type: "Bearer", refresh_token: next } })

        const error = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(error._tag, "MalformedResponse")
        assert.notInclude(error.message, next)
        const stored = Option.getOrThrow(yield* store.get(KEY))
        assert.strictEqual(Redacted.value(stored.refreshToken!), next)
        assert.isUndefined(stored.refreshStartedAt)
        assert.isUndefined(stored.reauthRequired)

        // The next call refreshes with the kept token (the old one is never presented again).
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        const presentations = endpoint.requests.filter((r) => r.form["refresh_token"] === presented).length
        assert.strictEqual(presentations, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { failureCooldown: "30 seconds" } })))
    }))
})
