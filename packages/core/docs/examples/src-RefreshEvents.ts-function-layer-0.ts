import { RefreshEvents } from '../../src'
import { Effect } from "effect"

const events = RefreshEvents.layer((event) =>
  event._tag === "ReauthRequired" ? Effect.log(`ask ${event.key} to sign in again`) : Effect.void
)
