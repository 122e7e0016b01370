/**
 * What the shared stores' scheduling sides (`TokenStore.Scheduling`) have in common: the claim request and issuer
 * pauses read the same way (whole milliseconds, within range), and claimed grants handed back in the port's order.
 *
 * @since 0.1.0
 */
import { RefreshError, type TokenStore } from "@renew/core"
import * as Effect from "effect/Effect"

/**
 * A claim request in whole milliseconds: `now` rounded down and `holdUntil` up (a claim never reaches past `now` and
 * never hides a grant for less than asked), both within `[0, 2^53 - 1]`; `limit` a whole number from 0 to 1,000,000 (a bound on one round trip's
 * answer).
 *
 * @since 0.1.0
 * @category models
 */
export interface Claim {
  readonly now: number
  readonly limit: number
  readonly holdUntil: number
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

const clamp = (millis: number) => Math.min(Math.max(millis, 0), Number.MAX_SAFE_INTEGER)

/**
 * Reads a claim request; a time or limit that is not a number (NaN) is a `StoreError`, before any I/O.
 *
 * @since 0.1.0
 * @category constructors
 */
export const claim = (request: TokenStore.ClaimRequest): Effect.Effect<Claim, RefreshError.StoreError> => {
  const { holdUntil, limit, now } = request
  if (Number.isNaN(now) || Number.isNaN(holdUntil) || Number.isNaN(limit)) {
    return Effect.fail(storeError("claimDue", "now, limit and holdUntil must be numbers; nothing was claimed"))
  }
  return Effect.succeed({
    now: clamp(Math.floor(now)),
    limit: Math.min(Math.max(Math.floor(limit), 0), 1_000_000),
    holdUntil: clamp(Math.ceil(holdUntil))
  })
}

/**
 * A time of `pauseIssuer` / `issuerPausedUntil` in whole milliseconds (`rounding`: `ceil` for a pause's end, never
 * shorter than asked; `floor` for `now`), within `[0, 2^53 - 1]`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const millis = (
  operation: string,
  value: number,
  rounding: "ceil" | "floor"
): Effect.Effect<number, RefreshError.StoreError> =>
  Number.isNaN(value)
    ? Effect.fail(storeError(operation, "the time is not a number; nothing was read or written"))
    : Effect.succeed(clamp(rounding === "ceil" ? Math.ceil(value) : Math.floor(value)))

/**
 * Claimed rows (due times as the driver gives them: numbers, bigint strings or Redis scores) as the port returns them:
 * earliest first, ties by key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const claimed = (
  rows: ReadonlyArray<{ readonly key: string; readonly dueAt: unknown }>
): Array<TokenStore.DueGrant> =>
  rows
    .map((row) => ({ key: row.key, dueAt: Number(row.dueAt) }))
    .sort((a, b) => a.dueAt - b.dueAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))

/**
 * A backlog from the counts a backend returns (as numbers or strings); `oldestDueAt` only when it is due at `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const backlog = (
  now: number,
  counts: { readonly due: unknown; readonly oldest: unknown; readonly scheduled: unknown }
): TokenStore.Backlog => {
  const oldest = counts.oldest === null || counts.oldest === undefined || counts.oldest === ""
    ? undefined
    : Number(counts.oldest)
  return {
    due: Number(counts.due),
    oldestDueAt: oldest !== undefined && oldest <= now ? oldest : undefined,
    scheduled: Number(counts.scheduled)
  }
}

/**
 * The end of a pause read from a backend, if it is still in force at `now` (a pause ends at its `until`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const pausedUntil = (now: number, until: unknown): number | undefined => {
  if (until === null || until === undefined || until === "") return undefined
  const end = Number(until)
  return end > now ? end : undefined
}
