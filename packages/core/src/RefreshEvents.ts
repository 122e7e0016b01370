/**
 * Events on a grant's state changes only (OB-1): it needs re-authorization, it started failing, it recovered. Each is
 * reported by the engine whose store write made the change, so replicas sharing a store report each change once. No
 * event carries a token or a secret.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ReauthReason } from "./Token.js"

/**
 * @since 0.1.0
 * @category models
 */
export type RefreshEvent =
  /** The grant is dead: only the user can revive it by authorizing again (email them). */
  | {
    readonly _tag: "ReauthRequired"
    readonly key: string
    readonly reason: ReauthReason
    /** The `_tag` of the error that showed it, and its message (no secret). */
    readonly errorTag: string
    readonly message: string
    readonly at: number
  }
  /** The first refresh that reached the server and failed, after successes. */
  | {
    readonly _tag: "Failing"
    readonly key: string
    readonly errorTag: string
    readonly message: string
    readonly at: number
  }
  /** The first success after `Failing`. */
  | {
    readonly _tag: "Recovered"
    readonly key: string
    readonly failingSince: number
    readonly at: number
  }

/**
 * Where the engine reports events. Optional: without it, events are only logged. A handler that fails or dies is
 * logged and never changes a refresh.
 *
 * @since 0.1.0
 * @category tags
 */
export class RefreshEvents extends Context.Tag("@renew/core/RefreshEvents")<RefreshEvents, {
  readonly publish: (event: RefreshEvent) => Effect.Effect<void>
}>() {}

/**
 * @example
 * ```ts
 * import { RefreshEvents } from "@renew/core"
 * import { Effect } from "effect"
 *
 * const events = RefreshEvents.layer((event) =>
 *   event._tag === "ReauthRequired" ? Effect.log(`ask ${event.key} to sign in again`) : Effect.void
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (publish: (event: RefreshEvent) => Effect.Effect<void>): Layer.Layer<RefreshEvents> =>
  Layer.succeed(RefreshEvents, RefreshEvents.of({ publish }))
