/**
 * `getGrantInfo`'s state, as a pure function of the stored grant and the time: dead before failing before expired
 * before due before fresh, and never a token in what it returns.
 */
import { assert, describe, it } from "@effect/vitest"
import { Token } from "@renew/core"
import { FastCheck, Redacted } from "effect"
import { grantInfo } from "../src/internal/grantInfo.js"

const SKEW = 60_000

describe("getGrantInfo's state", () => {
  it.prop(
    "follows the grant's fields and the clock",
    {
      issuedAt: FastCheck.integer({ min: 0, max: 1_000_000 }),
      lifetime: FastCheck.integer({ min: 0, max: 400_000 }),
      elapsed: FastCheck.integer({ min: 0, max: 500_000 }),
      hasAccessToken: FastCheck.boolean(),
      failing: FastCheck.boolean(),
      dead: FastCheck.boolean()
    },
    ({ dead, elapsed, failing, hasAccessToken, issuedAt, lifetime }) => {
      const grant = new Token.Grant({
        ...(hasAccessToken ? { accessToken: Redacted.make("at_secret_value") } : {}),
        refreshToken: Redacted.make("rt_secret_value"),
        tokenType: "Bearer",
        issuedAt,
        expiresAt: issuedAt + lifetime,
        version: 1,
        ...(failing ? { failingSince: issuedAt } : {}),
        ...(dead ? { reauthRequired: "revoked" as const } : {})
      })
      const now = issuedAt + elapsed
      const info = grantInfo("k", "client", grant, now, SKEW)
      const dueAt = issuedAt + lifetime - Math.min(SKEW, lifetime / 2)
      const expected = dead
        ? "needs_reauth"
        : failing
        ? "failing"
        : !hasAccessToken || elapsed >= lifetime
        ? "expired"
        : now >= dueAt
        ? "due"
        : "fresh"
      assert.strictEqual(info.state, expected)
      assert.strictEqual(info.reauthReason, dead ? "revoked" : undefined)
      assert.strictEqual(info.expiresAt, hasAccessToken ? issuedAt + lifetime : 0)
      assert.notInclude(JSON.stringify(info), "secret_value")
    }
  )
})
