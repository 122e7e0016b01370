/**
 * Renew with its traces in Jaeger: one refresh, exported over OTLP/HTTP, with trace ids on the log lines.
 *
 *   docker compose up -d jaeger     # see ../README.md
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_SERVICE_NAME=renew-example \
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... REFRESH_TOKEN=... \
 *   npx tsx packages/opentelemetry/examples/jaeger.ts
 *
 * Then open http://localhost:16686, pick the service `renew-example`, and find the `renew.refresh` trace.
 */
import { FetchHttpClient } from "@effect/platform"
import { Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import { Otel } from "@renew/opentelemetry"
import { Config, Effect, Layer } from "effect"

// The engine, configured from the environment.
export const RenewLive = Layer.unwrapEffect(Effect.gen(function*() {
  const url = yield* Config.string("TOKEN_URL")
  const clientId = yield* Config.string("CLIENT_ID")
  const clientSecret = yield* Config.redacted("CLIENT_SECRET")
  return Refresher.layer({ retry: { maxAttempts: 4 } }).pipe(
    Layer.provide(TokenEndpoint.layer({ url, clientId, clientSecret })),
    Layer.provideMerge(TokenStore.layerMemory),
    Layer.provide(FetchHttpClient.layer)
  )
}))

// Seed a grant with its refresh token only: the first getAccessToken refreshes it (one `renew.refresh` trace).
export const program = Effect.gen(function*() {
  const refresher = yield* Refresher.Refresher
  yield* refresher.setGrant("user-42", { refreshToken: yield* Config.redacted("REFRESH_TOKEN") })
  yield* refresher.getAccessToken("user-42")
  yield* Effect.log("user-42 has a fresh access token")
})

export const main = program.pipe(
  Effect.provide(RenewLive),
  // Log lines get trace_id= and span_id= of the span they were written in.
  Effect.provide(Otel.logger),
  // Outermost, so it is closed last: closing it flushes every span (and metric) recorded above.
  // Without OTEL_EXPORTER_OTLP_ENDPOINT it is Layer.empty and the program runs the same, exporting nothing.
  Effect.provide(Otel.layerConfig)
)

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(main).catch(() => process.exit(1))
