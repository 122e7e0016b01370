/**
 * The grant's record through a refresh (DU-4): a "refresh in flight" intent is written before the request is sent and
 * replaced by the outcome, so a refresh whose outcome never arrived (a crash, a timeout, a reset) is seen by the next
 * holder. Every write is a compare-and-set on the version this holder read or wrote: a holder that lost its lease can
 * never overwrite a newer record (fencing, FN-1).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Errors from "../RefreshError.js"
import * as Telemetry from "../Telemetry.js"
import type { ReauthReason } from "../Token.js"
import { Grant } from "../Token.js"
import type { TokenStore } from "../TokenStore.js"

/** @internal */
export const withoutIntent = (grant: Grant): Grant => {
  const { refreshStartedAt: _, ...rest } = grant
  return new Grant(rest)
}

/** The version the next write of one flight must expect: the grant read, or the intent written on top of it. @internal */
export interface Held {
  version: number
  intent: boolean
}

/** @internal */
export const make = (store: TokenStore["Type"]) => {
  const begin = (key: string, grant: Grant, held: Held, now: number): Effect.Effect<void, Errors.RefreshError> =>
    Effect.map(
      store.compareAndSet(key, held.version, new Grant({ ...grant, refreshStartedAt: now })),
      (written) => {
        held.version = written.version
        held.intent = true
      }
    )

  /** Whether this holder wrote it (it holds an intent and no one wrote meanwhile). */
  const clear = (key: string, grant: Grant, held: Held): Effect.Effect<boolean> =>
    held.intent
      ? Effect.orElseSucceed(Effect.as(store.compareAndSet(key, held.version, withoutIntent(grant)), true), () => false)
      : Effect.succeed(false)

  /** Losing this race means someone else wrote a newer grant: nothing to mark. Whether this holder marked it. */
  const markReauth = (key: string, grant: Grant, held: Held, reason: ReauthReason): Effect.Effect<boolean> =>
    store.compareAndSet(key, held.version, new Grant({ ...withoutIntent(grant), reauthRequired: reason })).pipe(
      Effect.zipRight(Metric.increment(Telemetry.reauthRequired)),
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )

  /** The server has rotated the refresh token: the write is retried before giving up, and the intent stays if it fails. */
  const persist = (key: string, held: Held, grant: Grant): Effect.Effect<Grant, Errors.StoreError | Errors.StaleWrite> =>
    store.compareAndSet(key, held.version, grant).pipe(
      Effect.retry({
        schedule: Schedule.spaced(Duration.millis(100)),
        times: 3,
        while: (error) => error._tag === "StoreError"
      })
    )

  return { begin, clear, markReauth, persist }
}
