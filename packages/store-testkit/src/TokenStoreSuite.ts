/**
 * ONE conformance suite for every TokenStore. A store passes when all of it holds:
 * round trip of every field, compare-and-set conflicts (`StaleWrite`), a grant deleted during a refresh is not
 * resurrected (FN-2), the grant lock is mutually exclusive and released on failure and interruption, and keys never
 * wait on each other (SF-5); it reports its lease parameters and hands the lock's body a held lease; and it holds the
 * extreme values the same way as every other store:
 *
 * - times: 0, 2^53 - 1 and the far future exactly; a fraction is rounded to the nearest whole millisecond and a time
 *   out of `[0, 2^53 - 1]` clamped into it (`TokenStore.storable`: the engine never sends either, this is the stores'
 *   own guard); NaN is refused with `StoreError` and nothing is written;
 * - keys: any well-formed Unicode without NUL up to `TokenStore.MAX_KEY_BYTES` (2,048) UTF-8 bytes, compared exactly
 *   (no case folding, trimming or Unicode normalisation); anything else is refused with `StoreError` by every
 *   operation;
 * - 8 KiB tokens;
 * - property: any grant the engine can build round-trips exactly.
 */
import { assert, describe, it } from "@effect/vitest"
import { TokenStore, Token as CoreToken } from "@renew/core"
import { Deferred, Effect, Either, Exit, FastCheck, Fiber, Option, Redacted } from "effect"
import type * as Scope from "effect/Scope"
import * as Grants from "./Grants.js"

export interface SuiteOptions<E> {
  /**
   * Opens a client of the store under test. Every call within one test must reach the SAME backend (the same
   * file, server or map), as two processes would. Give it a lease TTL well above {@link PATIENCE} (the default 30 s
   * is right): the release test must tell a released lock from an expired lease.
   */
  readonly open: Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>
  /** Expected `durability`. */
  readonly durability: TokenStore.Durability
  /** Expected `lease` of the stores `open` makes: `undefined` for an in-process lock. */
  readonly lease: TokenStore.LeaseParameters | undefined
  /** Runs of the codec property (default 100). */
  readonly propertyRuns?: number | undefined
}

/**
 * How long a test waits for a lock that must be free at once. Generous, so a loaded machine cannot fail it; it only
 * turns a lock that is not free into a failure instead of a hang. Nothing asserts how long the wait took.
 */
export const PATIENCE = "10 seconds"

let counter = 0
/** Keys unique per test run, so suites can share a backend. */
export const uniqueKey = (label: string): string => `conformance:${label}:${process.pid}:${Date.now()}:${counter++}`

const grant = Grants.sample
const values = Grants.values

/**
 * Property: every grant of `Grants.arbitrary` written through `store` reads back exactly, through `reader` too.
 * Runs inside one test (one client pair), so a store that is slow to open is opened once.
 *
 * @since 0.1.0
 */
export const roundTripProperty = (
  store: TokenStore.TokenStore["Type"],
  reader: TokenStore.TokenStore["Type"],
  label: string,
  numRuns: number
): Effect.Effect<void> =>
  Effect.promise(() =>
    FastCheck.assert(
      FastCheck.asyncProperty(Grants.arbitrary, async (g) => {
        const key = uniqueKey(label)
        const exit = await Effect.runPromiseExit(Effect.gen(function*() {
          const written = yield* store.compareAndSet(key, undefined, g)
          const read = Option.getOrThrow(yield* reader.get(key))
          yield* store.delete(key)
          return { written, read }
        }))
        if (Exit.isFailure(exit)) throw new Error(`the store failed on a valid grant: ${String(exit.cause)}`)
        const { read, written } = exit.value
        assert.deepStrictEqual(values(read), { ...values(g), version: 1 })
        assert.deepStrictEqual(values(written), values(read))
      }),
      { numRuns }
    )
  )

export const suite = <E>(name: string, options: SuiteOptions<E>): void => {
  const { open } = options
  describe(`TokenStore conformance: ${name}`, () => {
    it.scopedLive("reports its durability", () =>
      Effect.map(open, (store) => assert.strictEqual(store.durability, options.durability)))

    it.scopedLive("get of an unknown key is None", () =>
      Effect.gen(function*() {
        const store = yield* open
        assert.isTrue(Option.isNone(yield* store.get(uniqueKey("unknown"))))
      }))

    it.scopedLive("round-trips every field, through another client too", () =>
      Effect.gen(function*() {
        const [a, b] = [yield* open, yield* open]
        const key = uniqueKey("roundtrip")
        const full = grant({
          scope: "openid offline_access api:read",
          refreshTokenExpiresAt: 1_700_086_400_000,
          refreshStartedAt: 1_700_000_001_000,
          reauthRequired: "rotation_lost",
          refreshDueAt: 1_700_003_000_000,
          failingSince: 1_700_000_002_000,
          accessToken: Redacted.make("at_ünïcode+/=&?\"'"),
          refreshToken: Redacted.make("rt_" + "x".repeat(2000))
        })
        const written = yield* a.compareAndSet(key, undefined, full)
        assert.strictEqual(written.version, 1)
        const read = Option.getOrThrow(yield* b.get(key))
        assert.deepStrictEqual(values(read), { ...values(full), version: 1 })
        // Optional fields stay absent.
        const minimalKey = uniqueKey("minimal")
        yield* a.compareAndSet(minimalKey, undefined, grant({ accessToken: undefined as never }))
        const minimal = Option.getOrThrow(yield* b.get(minimalKey))
        assert.isUndefined(minimal.accessToken)
        assert.isUndefined(minimal.scope)
        assert.isUndefined(minimal.reauthRequired)
        assert.isUndefined(minimal.refreshDueAt)
        assert.isUndefined(minimal.failingSince)
      }))

    it.scopedLive("compare-and-set bumps the version and refuses a stale writer", () =>
      Effect.gen(function*() {
        const store = yield* open
        const key = uniqueKey("cas")
        const v1 = yield* store.compareAndSet(key, undefined, grant())
        const v2 = yield* store.compareAndSet(key, v1.version, grant({ accessToken: Redacted.make("at_2") }))
        assert.strictEqual(v2.version, 2)
        // A writer still holding version 1 loses, and writes nothing.
        const stale = yield* Effect.either(
          store.compareAndSet(key, v1.version, grant({ accessToken: Redacted.make("at_stale") }))
        )
        assert.isTrue(Either.isLeft(stale))
        const error = (stale as Either.Left<any, any>).left
        assert.strictEqual(error._tag, "StaleWrite")
        assert.strictEqual(error.expectedVersion, 1)
        assert.strictEqual(error.actualVersion, 2)
        const read = Option.getOrThrow(yield* store.get(key))
        assert.strictEqual(Redacted.value(read.accessToken!), "at_2")
        // Creating over an existing grant is stale too.
        const create = yield* Effect.flip(store.compareAndSet(key, undefined, grant()))
        assert.strictEqual(create._tag, "StaleWrite")
      }))

    it.scopedLive("of concurrent writers expecting the same version, exactly one wins", () =>
      Effect.gen(function*() {
        const clients = [yield* open, yield* open, yield* open]
        const key = uniqueKey("race")
        const base = yield* clients[0]!.compareAndSet(key, undefined, grant())
        const results = yield* Effect.all(
          Array.from({ length: 24 }, (_, i) =>
            Effect.either(
              clients[i % clients.length]!.compareAndSet(
                key,
                base.version,
                grant({ accessToken: Redacted.make(`at_writer_${i}`) })
              )
            )),
          { concurrency: "unbounded" }
        )
        const winners = results.filter(Either.isRight)
        assert.strictEqual(winners.length, 1)
        assert.isTrue(results.filter(Either.isLeft).every((r) => r.left._tag === "StaleWrite"))
        const read = Option.getOrThrow(yield* clients[1]!.get(key))
        assert.strictEqual(Redacted.value(read.accessToken!), Redacted.value(winners[0]!.right.accessToken!))
        assert.strictEqual(read.version, 2)
      }))

    it.scopedLive("a grant deleted during a refresh is not resurrected (FN-2)", () =>
      Effect.gen(function*() {
        const store = yield* open
        const key = uniqueKey("deleted")
        const v1 = yield* store.compareAndSet(key, undefined, grant())
        yield* store.delete(key)
        const late = yield* Effect.flip(store.compareAndSet(key, v1.version, grant()))
        assert.strictEqual(late._tag, "StaleWrite")
        assert.isTrue(Option.isNone(yield* store.get(key)))
        yield* store.delete(key) // deleting nothing is fine
      }))

    it.scopedLive("the grant lock is mutually exclusive across clients", () =>
      Effect.gen(function*() {
        const clients = [yield* open, yield* open]
        const key = uniqueKey("lock")
        let inside = 0
        let maxInside = 0
        const critical = Effect.gen(function*() {
          inside++
          maxInside = Math.max(maxInside, inside)
          yield* Effect.sleep("15 millis")
          inside--
        })
        yield* Effect.all(
          Array.from({ length: 6 }, (_, i) => clients[i % 2]!.withLock(key, () => critical)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(maxInside, 1)
      }))

    it.scopedLive("keys never wait on each other's lock (SF-5)", () =>
      Effect.gen(function*() {
        const store = yield* open
        const [slow, fast] = [uniqueKey("slow"), uniqueKey("fast")]
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(store.withLock(slow, () => Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)))
        yield* Deferred.await(held)
        // Had the keys shared a lock, this would wait for the holder, which never lets go.
        const result = yield* store.withLock(fast, () => Effect.succeed("acquired")).pipe(Effect.timeout(PATIENCE))
        assert.strictEqual(result, "acquired")
        assert.isTrue(Option.isNone(yield* Fiber.poll(holder)), "the other key's holder still holds its lock")
        yield* Fiber.interrupt(holder)
      }))

    it.scopedLive("the lock is released when the body fails or is interrupted", () =>
      Effect.gen(function*() {
        const store = yield* open
        const key = uniqueKey("release")
        const failed = yield* Effect.flip(store.withLock(key, () => Effect.fail("boom" as const)))
        assert.strictEqual(failed, "boom")
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(store.withLock(key, () => Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)))
        yield* Deferred.await(held)
        yield* Fiber.interrupt(holder)
        // Well inside the lease TTL: only a release, not an expiry, lets this in.
        const result = yield* store.withLock(key, () => Effect.succeed("acquired")).pipe(Effect.timeout(PATIENCE))
        assert.strictEqual(result, "acquired")
      }))

    it.scopedLive("reports its lease parameters, and hands the lock's body a lease it holds", () =>
      Effect.gen(function*() {
        const store = yield* open
        assert.deepStrictEqual(store.lease, options.lease)
        if (options.lease !== undefined) {
          assert.strictEqual(options.lease.renewEveryMillis, Math.floor(options.lease.ttlMillis / 3))
        }
        const [confirmed, lost] = yield* store.withLock(
          uniqueKey("lease"),
          (lease) => Effect.map(lease.confirm, (held) => [held, lease.isLost()] as const)
        )
        assert.isTrue(confirmed)
        assert.isFalse(lost)
      }))

    describe("extreme values", () => {
      it.scopedLive("holds 0, 2^53 - 1 and the far future exactly", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          const key = uniqueKey("extreme-times")
          const g = grant({
            issuedAt: 0,
            expiresAt: Number.MAX_SAFE_INTEGER,
            refreshTokenExpiresAt: Grants.FAR_FUTURE,
            refreshStartedAt: 0,
            refreshDueAt: Grants.FAR_FUTURE,
            failingSince: 0
          })
          const written = yield* a.compareAndSet(key, undefined, g)
          assert.deepStrictEqual(values(written), { ...values(g), version: 1 })
          assert.deepStrictEqual(values(Option.getOrThrow(yield* b.get(key))), { ...values(g), version: 1 })
        }))

      it.scopedLive("holds times as whole milliseconds within [0, 2^53 - 1] (the Grant normalises them), and says so in what it returns", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          const key = uniqueKey("fractional-times")
          const g = Grants.unchecked({
            issuedAt: 1_700_000_000_000.4,
            expiresAt: 1_700_003_599_999.5,
            refreshTokenExpiresAt: 1e16 * 1000,
            refreshStartedAt: -5
          })
          const expected = {
            ...values(g),
            issuedAt: 1_700_000_000_000,
            // The Grant rounds down (an expiry is never later than the server's).
            expiresAt: 1_700_003_599_999,
            // The Grant clamps absolute times to the end of year 9999 (Token.maxEpochMillis).
            refreshTokenExpiresAt: CoreToken.maxEpochMillis,
            refreshStartedAt: 0,
            version: 1
          }
          const written = yield* a.compareAndSet(key, undefined, g)
          assert.deepStrictEqual(values(written), expected)
          assert.deepStrictEqual(values(Option.getOrThrow(yield* b.get(key))), expected)
          // Infinity is out of range too.
          const next = yield* a.compareAndSet(key, 1, Grants.unchecked({ expiresAt: Infinity }))
          assert.strictEqual(next.expiresAt, CoreToken.maxEpochMillis)
          assert.strictEqual(Option.getOrThrow(yield* b.get(key)).expiresAt, CoreToken.maxEpochMillis)
        }))

      it.scopedLive("a time that is not a number (NaN) never reaches the store: the Grant holds 0 (already expired)", () =>
        Effect.gen(function*() {
          const store = yield* open
          const key = uniqueKey("nan")
          const written = yield* store.compareAndSet(key, undefined, Grants.unchecked({ expiresAt: NaN }))
          assert.strictEqual(written.expiresAt, 0)
          assert.strictEqual(Option.getOrThrow(yield* store.get(key)).expiresAt, 0)
        }))

      it.scopedLive("holds 8 KiB tokens", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          const key = uniqueKey("big-tokens")
          const g = grant({
            accessToken: Redacted.make(Grants.utf8OfLength(8192, "A")),
            refreshToken: Redacted.make("rt_" + "x/+=".repeat(2047))
          })
          yield* a.compareAndSet(key, undefined, g)
          assert.deepStrictEqual(values(Option.getOrThrow(yield* b.get(key))), { ...values(g), version: 1 })
        }))

      it.scopedLive("takes any Unicode key up to 2,048 UTF-8 bytes, 1,000-character keys included, compared exactly", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          const run = uniqueKey("keys")
          const keys = [
            `${run}:ключ/用户/🔑/😀`,
            `${run}:${"k".repeat(1000)}`.slice(0, 1000),
            `${run}:${"é".repeat(1000)}`.slice(0, 1000),
            `${run}:${Grants.utf8OfLength(TokenStore.MAX_KEY_BYTES - Buffer.byteLength(`${run}:`))}`,
            // Distinct keys stay distinct: case, trailing space, composed vs decomposed é.
            `${run}:user`,
            `${run}:User`,
            `${run}:user `,
            `${run}:caf\u00e9`,
            `${run}:cafe\u0301`
          ]
          assert.strictEqual(Buffer.byteLength(keys[3]!), TokenStore.MAX_KEY_BYTES)
          for (const [i, key] of keys.entries()) {
            yield* a.compareAndSet(key, undefined, grant({ scope: `scope-${i}` }))
          }
          for (const [i, key] of keys.entries()) {
            assert.strictEqual(Option.getOrThrow(yield* b.get(key)).scope, `scope-${i}`, `key #${i}`)
            assert.strictEqual(yield* b.withLock(key, () => Effect.succeed(i)), i)
            yield* b.delete(key)
            assert.isTrue(Option.isNone(yield* a.get(key)))
          }
        }))

      it.scopedLive("refuses a key no store can hold (over 2,048 bytes, NUL, a lone surrogate) in every operation, without quoting it", () =>
        Effect.gen(function*() {
          const store = yield* open
          const secretish = "user-canary-7731"
          const bad = [
            `${secretish}:${Grants.utf8OfLength(TokenStore.MAX_KEY_BYTES)}`,
            `${secretish}:nul\u0000`,
            `${secretish}:lone\ud800`
          ]
          for (const key of bad) {
            const errors = [
              yield* Effect.flip(store.get(key)),
              yield* Effect.flip(store.compareAndSet(key, undefined, grant())),
              yield* Effect.flip(store.delete(key)),
              yield* Effect.flip(store.withLock(key, () => Effect.void))
            ]
            for (const error of errors) {
              assert.strictEqual(error._tag, "StoreError")
              assert.match(error.message, /grant key/)
              assert.notInclude(error.message, secretish)
            }
          }
        }))

      // Found by the property below: an empty string read back as "absent" made the grant unreadable.
      it.scopedLive("an empty token type or scope is a value, not an absence", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          const key = uniqueKey("empty-strings")
          const g = grant({ tokenType: "", scope: "" })
          yield* a.compareAndSet(key, undefined, g)
          assert.deepStrictEqual(values(Option.getOrThrow(yield* b.get(key))), { ...values(g), version: 1 })
        }))

      it.scopedLive("property: any grant the engine can build round-trips exactly", () =>
        Effect.gen(function*() {
          const [a, b] = [yield* open, yield* open]
          yield* roundTripProperty(a, b, "property", options.propertyRuns ?? 100)
        }), { timeout: 60_000 })
    })
  })
}
