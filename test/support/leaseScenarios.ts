/**
 * Lease scenarios with REAL separate processes, shared by the Redis and PostgreSQL store tests:
 *
 * - `pausedHolder` (LK-1, FN-1, LK-3 "lost"): a child process takes the grant's lease and reads the grant, then is
 *   frozen with SIGSTOP. Its lease expires; this process takes it and writes version+1. The child is resumed: its
 *   renewal finds the lease lost, its write with the version it read is refused (`StaleWrite`), and its late release
 *   (owner-checked) leaves this process's lease intact.
 * - `killedHolder` (LK-2, DU-4): a child process starts a refresh (lease taken, intent written, request sent; the
 *   endpoint never answers) and is SIGKILLed. A Refresher in this process acquires the lease within
 *   TTL + 2 × retry interval of the kill, finds the intent, and completes the refresh.
 */
import { assert } from "@effect/vitest"
import { Refresher, Token, TokenStore } from "@renew/core"
import { Duration, Effect, Layer, Option, Redacted, type Scope } from "effect"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } from "../../packages/core/test/support/harness.js"
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

export const pausedHolder = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    const ttl = 500
    const store = yield* backend.open(ttl)
    yield* store.compareAndSet(key, undefined, seed("at_seed"))
    const child = spawnChild({
      RENEW_STORE: backend.kind,
      RENEW_STORE_URL: backend.url,
      RENEW_NAMESPACE: backend.namespace,
      RENEW_LEASE_TTL_MS: String(ttl),
      RENEW_MODE: "hold",
      RENEW_KEY: key,
      RENEW_HOLD_MS: "2500"
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.signal("SIGKILL")))
    yield* promise(() => child.waitFor("ready"))
    child.go()
    const read = yield* promise(() => child.waitFor("read"))
    // Freeze the holder: no renewal, no release, exactly like a long GC pause or a stopped VM.
    child.signal("SIGSTOP")
    const childOwner = yield* backend.leaseOwner(key)
    assert.isDefined(childOwner, "the child holds the lease")
    yield* Effect.sleep(Duration.millis(ttl + 200))
    const started = Date.now()
    yield* store.withLock(
      key,
      () => Effect.gen(function*() {
        assert.isBelow(Date.now() - started, 1000, "the expired lease was taken over at once")
        const mine = yield* backend.leaseOwner(key)
        assert.notStrictEqual(mine, childOwner)
        assert.include(mine!, `:${process.pid}:`)
        const current = Option.getOrThrow(yield* store.get(key))
        assert.strictEqual(current.version, read["version"])
        yield* store.compareAndSet(key, current.version, seed("at_from_parent"))
        // Wake the old holder while we hold the lease.
        child.signal("SIGCONT")
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
    // Its renewal found the lease gone and said so (LK-3 lost).
    assert.match(child.stderr(), /lost the (Redis|PostgreSQL) lease/)
  })

export const killedHolder = (backend: LeaseBackend, key: string) =>
  Effect.gen(function*() {
    const ttl = 1000
    const endpoint = yield* scriptedEndpoint()
    // The child's request is accepted and never answered: it dies with its refresh in flight.
    endpoint.script({ kind: "hang" })
    const store = yield* backend.open(ttl)
    let acquiredAt = 0
    const observed: TokenStore.TokenStore["Type"] = {
      ...store,
      withLock: (k, body) => store.withLock(k, (lease) => Effect.zipRight(Effect.sync(() => void (acquiredAt = Date.now())), body(lease)))
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
      yield* promise(() => endpoint.waitForRequests(1, 20_000))
      const inFlight = Option.getOrThrow(yield* store.get(key))
      assert.isDefined(inFlight.refreshStartedAt, "the child recorded its intent before calling the server")
      assert.isDefined(yield* backend.leaseOwner(key), "the child holds the lease")
      child.signal("SIGKILL")
      const killedAt = Date.now()
      yield* promise(() => child.exited)
      const refresher = yield* Refresher.Refresher
      const token = yield* refresher.getAccessToken(key)
      const takeover = acquiredAt - killedAt
      const bound = ttl + 2 * backend.retryIntervalMillis(ttl)
      assert.isAtMost(takeover, bound, `took over ${takeover} ms after the kill (bound ${bound} ms)`)
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
    const ttl = 300
    const [a, b] = [yield* backend.open(ttl), yield* backend.open(ttl, 5000)]
    let aHolding = false
    let bEnteredWhileAHeld = false
    let bEntered = false
    yield* Effect.all([
      a.withLock(
        key,
        () => Effect.gen(function*() {
          aHolding = true
          yield* Effect.sleep(Duration.millis(ttl * 3))
          aHolding = false
        })
      ),
      Effect.delay(
        b.withLock(key, () => Effect.sync(() => {
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
    const holder = yield* backend.open(2000)
    const waiter = yield* backend.open(2000, 300)
    const started = Date.now()
    const error = yield* holder.withLock(key, () => Effect.flip(waiter.withLock(key, () => Effect.void)))
    const waited = Date.now() - started
    assert.strictEqual(error._tag, "LockTimeout")
    assert.isAtLeast(waited, 290)
    assert.isBelow(waited, 1500)
  })
