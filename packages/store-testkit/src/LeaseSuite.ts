/**
 * ONE lease and fencing suite for every store with a cross-process lease (SQLite, Redis, PostgreSQL). The in-process
 * lock of the memory store has no lease to lose; `TokenStoreSuite` checks that it reports none and hands out a lease
 * that is held.
 *
 * - The lease parameters: a 3 s lease is renewed every second and waited for twice its TTL unless told otherwise, and
 *   an engine with a 10 s per-attempt timeout runs on it (the timeout may exceed the TTL: a sent refresh token is
 *   waited for, with the lease renewed meanwhile).
 * - `confirm` is true while the lease is held, and a held lease survives a body longer than 3 × TTL (renewal).
 * - Fencing: a holder whose lease lapsed (nobody renewed it: a frozen process) finds it lost, through the background
 *   renewal (`isLost`) or `confirm`, on every store alike, even if nobody took it meanwhile; once another holder took
 *   it and wrote, the old holder's compare-and-set on the version it holds is `StaleWrite`, and its late release
 *   leaves the new holder's lease alone.
 * - A waiter gives up with `LockTimeout` after the lock wait.
 *
 * Timing: a loaded machine must not fail any of this. TTLs are long enough that a stall of a second cannot lapse a
 * lease that is renewed, nor make a per-call timeout (a third of the TTL) fire; conditions are polled with generous
 * deadlines; the only wall-clock bounds asserted are far from what they tell apart.
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Redacted } from "effect"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as Scope from "effect/Scope"
import * as Grants from "./Grants.js"
import { uniqueKey } from "./TokenStoreSuite.js"

export interface LeaseSuiteOptions<E> {
  /** Opens a client of the store under test with this lease; every client reaches the same backend. */
  readonly open: (lease: {
    readonly ttlMillis: number
    readonly lockWaitMillis?: number | undefined
  }) => Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>
  /**
   * Makes the current lease of `key` lapse now without removing it, as if its holder had frozen and stopped renewing
   * (raw backend access: set its expiry to the past).
   */
  readonly expireLease: (key: string) => Effect.Effect<void, unknown, Scope.Scope>
  /** The owner id recorded in the lease of `key`, if any (raw backend access). */
  readonly leaseOwner: (key: string) => Effect.Effect<string | undefined, unknown, Scope.Scope>
}

/** Polls `condition` every 20 ms until it holds; fails the test after `seconds` (generous: it only bounds a hang). */
const eventually = (what: string, condition: () => boolean, seconds = 30) =>
  Effect.gen(function*() {
    const deadline = Date.now() + seconds * 1000
    while (!condition()) {
      if (Date.now() > deadline) return assert.fail(`${what}: not within ${seconds} s`)
      yield* Effect.sleep("20 millis")
    }
  })

// An HTTP client that is never called: building an engine only reads the endpoint's options.
const unusedHttp = Layer.succeed(
  HttpClient.HttpClient,
  HttpClient.make(() => Effect.die("this test sends no request"))
)

export const suite = <E>(name: string, options: LeaseSuiteOptions<E>): void => {
  const { open } = options
  describe(`TokenStore leases and fencing: ${name}`, () => {
    it.scopedLive("reports its lease parameters the same way as every store", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* open({ ttlMillis: 3000 })).lease, {
          ttlMillis: 3000,
          renewEveryMillis: 1000,
          waitMillis: 6000
        })
        assert.deepStrictEqual((yield* open({ ttlMillis: 300, lockWaitMillis: 10_000 })).lease, {
          ttlMillis: 300,
          renewEveryMillis: 100,
          waitMillis: 10_000
        })
      }))

    it.scopedLive("an engine with a 10 s per-attempt timeout runs on a 3 s lease", () =>
      Effect.gen(function*() {
        const store = yield* open({ ttlMillis: 3000 })
        const engine = Refresher.make().pipe(
          Effect.provide(TokenEndpoint.layer({
            url: "https://auth.example.com/token",
            clientId: "renew-test-client",
            clientSecret: Redacted.make("unused"),
            timeout: Duration.seconds(10)
          })),
          Effect.provide(unusedHttp),
          Effect.provideService(TokenStore.TokenStore, store)
        )
        const exit = yield* Effect.exit(engine)
        assert.isTrue(exit._tag === "Success", `refused: ${exit._tag === "Failure" ? String(exit.cause) : ""}`)
      }))

    it.scopedLive("confirm is true while the lease is held, and a held lease outlives 3 × TTL through renewal", () =>
      Effect.gen(function*() {
        // Renewed every 500 ms, the lease keeps a second to spare: a stall shorter than that cannot lapse it.
        const ttl = 1500
        // The waiter waits as long as it takes the holder (4 × TTL, slower on a loaded machine), and then some.
        const [a, b] = [yield* open({ ttlMillis: ttl }), yield* open({ ttlMillis: ttl, lockWaitMillis: 60_000 })]
        const key = uniqueKey("renewal")
        let aHolding = false
        let bEnteredWhileAHeld = false
        let bEntered = false
        const holder = a.withLock(key, (lease) =>
          Effect.gen(function*() {
            aHolding = true
            assert.isTrue(yield* lease.confirm)
            yield* Effect.sleep(Duration.millis(ttl * 4))
            assert.isFalse(lease.isLost(), "the background renewal kept the lease")
            assert.isTrue(yield* lease.confirm, "still held after 4 × TTL")
            aHolding = false
          }))
        const waiter = Effect.delay(
          b.withLock(key, () =>
            Effect.sync(() => {
              bEntered = true
              bEnteredWhileAHeld = aHolding
            })),
          Duration.millis(50)
        )
        yield* Effect.all([holder, waiter], { concurrency: "unbounded" })
        assert.isTrue(bEntered)
        assert.isFalse(bEnteredWhileAHeld, "nobody got in while the holder's body ran past its TTL")
      }))

    it.scopedLive("a lapsed lease is lost even if nobody took it: the background renewal finds it (isLost), confirm says false", () =>
      Effect.gen(function*() {
        // The lease lapses because this test says so (expireLease), not by waiting; the TTL only sets how often the
        // renewal looks (every 500 ms), and keeps the per-call timeout far from a slow answer.
        const store = yield* open({ ttlMillis: 1500 })
        const key = uniqueKey("lapsed")
        yield* store.withLock(key, (lease) =>
          Effect.gen(function*() {
            yield* options.expireLease(key)
            yield* eventually("isLost after the lease lapsed", () => lease.isLost())
            assert.isFalse(yield* lease.confirm)
            assert.isFalse(yield* lease.confirm, "lost stays lost")
          }))
      }))

    it.scopedLive("fencing: once the lapsed lease is taken, the old holder's confirm is false, its write with the version it holds is StaleWrite, and its release leaves the new lease intact", () =>
      Effect.gen(function*() {
        // As above: the old holder's lease lapses by expireLease; the TTL only paces its renewal.
        const [a, b] = [yield* open({ ttlMillis: 1500 }), yield* open({ ttlMillis: 1500, lockWaitMillis: 30_000 })]
        const key = uniqueKey("fenced")
        yield* a.compareAndSet(key, undefined, Grants.sample())
        const held = yield* Deferred.make<number>()
        const resume = yield* Deferred.make<void>()
        const oldHolder = yield* Effect.fork(a.withLock(key, (lease) =>
          Effect.gen(function*() {
            const read = Option.getOrThrow(yield* a.get(key))
            yield* Deferred.succeed(held, read.version)
            yield* Deferred.await(resume)
            const confirmed = yield* lease.confirm
            const write = yield* Effect.either(
              a.compareAndSet(key, read.version, Grants.sample({ accessToken: Redacted.make("at_from_old_holder") }))
            )
            return { confirmed, lost: lease.isLost(), write }
          })))
        const version = yield* Deferred.await(held)
        const oldOwner = yield* options.leaseOwner(key)
        assert.isDefined(oldOwner)
        // The holder freezes: its lease lapses. Another holder takes it and refreshes.
        yield* options.expireLease(key)
        const outcome = yield* b.withLock(key, () =>
          Effect.gen(function*() {
            const mine = yield* options.leaseOwner(key)
            assert.isDefined(mine)
            assert.notStrictEqual(mine, oldOwner)
            const current = Option.getOrThrow(yield* b.get(key))
            assert.strictEqual(current.version, version)
            yield* b.compareAndSet(key, current.version, Grants.sample({ accessToken: Redacted.make("at_from_new_holder") }))
            // The old holder wakes up while we hold the lease, and runs to its end (its release included).
            yield* Deferred.succeed(resume, undefined)
            const outcome = yield* Fiber.join(oldHolder)
            assert.strictEqual(yield* options.leaseOwner(key), mine, "the old holder's release was owner-checked")
            return outcome
          }))
        assert.isFalse(outcome.confirmed)
        assert.isTrue(outcome.lost)
        assert.isTrue(outcome.write._tag === "Left" && outcome.write.left._tag === "StaleWrite", "the old holder's write was refused")
        const stored = Option.getOrThrow(yield* a.get(key))
        assert.strictEqual(Redacted.value(stored.accessToken!), "at_from_new_holder")
        assert.strictEqual(stored.version, version + 1)
        assert.isUndefined(yield* options.leaseOwner(key), "released")
      }))

    it.scopedLive("a waiter gives up with LockTimeout after the lock wait, having retried until then", () =>
      Effect.gen(function*() {
        // The holder keeps its lease through the whole wait however slow the machine, and a waiter that ignored its
        // lock wait would fall back to twice the TTL (40 s): far from the 300 ms asked for, so the upper bound below
        // tells them apart with room to spare.
        const holder = yield* open({ ttlMillis: 20_000 })
        const waiter = yield* open({ ttlMillis: 20_000, lockWaitMillis: 300 })
        const key = uniqueKey("lock-timeout")
        const started = Date.now()
        const error = yield* holder.withLock(key, () => Effect.flip(waiter.withLock(key, () => Effect.void)))
        const waited = Date.now() - started
        assert.strictEqual(error._tag, "LockTimeout")
        assert.isAtLeast(waited, 290, "it waited until the lock wait")
        assert.isBelow(waited, 10_000, "and gave up then")
      }))
  })
}
