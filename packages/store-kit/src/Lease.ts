/**
 * The lease protocol shared by the shared stores: a lease is a record with a random owner id and an expiry kept by
 * the backend's clock. Acquire, renew and release are each one atomic backend operation conditional on the owner
 * (LK-1). While the body runs the lease is renewed every third of its TTL (LK-3); waiters back off with jitter, never
 * sleep past the moment the holder's lease expires, and try once more before giving up with `LockTimeout` (LK-5).
 *
 * Fencing: the body gets a `Lease`. A renewal that finds the lease lost (lapsed, taken, or gone), or that keeps
 * failing until the lease may have lapsed, marks it lost for good; the holder then sends no further attempt and
 * writes only by compare-and-set on the version it holds.
 *
 * @since 0.1.0
 */
import { RefreshError, TokenStore } from "@renew/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
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
  /**
   * Extends the lease if `owner` holds it and it has not expired. `false`: the lease is no longer ours (it lapsed,
   * another owner took it, or it is gone). Every backend refuses to revive a lapsed lease, so "lost" means the same
   * on all of them.
   */
  readonly renew: (key: string, owner: string) => Effect.Effect<boolean, RefreshError.StoreError>
  /** Owner-checked: deletes the lease only if `owner` still holds it. */
  readonly release: (key: string, owner: string) => Effect.Effect<void, RefreshError.StoreError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions {
  readonly parameters: TokenStore.LeaseParameters
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
 * The parameters of a lease of `ttlMillis` whose waiters give up after `waitMillis`: renewed every third of the TTL.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parameters = (ttlMillis: number, waitMillis: number): TokenStore.LeaseParameters => ({
  ttlMillis,
  renewEveryMillis: Math.max(1, Math.floor(ttlMillis / 3)),
  waitMillis
})

/**
 * Builds a store's `withLock` from its lease operations.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWithLock = (ops: LeaseOps, options: LeaseOptions) => {
  const { maxPollMillis } = options
  const { renewEveryMillis, ttlMillis, waitMillis } = options.parameters

  /** Takes the lease; returns when the successful attempt was sent (the lease runs at least until then + TTL). */
  const acquire = (key: string, owner: string) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const deadline = started + waitMillis
      let delay = Math.min(10, maxPollMillis)
      while (true) {
        const sentAt = yield* Clock.currentTimeMillis
        const attempt = yield* ops.tryAcquire(key, owner)
        if (attempt.acquired) return sentAt
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

  /** The holder's side of a lease taken at `acquiredAt`: confirmation, loss, and the background renewal. */
  const hold = (key: string, owner: string, acquiredAt: number) =>
    Effect.map(Effect.clock, (clock) => {
      let lost = false
      // When the last acquire or renewal that the backend confirmed was SENT: the lease runs at least TTL from then.
      let confirmedAt = acquiredAt
      const markLost = (why: string) =>
        Effect.suspend(() => {
          if (lost) return Effect.void
          lost = true
          return Effect.logWarning(
            `renew: lost the ${options.backend} lease of a grant while refreshing it (${why}); ` +
              "this holder sends no further attempt, and the version check refuses its write if another holder wrote first"
          )
        })
      const confirm: Effect.Effect<boolean> = Effect.suspend(() => {
        if (lost) return Effect.succeed(false)
        const sentAt = clock.unsafeCurrentTimeMillis()
        return ops.renew(key, owner).pipe(
          Effect.flatMap((held) => {
            if (!held) return Effect.as(markLost("it lapsed, or another process took it"), false)
            if (!lost) confirmedAt = Math.max(confirmedAt, sentAt)
            return Effect.succeed(!lost)
          }),
          // Never fails: a backend error is a loss only once the lease may have lapsed since the last confirmation.
          Effect.catchAllCause((cause) => {
            if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
            const detail = Cause.squash(cause)
            const message = detail instanceof Error ? detail.message : String(detail)
            if (clock.unsafeCurrentTimeMillis() - confirmedAt >= ttlMillis) {
              return Effect.as(markLost(`could not renew it before it may have lapsed: ${message}`), false)
            }
            return Effect.as(
              Effect.logWarning(`renew: could not renew the ${options.backend} lease of a grant: ${message}`),
              !lost
            )
          })
        )
      })
      const lease: TokenStore.Lease = { confirm, isLost: () => lost }
      // Renews every third of the TTL until the lease is found lost; then stays idle until the body ends.
      const renewal = Effect.sleep(Duration.millis(renewEveryMillis)).pipe(
        Effect.zipRight(confirm),
        Effect.repeat({ while: (held) => held }),
        Effect.zipRight(Effect.never)
      )
      return { lease, renewal }
    })

  return <A, E, R>(
    key: string,
    body: (lease: TokenStore.Lease) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | RefreshError.LockTimeout | RefreshError.StoreError, R> =>
    Effect.suspend(() => {
      const problem = TokenStore.invalidKey(key)
      if (problem !== undefined) return Effect.fail(new RefreshError.StoreError({ operation: "lock", detail: problem }))
      const owner = newOwner()
      return Effect.acquireUseRelease(
        // The wait stays interruptible; if interrupted, whatever we may have acquired is released (owner-checked).
        Effect.interruptible(acquire(key, owner)).pipe(
          Effect.onInterrupt(() => Effect.ignore(ops.release(key, owner)))
        ),
        // The body runs on the caller's fiber, the renewal beside it: interrupting the caller then waits for whatever
        // part of the body protects itself (a sent refresh and the write of its answer) with the lease still renewed,
        // instead of leaving the body running on with the lease released and the store closing under it.
        (acquiredAt) =>
          Effect.flatMap(
            hold(key, owner, acquiredAt),
            ({ lease, renewal }) =>
              Effect.flatMap(
                Effect.forkDaemon(Effect.interruptible(renewal)),
                (renewing) => Effect.ensuring(Effect.suspend(() => body(lease)), Fiber.interrupt(renewing))
              )
          ),
        () => Effect.ignore(ops.release(key, owner))
      )
    })
}
