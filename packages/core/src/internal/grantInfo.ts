/**
 * What the Promise facade's `getGrantInfo` tells about a stored grant: its times, scope and state, never a token.
 *
 * @internal
 */
import type { Grant, ReauthReason } from "../Token.js"
import { refreshAt } from "../Token.js"

/**
 * - `fresh`: the access token is served from memory as it is.
 * - `due`: past its refresh point (`skewSeconds` before expiry): the next call refreshes it (in the background with
 *   refresh-ahead), or the scheduler does.
 * - `expired`: no usable access token (expired, or none stored): the next call waits for a refresh.
 * - `failing`: its last refresh that reached the server failed (`failingSince`); `expiresAt` says whether the access
 *   token still works meanwhile.
 * - `needs_reauth`: dead: only the user can revive it by authorizing again (`reauthReason`).
 *
 * @internal
 */
export type GrantState = "fresh" | "due" | "expired" | "failing" | "needs_reauth"

/** @internal */
export interface GrantInfo {
  readonly key: string
  readonly clientId: string
  readonly state: GrantState
  /** When the access token expires, epoch milliseconds (0 when there is none). */
  readonly expiresAt: number
  /** When it comes due for a refresh, epoch milliseconds (`expiresAt` minus the skew, at most half its lifetime). */
  readonly refreshAt: number
  /** When the current access token was obtained (its refresh, or `setGrant`), epoch milliseconds. */
  readonly lastRefreshedAt: number
  /** The scope granted, when the server said. */
  readonly scope: string | undefined
  readonly tokenType: string
  readonly hasAccessToken: boolean
  /** Without a refresh token the grant cannot be refreshed: a due one fails with `NoRefreshToken`. */
  readonly hasRefreshToken: boolean
  /** When the refresh token expires, epoch milliseconds, when known (the server's field or introspection). */
  readonly refreshTokenExpiresAt: number | undefined
  /** Why the grant needs a new authorization (`state` is `needs_reauth`). */
  readonly reauthReason: ReauthReason | undefined
  /** Since when its refreshes fail (`state` is `failing`), epoch milliseconds. */
  readonly failingSince: number | undefined
  /** The store's version of the grant: it changes with every write. */
  readonly version: number
}

/** @internal */
export const grantInfo = (
  key: string,
  clientId: string,
  grant: Grant,
  now: number,
  skewMillis: number
): GrantInfo => {
  const dueAt = refreshAt(grant, skewMillis)
  const state: GrantState = grant.reauthRequired !== undefined
    ? "needs_reauth"
    : grant.failingSince !== undefined
    ? "failing"
    : grant.accessToken === undefined || now >= grant.expiresAt
    ? "expired"
    : now >= dueAt
    ? "due"
    : "fresh"
  return Object.freeze({
    key,
    clientId,
    state,
    expiresAt: grant.accessToken === undefined ? 0 : grant.expiresAt,
    refreshAt: Number.isFinite(dueAt) ? dueAt : 0,
    lastRefreshedAt: grant.issuedAt,
    scope: grant.scope,
    tokenType: grant.tokenType,
    hasAccessToken: grant.accessToken !== undefined,
    hasRefreshToken: grant.refreshToken !== undefined,
    refreshTokenExpiresAt: grant.refreshTokenExpiresAt,
    reauthReason: grant.reauthRequired,
    failingSince: grant.failingSince,
    version: grant.version
  })
}
