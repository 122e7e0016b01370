/**
 * What stops a refresh before it is sent: the client pause after `invalid_client`, a per-grant pause (the server's
 * `Retry-After`, or the cooldown after a failure: ER-3), and the cooldown of forced refreshes. Guards are written
 * only from decisions of flights that sent a request; a call they stop gets the remembered error as it is.
 *
 * @internal
 */
import type * as Errors from "../RefreshError.js"
import type { TriggerKind } from "./failurePolicy.js"

interface Pause {
  readonly error: Errors.RefreshError
  /** The refresh token the failure was about: a grant stored since (another one) is not paused. */
  readonly refreshToken: string
  readonly until: number
  /** A server-requested pause binds forced refreshes too; a cooldown only due ones (ER-3). */
  readonly bindsForced: boolean
}

/** @internal */
export interface RefreshGuards {
  /** The error a call must get without a request, if any. */
  readonly check: (
    key: string,
    refreshToken: string,
    trigger: TriggerKind,
    now: number
  ) => Errors.RefreshError | undefined
  readonly pauseGrant: (key: string, pause: Pause) => void
  readonly pauseClient: (error: Errors.RefreshError, until: number) => void
  /** Whether a forced refresh of `key` happened within the cooldown. */
  readonly forcedRecently: (key: string, now: number) => boolean
  readonly noteForced: (key: string, now: number) => void
  /** A new grant was stored or the grant removed: nothing remembered about the old one applies. */
  readonly forget: (key: string) => void
  /** Drops what has lapsed, so keys never asked for again do not pile up. */
  readonly sweep: (now: number) => void
}

/** @internal */
export const make = (forcedCooldownMillis: number): RefreshGuards => {
  let clientPause: { readonly error: Errors.RefreshError; readonly until: number } | undefined
  const pauses = new Map<string, Pause>()
  const lastForcedAt = new Map<string, number>()

  return {
    check: (key, refreshToken, trigger, now) => {
      if (clientPause !== undefined && now < clientPause.until) return clientPause.error
      const pause = pauses.get(key)
      if (pause === undefined) return undefined
      if (now >= pause.until || pause.refreshToken !== refreshToken) {
        pauses.delete(key)
        return undefined
      }
      return trigger === "forced" || trigger === "rejected" ? (pause.bindsForced ? pause.error : undefined) : pause.error
    },
    pauseGrant: (key, pause) => void pauses.set(key, pause),
    pauseClient: (error, until) => {
      clientPause = { error, until }
    },
    forcedRecently: (key, now) => now - (lastForcedAt.get(key) ?? -Infinity) < forcedCooldownMillis,
    noteForced: (key, now) => void lastForcedAt.set(key, now),
    forget: (key) => {
      pauses.delete(key)
      lastForcedAt.delete(key)
    },
    sweep: (now) => {
      for (const [key, forcedAt] of lastForcedAt) if (now - forcedAt >= forcedCooldownMillis) lastForcedAt.delete(key)
      for (const [key, pause] of pauses) if (now >= pause.until) pauses.delete(key)
      if (clientPause !== undefined && now >= clientPause.until) clientPause = undefined
    }
  }
}
