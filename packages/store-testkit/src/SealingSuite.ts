/**
 * ONE suite for encryption at rest, for every store that seals tokens (SQLite, Redis, PostgreSQL), with raw access to
 * the stored record to plant what an attacker with write access to the store (or an older store) could:
 *
 * - tokens are sealed at rest and read back, through another client too (property: any grant round-trips exactly);
 * - a downgrade is refused: with encryption on, a grant whose tokens are stored in plaintext is a `StoreError` that
 *   says what to do, unless the migration option `encryption.allowLegacyRows` is set (then it is read, and sealed on
 *   its next write);
 * - a sealed value is bound to its grant, field and version: an old ciphertext restored under a newer version, or
 *   moved to another grant, fails to open;
 * - a value sealed the way earlier stores did (without the version) is refused unless `allowLegacyRows`.
 */
import { assert, describe, it } from "@effect/vitest"
import type { TokenStore } from "@renew/core"
import { Effect, Option, Redacted } from "effect"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Grants from "./Grants.js"
import { roundTripProperty, uniqueKey } from "./TokenStoreSuite.js"

/** What the stores take as `encryption` (structurally). */
export interface Encryption {
  readonly keys: Readonly<Record<string, Redacted.Redacted<string>>>
  readonly activeKeyId: string
  readonly allowLegacyRows?: boolean | undefined
}

/** A stored record as text, by field name (`GrantRecord` names); `null`: absent. */
export type RawRecord = Readonly<Record<string, string | null>>

export interface SealingSuiteOptions<E> {
  readonly open: (encryption: Encryption | undefined) => Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>
  /** Reads the stored record of `key` (raw backend access). */
  readonly readRecord: (key: string) => Effect.Effect<RawRecord, unknown, Scope.Scope>
  /** Overwrites these fields of the stored record of `key`, leaving the others (raw backend access). */
  readonly writeRecord: (key: string, fields: RawRecord) => Effect.Effect<void, unknown, Scope.Scope>
  /** Runs of the sealed round-trip property (default 50). */
  readonly propertyRuns?: number | undefined
}

const KEY_1 = Buffer.alloc(32, 11).toString("base64")
const KEY_2 = Buffer.alloc(32, 12).toString("base64")

/** k1 active. */
export const encryption = (extra: Partial<Encryption> = {}): Encryption => ({
  keys: { k1: Redacted.make(KEY_1), k2: Redacted.make(KEY_2) },
  activeKeyId: "k1",
  ...extra
})

/** Seals `plain` the way stores before version binding did: additional data `<grant key> NUL <field>`. */
const sealUnbound = (plain: string, key: string, field: string): string => {
  const iv = Crypto.randomBytes(12)
  const cipher = Crypto.createCipheriv("aes-256-gcm", Buffer.from(KEY_1, "base64"), iv)
  cipher.setAAD(Buffer.from(`${key}\u0000${field}`))
  const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")
}

const AT = "at_sealing_canary_value"
const RT = "rt_sealing_canary_value"

export const suite = <E>(name: string, options: SealingSuiteOptions<E>): void => {
  const { open } = options
  const sample = (accessToken = AT, refreshToken = RT) =>
    Grants.sample({ accessToken: Redacted.make(accessToken), refreshToken: Redacted.make(refreshToken) })

  describe(`TokenStore encryption at rest: ${name}`, () => {
    it.scopedLive("seals the tokens at rest under the active key id, and reads them back through another client", () =>
      Effect.gen(function*() {
        const [a, b] = [yield* open(encryption()), yield* open(encryption())]
        const key = uniqueKey("sealed")
        yield* a.compareAndSet(key, undefined, sample())
        const raw = yield* options.readRecord(key)
        assert.strictEqual(raw["key_id"], "k1")
        assert.notInclude(JSON.stringify(raw), AT)
        assert.notInclude(JSON.stringify(raw), RT)
        const read = Option.getOrThrow(yield* b.get(key))
        assert.strictEqual(Redacted.value(read.accessToken!), AT)
        assert.strictEqual(Redacted.value(read.refreshToken!), RT)
      }))

    it.scopedLive("refuses a grant stored in plaintext (a downgrade) with a StoreError that says what to do", () =>
      Effect.gen(function*() {
        const plain = yield* open(undefined)
        const sealed = yield* open(encryption())
        // Written before encryption was turned on.
        const before = uniqueKey("plaintext-before")
        yield* plain.compareAndSet(before, undefined, sample())
        // Planted into a sealed grant: plaintext tokens, no key id.
        const planted = uniqueKey("plaintext-planted")
        yield* sealed.compareAndSet(planted, undefined, sample())
        yield* options.writeRecord(planted, { access_token: "at_planted", refresh_token: "rt_planted", key_id: null })
        for (const key of [before, planted]) {
          const error = yield* Effect.flip(sealed.get(key))
          assert.strictEqual(error._tag, "StoreError")
          assert.match(error.message, /plaintext although encryption is configured.*allowLegacyRows/)
          assert.notInclude(error.message, "at_planted")
          assert.notInclude(error.message, AT)
        }
      }))

    it.scopedLive("with allowLegacyRows, a plaintext grant is read and sealed on its next write", () =>
      Effect.gen(function*() {
        const plain = yield* open(undefined)
        const migrating = yield* open(encryption({ allowLegacyRows: true }))
        const key = uniqueKey("plaintext-migration")
        yield* plain.compareAndSet(key, undefined, sample())
        const read = Option.getOrThrow(yield* migrating.get(key))
        assert.strictEqual(Redacted.value(read.refreshToken!), RT)
        yield* migrating.compareAndSet(key, read.version, read)
        const raw = yield* options.readRecord(key)
        assert.strictEqual(raw["key_id"], "k1")
        assert.notInclude(JSON.stringify(raw), RT)
        // Sealed now: readable without the migration option.
        const strict = yield* open(encryption())
        assert.strictEqual(Redacted.value(Option.getOrThrow(yield* strict.get(key)).refreshToken!), RT)
      }))

    it.scopedLive("an old ciphertext restored under a newer version, or moved to another grant, fails to open", () =>
      Effect.gen(function*() {
        const store = yield* open(encryption())
        const key = uniqueKey("restored")
        yield* store.compareAndSet(key, undefined, sample("at_version_1", "rt_version_1"))
        const v1 = yield* options.readRecord(key)
        yield* store.compareAndSet(key, 1, sample("at_version_2", "rt_version_2"))
        // Someone with write access puts version 1's sealed tokens back into the version-2 row.
        yield* options.writeRecord(key, { access_token: v1["access_token"]!, refresh_token: v1["refresh_token"]! })
        const error = yield* Effect.flip(store.get(key))
        assert.strictEqual(error._tag, "StoreError")
        assert.match(error.message, /cannot decrypt/)
        // Moved to another grant at the same version.
        const other = uniqueKey("moved")
        yield* store.compareAndSet(other, undefined, sample())
        yield* options.writeRecord(other, { access_token: v1["access_token"]!, refresh_token: v1["refresh_token"]! })
        assert.match((yield* Effect.flip(store.get(other))).message, /cannot decrypt/)
      }))

    it.scopedLive("a value sealed without its version (earlier stores) is refused unless allowLegacyRows", () =>
      Effect.gen(function*() {
        const strict = yield* open(encryption())
        const migrating = yield* open(encryption({ allowLegacyRows: true }))
        const key = uniqueKey("unbound")
        yield* strict.compareAndSet(key, undefined, sample())
        yield* options.writeRecord(key, {
          access_token: sealUnbound("at_unbound", key, "access_token"),
          refresh_token: sealUnbound("rt_unbound", key, "refresh_token"),
          key_id: "k1"
        })
        const error = yield* Effect.flip(strict.get(key))
        assert.strictEqual(error._tag, "StoreError")
        assert.match(error.message, /sealed without its version.*allowLegacyRows/)
        const read = Option.getOrThrow(yield* migrating.get(key))
        assert.strictEqual(Redacted.value(read.refreshToken!), "rt_unbound")
      }))

    it.scopedLive("property: any grant the engine can build round-trips exactly, sealed", () =>
      Effect.gen(function*() {
        const [a, b] = [yield* open(encryption()), yield* open(encryption({ activeKeyId: "k2" }))]
        yield* roundTripProperty(a, b, "sealed-property", options.propertyRuns ?? 50)
      }), { timeout: 60_000 })
  })
}
