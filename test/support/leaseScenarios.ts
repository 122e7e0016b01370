/**
 * Lease scenarios with REAL separate processes (test/fleet/child.ts), run on Redis and PostgreSQL by
 * test/fleet/LeaseTakeover.test.ts. The in-process lease and fencing cases every store runs are
 * @renew/store-testkit's LeaseSuite.
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
import { eventually } from "@renew/auth-server-fixture"
import { Refresher, Token, TokenStore } from "@renew/core"
import { Effect, Layer, Option, Redacted, type Scope } from "effect"
import { Engine } from "@renew/store-testkit"
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

const { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } = Engine

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

/** Whether someone holds the lease of `key`: a client that waits 50 ms for it times out. */
const leaseHeld = (backend: LeaseBackend, key: string, ttl: number) =>
  Effect.flatMap(backend.open(ttl, 50), (probe) =>
    Effect.map(Effect.either(probe.withLock(key, () => Effect.void)), (result) =>
      result._tag === "Left" && result.left._tag === "LockTimeout"))

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
    // While the child runs it renews its lease: it holds it now, however long this probe takes.
    assert.isTrue(yield* leaseHeld(backend, key, CHILD_TTL_MS), "the child holds the lease")
    // Freeze the holder: no renewal, no release, exactly like a long GC pause or a stopped VM.
    child.signal("SIGSTOP")
    // This waits for the frozen lease to run out, however long that takes, and takes it over: the child cannot have
    // released it.
    yield* store.withLock(
      key,
      (lease) => Effect.gen(function*() {
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
        // Fenced: it knows it lost the lease, and its write with the version it holds was refused (FN-1).
        assert.strictEqual(write["confirmed"], false, "the old holder's confirm says the lease is lost")
        assert.strictEqual(write["lost"], true)
        assert.strictEqual(write["outcome"], "StaleWrite", "the stale holder's write was refused (FN-1)")
        yield* promise(() => child.waitFor("released"))
        // Its release was owner-checked: our lease is intact (LK-1).
        assert.isTrue(yield* lease.confirm, "our lease survived the old holder's release")
      })
    )
    const stored = Option.getOrThrow(yield* store.get(key))
    assert.strictEqual(Redacted.value(stored.accessToken!), "at_from_parent", "nothing of the stale writer was stored")
    assert.strictEqual(stored.version, 2)
    assert.isFalse(yield* leaseHeld(backend, key, PARENT_TTL_MS), "released")
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
      yield* promise(() => endpoint.waitForRequests(1, 120_000))
      const inFlight = Option.getOrThrow(yield* store.get(key))
      assert.isDefined(inFlight.refreshStartedAt, "the child recorded its intent before calling the server")
      assert.isTrue(yield* leaseHeld(backend, key, ttl), "the child holds the lease")
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
