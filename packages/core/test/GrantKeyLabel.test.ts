/**
 * The grant-key label in spans and logs (issue 12, item 8): an unkeyed hash of a user id is reversed by enumeration
 * (`user-73519` from its FNV hash in 0.19 s). The label is an HMAC keyed by a secret the replicas share.
 */
import { assert, describe, it } from "@effect/vitest"
import { Telemetry } from "@renew/core"
import { Redacted } from "effect"

describe("grant-key label", () => {
  const label = Telemetry.grantKeyHasher(Redacted.make("CANARY-client-secret"))

  it("is stable for one secret (replicas correlate) and differs under another", () => {
    assert.strictEqual(label("user-73519"), Telemetry.grantKeyHasher(Redacted.make("CANARY-client-secret"))("user-73519"))
    assert.notStrictEqual(label("user-73519"), Telemetry.grantKeyHasher(Redacted.make("another-secret"))("user-73519"))
    assert.match(label("user-73519"), /^[0-9a-f]{16}$/)
  })

  it("cannot be enumerated back without the secret: an attacker's table of unkeyed hashes never matches", () => {
    const target = label("user-73519")
    for (let i = 0; i < 100_000; i++) {
      const candidate = `user-${i}`
      assert.notStrictEqual(Telemetry.hashKey(candidate), target)
    }
    assert.notStrictEqual(Telemetry.hashKey("user-73519"), target)
  })
})
