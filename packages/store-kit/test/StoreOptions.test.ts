/**
 * One option normaliser for every shared store: the same defaults, bounds and errors (never a throw, never a cast).
 */
import { assert, describe, it } from "@effect/vitest"
import * as StoreOptions from "@renew/store-kit/StoreOptions"
import { Duration, Either, Redacted } from "effect"

const KEY = Buffer.alloc(32, 1).toString("base64")

const left = <A, E>(either: Either.Either<A, E>): E => {
  if (Either.isRight(either)) return assert.fail(`expected a failure, got ${JSON.stringify(either.right)}`)
  return either.left
}

describe("StoreOptions.normalize", () => {
  it("defaults: a 30 s lease renewed every 10 s, waited for 60 s; no cipher", () => {
    const normal = Either.getOrThrow(StoreOptions.normalize({}))
    assert.deepStrictEqual(normal.lease, { ttlMillis: 30_000, renewEveryMillis: 10_000, waitMillis: 60_000 })
    assert.strictEqual(normal.maxPollMillis, 200)
    assert.isUndefined(normal.cipher)
  })

  it("durations are whole milliseconds, rounded up", () => {
    const normal = Either.getOrThrow(StoreOptions.normalize({ leaseTtl: Duration.micros(300_400n), lockWaitTimeout: 0.5 }))
    assert.deepStrictEqual(normal.lease, { ttlMillis: 301, renewEveryMillis: 100, waitMillis: 1 })
    assert.strictEqual(normal.maxPollMillis, 30)
  })

  it("out of bounds or not a duration: ConfigurationError naming the option", () => {
    for (const [options, option] of [
      [{ leaseTtl: 29 }, "leaseTtl"],
      [{ leaseTtl: Duration.infinity }, "leaseTtl"],
      [{ leaseTtl: Duration.days(2) }, "leaseTtl"],
      [{ leaseTtl: "soon" as Duration.DurationInput }, "leaseTtl"],
      [{ lockWaitTimeout: Duration.days(2) }, "lockWaitTimeout"]
    ] as const) {
      const error = left(StoreOptions.normalize(options))
      assert.strictEqual(error._tag, "ConfigurationError")
      assert.strictEqual(error.option, option)
    }
  })

  it("the cipher is an Either: a bad key, an unknown or empty key id is a ConfigurationError", () => {
    const short = left(StoreOptions.normalize({ encryption: { keys: { k1: Redacted.make("c2hvcnQ=") }, activeKeyId: "k1" } }))
    assert.strictEqual(short.option, "encryption.keys.k1")
    const unknown = left(StoreOptions.normalize({ encryption: { keys: { k1: Redacted.make(KEY) }, activeKeyId: "k2" } }))
    assert.strictEqual(unknown.option, "encryption.activeKeyId")
    const empty = left(StoreOptions.normalize({ encryption: { keys: { "": Redacted.make(KEY) }, activeKeyId: "" } }))
    assert.strictEqual(empty.option, "encryption.keys")
    const ok = Either.getOrThrow(StoreOptions.normalize({ encryption: { keys: { k1: Redacted.make(KEY) }, activeKeyId: "k1" } }))
    assert.strictEqual(ok.cipher?.activeKeyId, "k1")
    assert.isFalse(ok.cipher?.allowLegacyRows)
  })

  it("a per-call timeout is at most a third of the lease TTL; its default is capped there", () => {
    const lease = Either.getOrThrow(StoreOptions.normalize({ leaseTtl: 3000 })).lease
    assert.strictEqual(Either.getOrThrow(StoreOptions.callTimeout("commandTimeout", undefined, 2000, lease)), 1000)
    assert.strictEqual(Either.getOrThrow(StoreOptions.callTimeout("commandTimeout", 500, 2000, lease)), 500)
    assert.strictEqual(left(StoreOptions.callTimeout("queryTimeout", 1001, 5000, lease)).option, "queryTimeout")
  })
})
