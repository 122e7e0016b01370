/**
 * Lease scenarios with REAL separate processes, shared by the Redis and PostgreSQL store tests:
 *
 * - `pausedHolder` (LK-1, FN-1, LK-3 "lost"): a child process takes the grant's lease and reads the grant, then is
 *   frozen with SIGSTOP. Its lease expires; this process takes it and writes version+1. The child is resumed: its
 *   renewal finds the lease lost, its write with the version it read (made when this process tells it to) is refused
 *   (`StaleWrite`), and its late release (owner-checked) leaves this process's lease intact.
 * - `killedHolder` (LK-2, DU-4): a child process starts a refresh (lease taken, intent written, request sent; the
 *   endpoint never answers) and is SIGKILLed. A Refresher in this process acquires the lease within
 *   TTL + 2 × retry interval of the kill, finds the intent, and completes the refresh.
 */
import { assert } from "@effect/vitest"
import { Refresher, Token, TokenStore } from "@renew/core"
import { Duration, Effect, Layer, Option, Redacted, type Scope } from "effect"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } from "../../packages/core/test/support/harness.js"
import { eventually } from "./eventually.js"
import { spawnChild } from "./fleetChild.js"

export interface LeaseBackend {
  /** "redis" | "postgres": RENEW_STORE of the child. */
  readonly kind: "redis" | "postgres"
  readonly url: string
  /** Key prefix (Redis) or schema (PostgreSQL), shared with the child. */
  readonly namespace: string
  readonly open: (
    leaseTtlMillis: number,
    lockWaitMillis?: number
  ) => Effect.Effect<TokenStore.TokenStore["Type"], unknown, Scope.Scope>
  /** The owner id stored in the grant's lease, if any. */
  readonly leaseOwner: (key: string) => Effect.Effect<string | undefined, unknown, Scope.Scope>
  /** The retry interval of the store's waiters for this TTL (maxPoll). */
  readonly retryIntervalMillis: (leaseTtlMillis: number) => number
}

const seed = (accessToken: string) =>
  new Token.Grant({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make("rt_lease_scenario"),
    tokenType: "Bearer",
    issuedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    version: 0
  })

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** How long a child holds its lease in these scenarios, renewing it every third: a loaded machine cannot stall it away. */
const CHILD_TTL_MS = 3000
/** The parent's own lease and wait: long enough that its lease never lapses mid-scenario, however slow the machine. */
const PARENT_TTL_MS = 20_000
const PARENT_WAIT_MS = 25_000

export const pausedHolder = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    const store = yield* backend.open(PARENT_TTL_MS, PARENT_WAIT_MS)
    yield* store.compareAndSet(key, undefined, seed("at_seed"))
    const child = spawnChild({
      RENEW_STORE: backend.kind,
      RENEW_STORE_URL: backend.url,
      RENEW_NAMESPACE: backend.namespace,
      RENEW_LEASE_TTL_MS: String(CHILD_TTL_MS),
      RENEW_MODE: "hold",
      RENEW_KEY: key
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.signal("SIGKILL")))
    yield* promise(() => child.waitFor("ready"))
    child.go()
    // The child now holds the lease and waits for "write": nothing it does races this process.
    const read = yield* promise(() => child.waitFor("read"))
    const childOwner = yield* backend.leaseOwner(key)
    assert.isDefined(childOwner, "the child holds the lease")
    // Freeze the holder: no renewal, no release, exactly like a long GC pause or a stopped VM.
    child.signal("SIGSTOP")
    // This waits for the frozen lease to run out, however long that takes, and takes it over: the child cannot have
    // released it.
    yield* store.withLock(
      key,
      Effect.gen(function*() {
        const mine = yield* backend.leaseOwner(key)
        assert.notStrictEqual(mine, childOwner)
        assert.include(mine!, `:${process.pid}:`)
        assert.isUndefined(child.events.find((e) => e.event === "released"), "the frozen child never released")
        const current = Option.getOrThrow(yield* store.get(key))
        assert.strictEqual(current.version, read["version"])
        yield* store.compareAndSet(key, current.version, seed("at_from_parent"))
        // Wake the old holder while we hold the lease: its next renewal finds the lease lost and says so (LK-3).
        child.signal("SIGCONT")
        yield* promise(() =>
          eventually("the child to log that it lost its lease", () => /lost the (Redis|PostgreSQL) lease/.test(child.stderr()))
        )
        child.send("write")
        const write = yield* promise(() => child.waitFor("write"))
        assert.strictEqual(write["outcome"], "StaleWrite", "the stale holder's write was refused (FN-1)")
        yield* promise(() => child.waitFor("released"))
        // Its release was owner-checked: our lease is intact (LK-1).
        assert.strictEqual(yield* backend.leaseOwner(key), mine)
      })
    )
    const stored = Option.getOrThrow(yield* store.get(key))
    assert.strictEqual(Redacted.value(stored.accessToken!), "at_from_parent", "nothing of the stale writer was stored")
    assert.strictEqual(stored.version, 2)
    assert.isUndefined(yield* backend.leaseOwner(key), "released")
    yield* promise(() => child.exited)
  })

export const killedHolder = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    const ttl = CHILD_TTL_MS
    const endpoint = yield* scriptedEndpoint()
    // The child's request is accepted and never answered: it dies with its refresh in flight.
    endpoint.script({ kind: "hang" })
    // Same TTL as the child (the retry interval follows it); a wait long enough that only the outcome can fail this.
    const store = yield* backend.open(ttl, PARENT_WAIT_MS)
    let acquiredAt = 0
    const observed: TokenStore.TokenStore["Type"] = {
      ...store,
      withLock: (k, effect) => store.withLock(k, Effect.zipRight(Effect.sync(() => void (acquiredAt = Date.now())), effect))
    }
    return yield* Effect.gen(function*() {
      yield* seedExpired(endpoint, key)
      const child = spawnChild({
        RENEW_STORE: backend.kind,
        RENEW_STORE_URL: backend.url,
        RENEW_NAMESPACE: backend.namespace,
        RENEW_LEASE_TTL_MS: String(ttl),
        RENEW_MODE: "herd",
        RENEW_CALLERS: "1",
        RENEW_KEY: key,
        RENEW_TOKEN_URL: endpoint.url,
        RENEW_CLIENT_ID: CLIENT_ID,
        RENEW_CLIENT_SECRET: CLIENT_SECRET
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.signal("SIGKILL")))
      yield* promise(() => child.waitFor("ready"))
      child.go()
      yield* promise(() => endpoint.waitForRequests(1, 120_000))
      const inFlight = Option.getOrThrow(yield* store.get(key))
      assert.isDefined(inFlight.refreshStartedAt, "the child recorded its intent before calling the server")
      assert.isDefined(yield* backend.leaseOwner(key), "the child holds the lease")
      child.signal("SIGKILL")
      const killedAt = Date.now()
      yield* promise(() => child.exited)
      const refresher = yield* Refresher.Refresher
      const token = yield* refresher.getAccessToken(key)
      const takeover = acquiredAt - killedAt
      // LK-2 promises TTL + 2 retry intervals, and on a quiet machine that is what it takes. The exact bound is proven
      // on the TestClock (SqliteTokenStore.test.ts, the same Lease code); with real processes and a real server the
      // wall clock gets 5 times that, enough for a loaded machine, still short of waiting for something else.
      const promised = ttl + 2 * backend.retryIntervalMillis(ttl)
      assert.isAtLeast(takeover, 0, "the lease was taken after the kill")
      assert.isAtMost(takeover, 5 * promised, `took over ${takeover} ms after the kill (promised ${promised} ms)`)
      assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
      assert.strictEqual(endpoint.refreshRequests, 2, "the dead holder's request, then the takeover's")
      const after = Option.getOrThrow(yield* store.get(key))
      assert.isUndefined(after.refreshStartedAt, "the intent was resolved")
      assert.isTrue(endpoint.isActive(Redacted.value(after.refreshToken!)), "the stored refresh token is live")
      return takeover
    }).pipe(
      Effect.provide(engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, observed) }))
    )
  })

/** LK-3: a holder whose body outlives the TTL keeps its lease; a second client never gets in meanwhile. */
export const renewal = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    // A renewal every TTL/3 keeps the lease with 2/3 of a TTL to spare: 1 s of stall tolerated on a loaded machine.
    const ttl = 1500
    const [a, b] = [yield* backend.open(ttl), yield* backend.open(ttl, PARENT_WAIT_MS)]
    let aHolding = false
    let bEnteredWhileAHeld = false
    let bEntered = false
    yield* Effect.all([
      a.withLock(
        key,
        Effect.gen(function*() {
          aHolding = true
          yield* Effect.sleep(Duration.millis(ttl * 3))
          aHolding = false
        })
      ),
      Effect.delay(
        b.withLock(key, Effect.sync(() => {
          bEntered = true
          bEnteredWhileAHeld = aHolding
        })),
        Duration.millis(50)
      )
    ], { concurrency: "unbounded" })
    assert.isTrue(bEntered)
    assert.isFalse(bEnteredWhileAHeld, "the lease was renewed while the body ran past its TTL")
  })

/** A waiter gives up with LockTimeout after lockWaitTimeout, having retried until then. */
export const lockTimeout = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    // The holder keeps its lease through the whole wait, and a waiter that ignored lockWaitTimeout would fall back
    // to twice the TTL (40 s): far from the 300 ms asked for, so the bound below tells them apart with room to spare.
    const holder = yield* backend.open(PARENT_TTL_MS)
    const waiter = yield* backend.open(PARENT_TTL_MS, 300)
    const started = Date.now()
    const error = yield* holder.withLock(key, Effect.flip(waiter.withLock(key, Effect.void)))
    const waited = Date.now() - started
    assert.strictEqual(error._tag, "LockTimeout")
    assert.isAtLeast(waited, 290, "it waited until lockWaitTimeout")
    assert.isBelow(waited, 10_000, "and gave up then")
  })
