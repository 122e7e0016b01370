/**
 * When to try a failed refresh again. Only retryable causes are retried (network, timeout, 5xx, 429); a terminal one
 * (`InvalidGrant`, `InvalidClient`, …) never is. Backoff is capped exponential with jitter, bounded in attempts and
 * in total time, and a server's `Retry-After` is never undercut.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import type { RefreshError } from "./RefreshError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicyOptions {
  /** Attempts in total, the first one included. Default 4. */
  readonly maxAttempts?: number | undefined
  /** Delay before the first retry. Default 500 ms. */
  readonly initialDelay?: Duration.DurationInput | undefined
  /** Backoff multiplier. Default 2. */
  readonly factor?: number | undefined
  /** Ceiling of one backoff delay. Default 10 seconds. */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Randomise each delay within [50 %, 100 %] of its value, so a fleet does not retry in lockstep. Default true. */
  readonly jitter?: boolean | undefined
  /**
   * Total time budget from the first failure: a retry that would start later is not made. Default 30 seconds.
   * Keep it small: it bounds how long callers wait and how long a shutdown can be held off.
   */
  readonly maxElapsed?: Duration.DurationInput | undefined
  /**
   * The longest `Retry-After` worth waiting for. A longer one ends the retries at once (the caller gets
   * `RateLimited` / `ServerError` with `retryAfterMillis`) rather than retrying before the server allows.
   * Default 30 seconds.
   */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
}

/**
 * The documented defaults.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaults = {
  maxAttempts: 4,
  initialDelay: Duration.millis(500),
  factor: 2,
  maxDelay: Duration.seconds(10),
  jitter: true,
  maxElapsed: Duration.seconds(30),
  maxRetryAfter: Duration.seconds(30)
} as const

/**
 * What the policy decided after a failed attempt.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryDecision =
  | {
    readonly _tag: "Retry"
    /** The attempt that failed (1-based). */
    readonly attempt: number
    readonly errorTag: RefreshError["_tag"]
    readonly delayMillis: number
    readonly retryAfterMillis: number | undefined
  }
  | {
    readonly _tag: "GiveUp"
    readonly attempt: number
    readonly errorTag: RefreshError["_tag"]
    readonly reason: "terminal" | "attempts" | "elapsed" | "retry_after"
  }

const retryAfterOf = (error: RefreshError): number | undefined =>
  "retryAfterMillis" in error ? error.retryAfterMillis : undefined

/**
 * The default policy as a `Schedule` over the failures of one refresh. Its output says what was decided, so callers
 * can trace it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RetryPolicyOptions = {}): Schedule.Schedule<RetryDecision, RefreshError> => {
  const maxAttempts = options.maxAttempts ?? defaults.maxAttempts
  const initial = Duration.toMillis(options.initialDelay ?? defaults.initialDelay)
  const factor = options.factor ?? defaults.factor
  const maxDelay = Duration.toMillis(options.maxDelay ?? defaults.maxDelay)
  const jitter = options.jitter ?? defaults.jitter
  const maxElapsed = Duration.toMillis(options.maxElapsed ?? defaults.maxElapsed)
  const maxRetryAfter = Duration.toMillis(options.maxRetryAfter ?? defaults.maxRetryAfter)

  return Schedule.makeWithState(
    { attempt: 0, startedAt: -1 },
    (now, error: RefreshError, state) =>
      Effect.gen(function*() {
        const attempt = state.attempt + 1
        const startedAt = state.startedAt < 0 ? now : state.startedAt
        const next = { attempt, startedAt }
        const giveUp = (reason: "terminal" | "attempts" | "elapsed" | "retry_after") =>
          [next, { _tag: "GiveUp", attempt, errorTag: error._tag, reason } as RetryDecision, ScheduleDecision.done] as const
        if (!error.retryable) return giveUp("terminal")
        if (attempt >= maxAttempts) return giveUp("attempts")
        const retryAfterMillis = retryAfterOf(error)
        if (retryAfterMillis !== undefined && retryAfterMillis > maxRetryAfter) return giveUp("retry_after")
        const backoff = Math.min(maxDelay, initial * Math.pow(factor, attempt - 1))
        const jittered = jitter ? backoff * (yield* Random.nextRange(0.5, 1)) : backoff
        const delayMillis = Math.round(Math.max(jittered, retryAfterMillis ?? 0))
        if (now + delayMillis - startedAt > maxElapsed) return giveUp("elapsed")
        return [
          next,
          { _tag: "Retry", attempt, errorTag: error._tag, delayMillis, retryAfterMillis } as RetryDecision,
          ScheduleDecision.continueWith(ScheduleInterval.after(now + delayMillis))
        ] as const
      })
  )
}

/**
 * Makes any schedule safe to use as a refresh retry policy: terminal errors stop it, a `Retry-After` is never
 * undercut, and one longer than `maxRetryAfter` (default 30 seconds) ends the retries at once instead of parking
 * every caller for as long as the server asks. Use it to bring your own schedule.
 *
 * @since 0.1.0
 * @category combinators
 */
export const fromSchedule = <Out, R>(
  schedule: Schedule.Schedule<Out, RefreshError, R>,
  options: { readonly maxRetryAfter?: Duration.DurationInput | undefined } = {}
): Schedule.Schedule<RefreshError, RefreshError, R> => {
  const maxRetryAfter = Duration.toMillis(options.maxRetryAfter ?? defaults.maxRetryAfter)
  return schedule.pipe(
    Schedule.passthrough,
    Schedule.whileInput((error: RefreshError) =>
      error.retryable && (retryAfterOf(error) ?? 0) <= maxRetryAfter
    ),
    Schedule.modifyDelay((error: RefreshError, delay) =>
      Duration.max(delay, Duration.millis(retryAfterOf(error) ?? 0))
    )
  )
}
