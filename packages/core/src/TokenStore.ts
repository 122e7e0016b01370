/**
 * The storage port. Grants are read, written by compare-and-set on their version, deleted, and refreshed under a
 * per-grant lock that a store may back with a cross-process lease (SQLite, Redis, PostgreSQL). An in-memory layer
 * lives here.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { LockTimeout } from "./RefreshError.js"
import { StaleWrite, StoreError } from "./RefreshError.js"
import * as DueIndex from "./internal/dueIndex.js"
import { Grant } from "./Token.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenStore extends Context.Tag("@renew/core/TokenStore")<TokenStore, {
  /**
   * What survives a crash. `memory`: nothing (the process is the store). `durable`: every acknowledged write.
   * `best-effort`: most writes (e.g. Redis without AOF). For anything but `memory`, the Refresher records a
   * "refresh in flight" intent before calling the server, so a process that dies mid-refresh is detected and
   * recovered by the next holder.
   */
  readonly durability: Durability
  /**
   * The cross-process lease's parameters; `undefined` for an in-process lock (memory store). Every shared store
   * reports them the same way.
   */
  readonly lease: LeaseParameters | undefined
  readonly get: (key: string) => Effect.Effect<Option.Option<Grant>, StoreError>
  /**
   * Writes `grant` if the stored version is `expectedVersion` (`undefined`: only if there is no grant). The written
   * grant gets version `expectedVersion + 1` (1 for a new grant) and is returned. A mismatch fails with `StaleWrite`
   * and writes nothing, so a stale writer can never overwrite a newer refresh token, and a grant deleted during a
   * refresh is never resurrected.
   */
  readonly compareAndSet: (
    key: string,
    expectedVersion: number | undefined,
    grant: Grant
  ) => Effect.Effect<Grant, StaleWrite | StoreError>
  readonly delete: (key: string) => Effect.Effect<void, StoreError>
  /**
   * Runs `body` while holding the grant's refresh lock, so that one holder at a time refreshes it. Keys never wait
   * on each other. The body gets the holder's `Lease` for fencing: a holder that finds its lease lost sends no
   * further attempt and writes only by compare-and-set on the version it holds.
   */
  readonly withLock: <A, E, R>(
    key: string,
    body: (lease: Lease) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LockTimeout | StoreError, R>
  /**
   * The due index and the fleet-wide issuer pauses the `RefreshScheduler` works from. Every store of Renew has it; a
   * store without it serves callers, and the scheduler refuses to start on it.
   */
  readonly scheduling?: Scheduling | undefined
}>() {}

/**
 * What a store offers the background scheduler. Every write of a grant also records when it is due (`dueAtOf`), in
 * the same atomic write; the scheduler claims due grants in batches and refreshes each under the grant's lock, like
 * a caller would.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scheduling {
  /**
   * Claims up to `limit` grants due at `now` (earliest first) in one round trip, and moves each one's due time to
   * `holdUntil` in the same atomic step: no other claim returns it before then, so among any number of concurrent
   * claimers each due grant goes to exactly one. The claim takes no lock and holds no transaction: the refresh that
   * follows takes the grant's lock as any caller does, and writes the next due time with the new token. A claimer that
   * dies leaves the grant due again at `holdUntil`. Dead grants (`reauthRequired`) and grants without a refresh token
   * are never due.
   */
  readonly claimDue: (request: ClaimRequest) => Effect.Effect<ReadonlyArray<DueGrant>, StoreError>
  /** Counts for the scheduler's gauges, at `now`. */
  readonly backlog: (now: number) => Effect.Effect<Backlog, StoreError>
  /**
   * Pauses refreshes at `issuer` (a token endpoint URL) for every scheduler sharing the store, until `until` (epoch
   * millis); an existing later pause is kept.
   */
  readonly pauseIssuer: (issuer: string, until: number) => Effect.Effect<void, StoreError>
  /** The end of the issuer's pause, if one is in force at `now`. */
  readonly issuerPausedUntil: (issuer: string, now: number) => Effect.Effect<number | undefined, StoreError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClaimRequest {
  readonly now: number
  readonly limit: number
  readonly holdUntil: number
}

/**
 * A claimed grant: its key and the due time it had when claimed (for the refresh-lag metric).
 *
 * @since 0.1.0
 * @category models
 */
export interface DueGrant {
  readonly key: string
  readonly dueAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Backlog {
  /** Grants due at `now` and not claimed. */
  readonly due: number
  /** The earliest due time among them. */
  readonly oldestDueAt: number | undefined
  /** Grants in the due index (alive, with a refresh token). */
  readonly scheduled: number
}

/** Scheduled refreshes of a grant without its own `refreshDueAt` happen this long before expiry (half its life at most). */
const DEFAULT_DUE_MARGIN_MILLIS = 60_000

/**
 * A grant with a refresh in flight (its intent recorded) is not due before this long after the refresh began: its
 * holder is at work. Found later, the holder died, and the scheduler's refresh recovers it (DU-4).
 */
const IN_FLIGHT_MILLIS = 60_000

/**
 * When the scheduler should refresh `grant`, as every store indexes it: its `refreshDueAt`, else a minute before the
 * access token expires (at most half its lifetime before), else at once (no access token); while a refresh is in
 * flight, not before a minute after it began. `undefined` for a grant that is never due: dead (`reauthRequired`) or
 * without a refresh token.
 *
 * @since 0.1.0
 * @category scheduling
 */
export const dueAtOf = (grant: Grant): number | undefined => {
  if (grant.reauthRequired !== undefined || grant.refreshToken === undefined) return undefined
  const due = scheduledAt(grant)
  return grant.refreshStartedAt === undefined ? due : Math.max(due, grant.refreshStartedAt + IN_FLIGHT_MILLIS)
}

const scheduledAt = (grant: Grant): number => {
  if (grant.refreshDueAt !== undefined) return grant.refreshDueAt
  if (grant.accessToken === undefined) return 0
  const lifetime = Math.max(0, grant.expiresAt - grant.issuedAt)
  return Math.max(0, grant.expiresAt - Math.min(DEFAULT_DUE_MARGIN_MILLIS, Math.floor(lifetime / 2)))
}

/**
 * The holder's handle on a grant's lock, for fencing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  /**
   * Confirms, with one round trip to the backend, that this holder still holds the lease, and extends it. `false`
   * once it is lost (expired and taken by another holder, or gone); after the first `false` it stays false. Never
   * fails: a backend error counts as `false` if the lease may have lapsed since the last confirmed renewal, else
   * `true`.
   */
  readonly confirm: Effect.Effect<boolean>
  /** Cheap, no I/O: whether the background renewal has already found the lease lost. */
  readonly isLost: () => boolean
}

/**
 * A cross-process lease's parameters, in whole milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseParameters {
  /** Lifetime of the lease. */
  readonly ttlMillis: number
  /** Background renewal period while held (a third of the TTL). */
  readonly renewEveryMillis: number
  /** How long `withLock` waits for another holder before `LockTimeout`. */
  readonly waitMillis: number
}

/** The in-process lock's lease: never lost. */
const heldInProcess: Lease = { confirm: Effect.succeed(true), isLost: () => false }

/**
 * @since 0.1.0
 * @category models
 */
export type Durability = "memory" | "durable" | "best-effort"

/**
 * Returns `grant` with another version (stores use it to stamp what they wrote).
 *
 * @since 0.1.0
 * @category constructors
 */
export const withVersion = (grant: Grant, version: number): Grant => new Grant({ ...grant, version })

/**
 * The longest grant key every store accepts, in UTF-8 bytes (PostgreSQL cannot index a much longer primary key).
 *
 * @since 0.1.0
 * @category models
 */
export const MAX_KEY_BYTES = 2048

/**
 * Why no store can hold a grant under `key`, or `undefined` when every store can. A key is any well-formed Unicode
 * string without NUL, at most `MAX_KEY_BYTES` in UTF-8. The key itself is never quoted (it may name a user).
 *
 * @since 0.1.0
 * @category validation
 */
export const invalidKey = (key: string): string | undefined => {
  // One pass over the UTF-16 units: NUL, lone surrogates and the UTF-8 length (without Buffer: core runs wherever
  // Effect does).
  let bytes = 0
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i)
    if (code < 0x80) {
      if (code === 0) return "the grant key contains a NUL character, which no store can hold. Use another key"
      bytes += 1
    } else if (code < 0x800) {
      bytes += 2
    } else if (code >= 0xd800 && code <= 0xdfff) {
      const next = key.charCodeAt(i + 1)
      if (code > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
        return "the grant key is not well-formed Unicode (it has a lone surrogate). Use another key"
      }
      bytes += 4
      i++
    } else {
      bytes += 3
    }
  }
  if (bytes > MAX_KEY_BYTES) {
    return `the grant key is ${bytes} bytes in UTF-8, over the ${MAX_KEY_BYTES} every store accepts. Use a shorter key (e.g. a hash of a long identifier)`
  }
  return undefined
}

/**
 * The grant every store holds for `grant`: its times (epoch millis) rounded to whole milliseconds and clamped to
 * `[0, Number.MAX_SAFE_INTEGER]`, so a store never refuses a grant for a fraction or an absurd expiry (the engine
 * normalises them before writing; this is the stores' own guard, the same on all of them). A time that is not a number
 * at all (NaN) is refused.
 *
 * @since 0.1.0
 * @category validation
 */
export const storable = (grant: Grant): Either.Either<Grant, string> => {
  const times = [
    "issuedAt",
    "expiresAt",
    "refreshTokenExpiresAt",
    "refreshStartedAt",
    "refreshDueAt",
    "failingSince"
  ] as const
  const fixed: Partial<Record<(typeof times)[number], number>> = {}
  for (const field of times) {
    const value = grant[field]
    if (value === undefined) continue
    if (Number.isNaN(value)) return Either.left(`the grant's ${field} is not a number; nothing was written`)
    const normal = Math.min(Math.max(Math.round(value), 0), Number.MAX_SAFE_INTEGER)
    if (normal !== value) fixed[field] = normal
  }
  return Either.right(Object.keys(fixed).length === 0 ? grant : new Grant({ ...grant, ...fixed }))
}

/**
 * The `StaleWrite` of a compare-and-set that expected `expectedVersion` (`undefined`: no grant) and found
 * `actualVersion` (`undefined`: no grant).
 *
 * @since 0.1.0
 * @category constructors
 */
export const staleWrite = (expectedVersion: number | undefined, actualVersion: number | undefined): StaleWrite =>
  new StaleWrite({
    ...(expectedVersion !== undefined ? { expectedVersion } : {}),
    ...(actualVersion !== undefined ? { actualVersion } : {})
  })

/** Fails with a `StoreError` for a key no store can hold. */
const checkKey = (operation: string, key: string): Effect.Effect<void, StoreError> => {
  const problem = invalidKey(key)
  return problem === undefined ? Effect.void : Effect.fail(new StoreError({ operation, detail: problem }))
}

/**
 * A process-local store: grants in a Map, one lock per key. Nothing survives a restart; use it for tests and for
 * processes that re-authorize on start.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<TokenStore["Type"]> = Effect.sync(() => {
  const grants = new Map<string, Grant>()
  const due = DueIndex.make()
  const issuerPauses = new Map<string, number>()
  const locks = new Map<string, { readonly semaphore: Effect.Semaphore; holders: number }>()

  const withLock = <A, E, R>(key: string, body: (lease: Lease) => Effect.Effect<A, E, R>) =>
    Effect.zipRight(checkKey("lock", key), Effect.acquireUseRelease(
      Effect.sync(() => {
        let lock = locks.get(key)
        if (lock === undefined) {
          lock = { semaphore: Effect.unsafeMakeSemaphore(1), holders: 0 }
          locks.set(key, lock)
        }
        lock.holders++
        return lock
      }),
      (lock) => lock.semaphore.withPermits(1)(Effect.suspend(() => body(heldInProcess))),
      // Forget the lock when nobody holds or waits for it, so the map does not grow with every key ever seen.
      (lock) =>
        Effect.sync(() => {
          if (--lock.holders === 0) locks.delete(key)
        })
    ))

  return TokenStore.of({
    durability: "memory",
    lease: undefined,
    get: (key) => Effect.zipRight(checkKey("get", key), Effect.sync(() => Option.fromNullable(grants.get(key)))),
    compareAndSet: (key, expectedVersion, grant) =>
      Effect.zipRight(
        checkKey("compareAndSet", key),
        Effect.suspend((): Effect.Effect<Grant, StaleWrite | StoreError> => {
          const current = grants.get(key)
          if (current?.version !== expectedVersion) return Effect.fail(staleWrite(expectedVersion, current?.version))
          return Either.match(storable(grant), {
            onLeft: (detail) => Effect.fail(new StoreError({ operation: "compareAndSet", detail })),
            onRight: (normal) => {
              const written = withVersion(normal, (expectedVersion ?? 0) + 1)
              grants.set(key, written)
              due.set(key, dueAtOf(written))
              return Effect.succeed(written)
            }
          })
        })
      ),
    delete: (key) =>
      Effect.zipRight(checkKey("delete", key), Effect.sync(() => (grants.delete(key), due.set(key, undefined)))),
    withLock,
    scheduling: {
      claimDue: ({ holdUntil, limit, now }) => Effect.sync(() => due.claim(now, limit, holdUntil)),
      backlog: (now) => Effect.sync(() => due.backlog(now)),
      pauseIssuer: (issuer, until) =>
        Effect.sync(() => void issuerPauses.set(issuer, Math.max(until, issuerPauses.get(issuer) ?? 0))),
      issuerPausedUntil: (issuer, now) =>
        Effect.sync(() => {
          const until = issuerPauses.get(issuer)
          if (until === undefined || until > now) return until
          issuerPauses.delete(issuer)
          return undefined
        })
    }
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore> = Layer.effect(TokenStore, makeMemory)
