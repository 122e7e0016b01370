/**
 * The lease protocol shared by the shared stores: a lease is a record with a random owner id and an expiry kept by
 * the backend's clock. Acquire, renew and release are each one atomic backend operation conditional on the owner
 * (LK-1). While the body runs the lease is renewed every third of its TTL (LK-3); waiters back off with jitter, never
 * sleep past the moment the holder's lease expires, and try once more before giving up with `LockTimeout` (LK-5).
 *
 * @since 0.1.0
 */
import { RefreshError } from "@renew/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Crypto from "node:crypto"
import * as Os from "node:os"

/**
 * @since 0.1.0
 * @category models
 */
export interface Attempt {
  readonly acquired: boolean
  /** How long the current holder's lease still runs, when the backend told. */
  readonly holderRemainingMillis?: number | undefined
}

/**
 * What a backend provides: three atomic, owner-conditional operations.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseOps {
  readonly tryAcquire: (key: string, owner: string) => Effect.Effect<Attempt, RefreshError.StoreError>
  /** `false`: the lease is no longer ours (it expired and another owner took it, or it is gone). */
  readonly renew: (key: string, owner: string) => Effect.Effect<boolean, RefreshError.StoreError>
  /** Owner-checked: deletes the lease only if `owner` still holds it. */
  readonly release: (key: string, owner: string) => Effect.Effect<void, RefreshError.StoreError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions {
  readonly leaseTtlMillis: number
  readonly lockWaitMillis: number
  /** The longest a waiter sleeps between two attempts ("the retry interval"). */
  readonly maxPollMillis: number
  /** For log lines: "SQLite", "Redis", "PostgreSQL". */
  readonly backend: string
}

/**
 * A unique owner id: host, pid and a random part, so an operator can tell who holds a lease.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newOwner = (): string => `${Os.hostname()}:${process.pid}:${Crypto.randomUUID()}`

/**
 * Builds a store's `withLock` from its lease operations.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWithLock = (ops: LeaseOps, options: LeaseOptions) => {
  const { leaseTtlMillis, lockWaitMillis, maxPollMillis } = options

  const acquire = (key: string, owner: string) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const deadline = started + lockWaitMillis
      let delay = Math.min(10, maxPollMillis)
      while (true) {
        const attempt = yield* ops.tryAcquire(key, owner)
        if (attempt.acquired) return
        const now = yield* Clock.currentTimeMillis
        const left = deadline - now
        if (left <= 0) {
          return yield* new RefreshError.LockTimeout({ waitedMillis: now - started })
        }
        // Full jitter around an exponentially growing delay, capped, so waiters do not poll in lockstep; never past
        // the holder's expiry (a dead holder is taken over as soon as its lease runs out) nor past the deadline (the
        // last attempt happens right at it).
        let sleep = delay * (yield* Random.nextRange(0.5, 1.5))
        if (attempt.holderRemainingMillis !== undefined && attempt.holderRemainingMillis >= 0) {
          sleep = Math.min(sleep, attempt.holderRemainingMillis + (yield* Random.nextRange(1, 10)))
        }
        yield* Effect.sleep(Duration.millis(Math.max(1, Math.min(sleep, left))))
        delay = Math.min(delay * 2, maxPollMillis)
      }
    })

  const renewal = (key: string, owner: string) =>
    ops.renew(key, owner).pipe(
      Effect.flatMap((held) =>
        held
          ? Effect.void
          : Effect.logWarning(
            `renew: lost the ${options.backend} lease of a grant while refreshing it (it expired and another process took it); ` +
              "the version check will refuse this holder's write if the other one wrote first"
          )
      ),
      Effect.catchAll((error) =>
        Effect.logWarning(`renew: could not renew the ${options.backend} lease of a grant: ${error.message}`)
      ),
      Effect.repeat(Schedule.spaced(Duration.millis(leaseTtlMillis / 3))),
      Effect.delay(Duration.millis(leaseTtlMillis / 3)),
      Effect.zipRight(Effect.never)
    )

  return <A, E, R>(
    key: string,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | RefreshError.LockTimeout | RefreshError.StoreError, R> =>
    Effect.suspend(() => {
      const owner = newOwner()
      return Effect.acquireUseRelease(
        // The wait stays interruptible; if interrupted, whatever we may have acquired is released (owner-checked).
        Effect.interruptible(acquire(key, owner)).pipe(
          Effect.onInterrupt(() => Effect.ignore(ops.release(key, owner)))
        ),
        // A lost lease is not fatal by itself: the grant's compare-and-set still fences a stale write (FN-1).
        () => Effect.raceFirst(effect, renewal(key, owner)),
        () => Effect.ignore(ops.release(key, owner))
      )
    })
}
