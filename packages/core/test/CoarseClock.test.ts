/**
 * The Promise facade reads the clock coarsely on its cached path; that must never serve a token past its expiry, even
 * to a loop that only awaits microtasks, where no macrotask ever runs to move the coarse clock (issue 11, failure 8).
 * Real time by nature: the facade runs on the real clock.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { TokenManager } from "@renew/core"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const KEY = "user-1"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe("facade clock", () => {
  it("a loop that only awaits microtasks never gets a token past its expiry", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    const tokens = TokenManager.createTokenManager({ tokenEndpoint: endpoint.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    cleanups.push(() => tokens.dispose(), () => endpoint.close())

    await tokens.setGrant(KEY, { accessToken: "at_short_lived", refreshToken: endpoint.mintRefreshToken(), expiresIn: 2 })
    // The engine stamped the expiry before setGrant resolved: this bound is never earlier than the real one.
    const expiries = new Map<string, number>([["at_short_lived", Date.now() + 2000]])
    const expiryOf = (token: string): number => {
      let expiry = expiries.get(token)
      if (expiry === undefined) {
        // A token the server issued: it expires `expires_in` after the server built the response, at the latest.
        const issued = endpoint.issuedTokens.find((t) => t.accessToken === token)
        assert.isDefined(issued, "a token the server never issued")
        expiry = issued!.issuedAt + (issued!.expiresIn ?? 3600) * 1000
        expiries.set(token, expiry)
      }
      return expiry
    }

    const deadline = Date.now() + 2500
    let calls = 0
    let expired = 0
    let firstExpired: { readonly lateByMs: number; readonly call: number } | undefined
    for (let startedAt = Date.now(); startedAt < deadline; startedAt = Date.now()) {
      // No timer, no I/O of our own: only what getAccessToken itself awaits.
      const token = await tokens.getAccessToken(KEY)
      calls++
      const expiry = expiryOf(token)
      if (startedAt >= expiry) {
        expired++
        firstExpired ??= { lateByMs: startedAt - expiry, call: calls }
      }
    }
    assert.strictEqual(
      expired,
      0,
      `${expired} of ${calls} calls got an expired token (the first ${firstExpired?.lateByMs} ms late, call ${firstExpired?.call})`
    )
    assert.isAtLeast(endpoint.refreshRequests, 1, "the short-lived token was refreshed")
  }, 30_000)
})
