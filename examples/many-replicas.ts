/**
 * One replica of a fleet: grants live in Redis, and however many replicas ask for the same expired grant at once,
 * exactly one of them calls the token endpoint; the others read the new grant from Redis.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app \
 *   CLIENT_SECRET=... GRANT_KEY=user-42 npx tsx examples/many-replicas.ts
 *
 * Swap the store for PostgreSQL with
 *   PgTokenStore.layerConfig({ url: Config.redacted("DATABASE_URL") })   (from "@renew/store-postgres")
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Refresher, TokenEndpoint } from "@renew/core"
import { RedisTokenStore } from "@renew/store-redis"
import { Config, Effect, Layer, Redacted } from "effect"

// The shared store. REDIS_URL may hold a password: it is read as Redacted and never printed.
export const StoreLive = RedisTokenStore.layerConfig({
  url: Config.redacted("REDIS_URL"),
  prefix: Config.string("RENEW_REDIS_PREFIX").pipe(Config.withDefault("renew:")),
  // true: refuse to start unless Redis persists every write (AOF with WAITAOF or appendfsync always).
  requireDurable: Config.boolean("RENEW_REQUIRE_DURABLE").pipe(Config.withDefault(false))
})

// The token endpoint of the authorization server.
export const EndpointLive = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      url: Config.string("TOKEN_URL"),
      clientId: Config.string("CLIENT_ID"),
      clientSecret: Config.redacted("CLIENT_SECRET")
    }),
    (config) => TokenEndpoint.layer(config)
  )
)

// The engine over both. provideMerge keeps the store available to the application (to seed grants, for example).
export const RenewLive = Refresher.layer({ skew: "60 seconds" }).pipe(
  Layer.provide(EndpointLive),
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provideMerge(StoreLive)
)

// The application: ask for a token whenever you need one. Fresh tokens come from memory; a due one is refreshed once
// across the whole fleet.
export const program = Effect.gen(function*() {
  const key = yield* Config.string("GRANT_KEY")
  const refresher = yield* Refresher.Refresher
  const token = yield* refresher.getAccessToken(key)
  return Redacted.value(token).length
}).pipe(
  Effect.catchTags({
    GrantNotFound: (error) => Effect.as(Effect.logError(error.message), 0),
    InvalidGrant: (error) => Effect.as(Effect.logError(`the user must authorize again: ${error.message}`), 0),
    StoreError: (error) => Effect.as(Effect.logError(error.message), 0)
  })
)

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(program.pipe(Effect.provide(RenewLive))).then(
    (length) => console.log(length > 0 ? "got an access token" : "no token"),
    (error: unknown) => {
      console.error(String(error))
      process.exit(1)
    }
  )
}
