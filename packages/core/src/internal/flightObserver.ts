/**
 * What each refresh ended as, for the Promise facade's per-refresh events (`refreshed`, `failure`). The engine's public
 * `RefreshEvents` reports state changes only (OB-1); this is the facade's own, finer view, so it stays internal.
 *
 * @internal
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Errors from "../RefreshError.js"
import type { Grant } from "../Token.js"

/** @internal */
export interface FlightEnd {
  readonly key: string
  /** Why the refresh ran: `due`, `prefetch`, `scheduled`, `forced` or `rejected`. */
  readonly trigger: string
  /** Requests sent to the token endpoint. */
  readonly attempts: number
  /** The grant this refresh obtained from the server and stored (not one found already refreshed). */
  readonly refreshed: Grant | undefined
  /** Why it failed: the callers' error, or the one behind a still-valid token served to them. */
  readonly failure: { readonly error: Errors.RefreshError; readonly servedStale: boolean } | undefined
  /** Epoch millis. */
  readonly at: number
}

/**
 * Told of every refresh's end, off the refresh's path (a failing observer is logged and changes nothing).
 *
 * @internal
 */
export class FlightObserver extends Context.Tag("@renew/core/internal/FlightObserver")<FlightObserver, {
  readonly ended: (end: FlightEnd) => Effect.Effect<void>
}>() {}
