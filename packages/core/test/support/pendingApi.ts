/**
 * TEMPORARY shim (issue 11): the API the fixes add, declared here so the regression tests compile before it exists.
 * Delete this file once the options and `EngineClosed` land, and replace each helper call by its argument
 * (`refresherOptions({ ... })` → `{ ... }`; `isEngineClosed(e)` → `e._tag === "EngineClosed"`).
 */
import type { Refresher, TokenManager } from "@renew/core"
import type * as Duration from "effect/Duration"
import * as Predicate from "effect/Predicate"

/** `RefresherOptions` plus the options issue 11 adds. */
export interface PendingRefresherOptions extends Refresher.RefresherOptions {
  /** Longest Retry-After honoured (default policy and custom schedules) and cap of the remembered pause. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /** Negative cache after a terminal failure (ER-3). */
  readonly failureCooldown?: Duration.DurationInput | undefined
  /** How long the server accepts a rotated refresh token again. */
  readonly reuseGracePeriod?: Duration.DurationInput | undefined
}

export const refresherOptions = (options: PendingRefresherOptions): Refresher.RefresherOptions => options

/** `TokenManagerOptions` plus the mirrors of the options above. */
export interface PendingTokenManagerOptions extends TokenManager.TokenManagerOptions {
  readonly maxRetryAfterSeconds?: number | undefined
  readonly failureCooldownSeconds?: number | undefined
  readonly reuseGracePeriodSeconds?: number | undefined
}

export const tokenManagerOptions = (options: PendingTokenManagerOptions): TokenManager.TokenManagerOptions => options

/** The new tagged error calls get after shutdown / dispose. */
export const isEngineClosed = (u: unknown): boolean => Predicate.isTagged(u, "EngineClosed")
