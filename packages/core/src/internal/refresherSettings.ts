/**
 * The Refresher's options, checked and resolved to milliseconds once, with the documented defaults.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { RefresherOptions } from "../Refresher.js"
import * as Errors from "../RefreshError.js"
import * as RetryPolicy from "../RetryPolicy.js"
import type { TokenStore } from "../TokenStore.js"
import type { DuePolicy } from "./duePolicy.js"
import type { PolicySettings } from "./failurePolicy.js"
import { tracedSchedule } from "./refreshTelemetry.js"

/** @internal */
export interface RefresherSettings {
  readonly skewMillis: number
  /** Callers wait for a refresh only when the token is valid for less than this (refresh-ahead's stale point). */
  readonly minValidityMillis: number
  /** Whether a hit past the prefetch point (`skew` before expiry) starts a background refresh. */
  readonly refreshAhead: boolean
  readonly defaultLifetimeMillis: number
  readonly forcedCooldownMillis: number
  readonly reuseGraceMillis: number
  readonly maxConcurrent: number
  readonly policy: PolicySettings
  readonly due: DuePolicy
  readonly schedule: Schedule.Schedule<unknown, Errors.RefreshError>
}

const configError = (option: string, detail: string) => Effect.fail(new Errors.ConfigurationError({ option, detail }))

const millis = (option: keyof RefresherOptions, value: Duration.DurationInput | undefined, fallback: number) =>
  Effect.suspend(() => {
    if (value === undefined) return Effect.succeed(fallback)
    const decoded = Duration.decodeUnknown(value)
    return Option.isSome(decoded) && Duration.isFinite(decoded.value)
      ? Effect.succeed(Duration.toMillis(decoded.value))
      : configError(option, "must be a finite duration")
  })

/** @internal */
export const resolve = (
  options: RefresherOptions,
  store: TokenStore["Type"]
): Effect.Effect<RefresherSettings, Errors.ConfigurationError> =>
  Effect.gen(function*() {
    const maxConcurrent = options.maxConcurrentRefreshes ?? 16
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      return yield* configError("maxConcurrentRefreshes", "must be a positive whole number")
    }
    // One rule for every store: a lease must be renewed well within its lifetime, so a holder waiting for a slow
    // server keeps it (the per-attempt timeout itself may exceed the lease: a sent refresh token is waited for).
    if (store.lease !== undefined && store.lease.renewEveryMillis * 2 > store.lease.ttlMillis) {
      return yield* configError(
        "lease",
        `the store renews its lease every ${store.lease.renewEveryMillis} ms, more than half its ${store.lease.ttlMillis} ms lifetime; renew more often or lengthen the lease`
      )
    }
    const maxRetryAfterMillis = yield* millis("maxRetryAfter", options.maxRetryAfter, 30_000)
    const schedule = tracedSchedule(
      Schedule.isSchedule(options.retry)
        ? {
          _tag: "custom",
          schedule: RetryPolicy.fromSchedule(options.retry as Schedule.Schedule<unknown, Errors.RefreshError>, {
            maxRetryAfter: maxRetryAfterMillis
          })
        }
        : { _tag: "policy", schedule: RetryPolicy.make({ maxRetryAfter: maxRetryAfterMillis, ...options.retry }) }
    )
    const minValidityMillis = yield* millis("minValidity", options.minValidity, 5_000)
    const skewMillis = yield* millis("skew", options.skew, 60_000)
    const keepAlive = options.keepAlive === undefined ? undefined : yield* millis("keepAlive", options.keepAlive, 0)
    if (keepAlive !== undefined && keepAlive <= 0) return yield* configError("keepAlive", "must be a positive duration")
    return {
      skewMillis,
      due: {
        marginMillis: yield* millis("scheduledRefreshMargin", options.scheduledRefreshMargin, 2 * skewMillis),
        jitterFraction: 0.1,
        keepAliveMillis: keepAlive
      },
      minValidityMillis,
      refreshAhead: options.refreshAhead !== false,
      defaultLifetimeMillis: yield* millis("defaultLifetime", options.defaultLifetime, 3_600_000),
      forcedCooldownMillis: yield* millis("forcedRefreshCooldown", options.forcedRefreshCooldown, 10_000),
      reuseGraceMillis: yield* millis("reuseGracePeriod", options.reuseGracePeriod, 0),
      maxConcurrent,
      policy: {
        failureCooldownMillis: yield* millis("failureCooldown", options.failureCooldown, 30_000),
        staleRetryMillis: yield* millis("staleRetryInterval", options.staleRetryInterval, 5_000),
        minValidityMillis,
        invalidClientPauseMillis: yield* millis("invalidClientPause", options.invalidClientPause, 30_000),
        maxRetryAfterMillis
      },
      schedule
    }
  })
