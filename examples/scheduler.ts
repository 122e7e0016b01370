/**
 * One replica of a service that keeps every grant in a shared store fresh in the background: the RefreshScheduler
 * refreshes each grant ahead of its expiry (and idle ones every 30 days), whether or not anything asks for it, and
 * RefreshEvents says when a grant needs its user again. Run the same program in every replica: each due grant is
 * claimed by one of them.
 *
 *   STORE_FILE=./data/grants.db TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... \
 *   npx tsx examples/scheduler.ts
 *
 * SQLite is shared by the processes of one machine; for replicas on many machines use
 *   RedisTokenStore.layerConfig({ url: Config.redacted("REDIS_URL") })   (from "@renew/store-redis"), or
 *   PgTokenStore.layerConfig({ url: Config.redacted("DATABASE_URL") })   (from "@renew/store-postgres").
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Refresher, RefreshEvents, RefreshScheduler, TokenEndpoint, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Config, Duration, Effect, Layer, Option, Redacted } from "effect"

// What to do when a grant changes state. Called once per change across the fleet (by the replica that stored it).
export const onEvent = (event: RefreshEvents.RefreshEvent): Effect.Effect<void> => {
  switch (event._tag) {
    case "ReauthRequired": // e.g. email the user a link to sign in again
      return Effect.logWarning(`${event.key} must authorize again (${event.reason}): ${event.message}`)
    case "Failing":
      return Effect.logWarning(`refreshes of ${event.key} are failing (${event.errorTag}): ${event.message}`)
    case "Recovered":
      return Effect.logInfo(`refreshes of ${event.key} succeed again`)
  }
}

export const RenewLive = (options: {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly store: Layer.Layer<TokenStore.TokenStore, unknown>
  readonly onEvent?: (event: RefreshEvents.RefreshEvent) => Effect.Effect<void>
}) =>
  // Per replica: 8 refreshes in flight and 20 per second at most; with 4 replicas, the endpoint sees up to 80/s.
  RefreshScheduler.layer({ interval: "5 seconds", maxConcurrent: 8, maxPerSecond: 20 }).pipe(
    Layer.provideMerge(
      // keepAlive: refresh a grant nobody used for 30 days, before its refresh token expires unused.
      Refresher.layer({ keepAlive: "30 days" }).pipe(
        Layer.provideMerge(
          TokenEndpoint.layer({ url: options.tokenUrl, clientId: options.clientId, clientSecret: options.clientSecret })
        ),
        Layer.provide(RefreshEvents.layer(options.onEvent ?? onEvent)),
        Layer.provideMerge(options.store)
      )
    ),
    Layer.provide(NodeHttpClient.layerUndici)
  )

// Seeds a grant with a refresh token only (it is due at once) and waits, without asking for its access token, until
// the scheduler has refreshed it. Returns the stored grant's version.
export const seedAndWait = (key: string, refreshToken: string) =>
  Effect.gen(function*() {
    const refresher = yield* Refresher.Refresher
    const store = yield* TokenStore.TokenStore
    yield* refresher.setGrant(key, { refreshToken })
    for (;;) {
      const grant = Option.getOrUndefined(yield* store.get(key))
      if (grant === undefined || grant.reauthRequired !== undefined) return undefined
      if (grant.accessToken !== undefined) return grant.version
      yield* Effect.sleep(Duration.millis(100))
    }
  })

const main = Effect.gen(function*() {
  const live = RenewLive({
    tokenUrl: yield* Config.string("TOKEN_URL"),
    clientId: yield* Config.string("CLIENT_ID"),
    clientSecret: yield* Config.redacted("CLIENT_SECRET"),
    store: SqliteTokenStore.layer({ filename: yield* Config.string("STORE_FILE") })
  })
  // A replica that only keeps grants fresh: the layer runs until the process is stopped.
  return yield* Layer.launch(live)
})

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch(() => process.exit(1))
