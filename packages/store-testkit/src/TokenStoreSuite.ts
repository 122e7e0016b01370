/**
 * ONE conformance suite for every TokenStore. A store passes when all of it holds:
 * round trip of every field, compare-and-set conflicts (`StaleWrite`), a grant deleted during a refresh is not
 * resurrected (FN-2), the grant lock is mutually exclusive and released on failure and interruption, and keys never
 * wait on each other (SF-5).
 */
import { assert, describe, it } from "@effect/vitest"
import { Token, TokenStore } from "@renew/core"
import { Deferred, Effect, Either, Fiber, Option, Redacted } from "effect"

export interface SuiteOptions<E> {
  /**
   * Opens a client of the store under test. Every call within one test must reach the SAME backend (the same
   * file, server or map), as two processes would. Give it a lease TTL well above {@link PATIENCE} (the default 30 s
   * is right): the release test must tell a released lock from an expired lease.
   */
  readonly open: Effect.Effect<TokenStore.TokenStore["Type"], E, import("effect/Scope").Scope>
  /** Expected `durability`. */
  readonly durability: TokenStore.Durability
}

/**
 * How long a test waits for a lock that must be free at once. Generous, so a loaded machine cannot fail it; it only
 * turns a lock that is not free into a failure instead of a hang. Nothing asserts how long the wait took.
 */
export const PATIENCE = "10 seconds"

let counter = 0
/** Keys unique per test run, so suites can share a backend. */
export const uniqueKey = (label: string): string => `conformance:${label}:${process.pid}:${Date.now()}:${counter++}`

const grant = (overrides: Partial<ConstructorParameters<typeof Token.Grant>[0]> = {}) =>
  new Token.Grant({
    accessToken: Redacted.make("at_conformance"),
    refreshToken: Redacted.make("rt_conformance"),
    tokenType: "Bearer",
    issuedAt: 1_700_000_000_000,
    expiresAt: 1_700_000_360_000,
    version: 0,
    ...overrides
  })

const values = (g: Token.Grant) => ({
  accessToken: g.accessToken === undefined ? undefined : Redacted.value(g.accessToken),
  refreshToken: g.refreshToken === undefined ? undefined : Redacted.value(g.refreshToken),
  tokenType: g.tokenType,
  issuedAt: g.issuedAt,
  expiresAt: g.expiresAt,
  scope: g.scope,
  refreshTokenExpiresAt: g.refreshTokenExpiresAt,
  refreshStartedAt: g.refreshStartedAt,
  reauthRequired: g.reauthRequired,
  version: g.version
})

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
          Array.from({ length: 6 }, (_, i) => clients[i % 2]!.withLock(key, critical)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(maxInside, 1)
      }))

    it.scopedLive("keys never wait on each other's lock (SF-5)", () =>
      Effect.gen(function*() {
        const store = yield* open
        const [slow, fast] = [uniqueKey("slow"), uniqueKey("fast")]
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(store.withLock(slow, Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)))
        yield* Deferred.await(held)
        // Had the keys shared a lock, this would wait for the holder, which never lets go.
        const result = yield* store.withLock(fast, Effect.succeed("acquired")).pipe(Effect.timeout(PATIENCE))
        assert.strictEqual(result, "acquired")
        assert.isTrue(Option.isNone(yield* Fiber.poll(holder)), "the other key's holder still holds its lock")
        yield* Fiber.interrupt(holder)
      }))

    it.scopedLive("the lock is released when the body fails or is interrupted", () =>
      Effect.gen(function*() {
        const store = yield* open
        const key = uniqueKey("release")
        const failed = yield* Effect.flip(store.withLock(key, Effect.fail("boom" as const)))
        assert.strictEqual(failed, "boom")
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(store.withLock(key, Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)))
        yield* Deferred.await(held)
        yield* Fiber.interrupt(holder)
        // Well inside the lease TTL: only a release, not an expiry, lets this in.
        const result = yield* store.withLock(key, Effect.succeed("acquired")).pipe(Effect.timeout(PATIENCE))
        assert.strictEqual(result, "acquired")
      }))
  })
}
