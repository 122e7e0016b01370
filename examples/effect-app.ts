/**
 * An Effect application that keeps a user's access token fresh and calls an API with it.
 *
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... \
 *   REFRESH_TOKEN=... API_URL=https://api.example.com/me npx tsx examples/effect-app.ts
 */
import { FetchHttpClient, HttpClient } from "@effect/platform"
import { BearerClient, FailureRateMonitor, Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import { Config, Effect, Layer, Redacted } from "effect"

// 1. The engine: where grants live, how to reach the token endpoint, and the refresh policy.
export const RenewLive = (config: {
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
}) =>
  Refresher.layer({ skew: "60 seconds", retry: { maxAttempts: 4, maxElapsed: "30 seconds" } }).pipe(
    Layer.provide(TokenEndpoint.layer({ url: config.tokenUrl, clientId: config.clientId, clientSecret: config.clientSecret })),
    Layer.provide(FailureRateMonitor.layer({ threshold: 0.5, minVolume: 10 })),
    Layer.provideMerge(TokenStore.layerMemory),
    Layer.provideMerge(FetchHttpClient.layer)
  )

// 2. The application: seed a grant once, then call the API; tokens are refreshed as needed, and a 401 triggers
//    one refresh and one replay.
export const program = (options: { readonly refreshToken: string; readonly apiUrl: string }) =>
  Effect.gen(function*() {
    const refresher = yield* Refresher.Refresher
    yield* refresher.setGrant("user-42", { accessToken: "", refreshToken: options.refreshToken, expiresIn: 0 })
    const api = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer("user-42"))
    const response = yield* api.get(options.apiUrl)
    return response.status
  }).pipe(
    // Every failure is a tagged error that says what to do.
    Effect.catchTags({
      InvalidGrant: (error) => Effect.as(Effect.logError(`re-authorize user-42: ${error.message}`), 0),
      InvalidClient: (error) => Effect.as(Effect.logError(`fix the client credentials: ${error.message}`), 0)
    })
  )

const main = Effect.gen(function*() {
  const tokenUrl = yield* Config.string("TOKEN_URL")
  const clientId = yield* Config.string("CLIENT_ID")
  const clientSecret = yield* Config.redacted("CLIENT_SECRET")
  const refreshToken = yield* Config.string("REFRESH_TOKEN")
  const apiUrl = yield* Config.string("API_URL")
  const status = yield* program({ refreshToken, apiUrl }).pipe(
    Effect.provide(RenewLive({ tokenUrl, clientId, clientSecret }))
  )
  yield* Effect.log(`API answered ${status}`)
})

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch(() => process.exit(1))
