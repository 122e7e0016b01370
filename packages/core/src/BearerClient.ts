/**
 * HttpClient middleware for calling a resource server with the grant's access token: it adds
 * `Authorization: Bearer …`, and when the resource server answers 401 it asks the Refresher to refresh (once, and only
 * if nobody did already) and replays the request once. A second 401 reaches the caller as an ordinary response.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { RefreshError } from "./RefreshError.js"
import { Refresher } from "./Refresher.js"

const bearerOf = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const header = response.request.headers["authorization"]
  return header !== undefined && header.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined
}

/**
 * Authenticates every request of `client` as the grant `key`.
 *
 * Request bodies must be replayable (not one-shot streams) for the 401 replay to resend them.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { BearerClient } from "@renew/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const api = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer("user-42"))
 *   return yield* api.get("https://api.example.com/me")
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withBearer = (key: string) =>
<E, R>(
  client: HttpClient.HttpClient.With<E, R>
): HttpClient.HttpClient.With<E | RefreshError, R | Refresher> =>
  client.pipe(
    HttpClient.mapRequestEffect((request) =>
      Effect.flatMap(Refresher, (refresher) =>
        Effect.map(refresher.getAccessToken(key), (token) => HttpClientRequest.bearerToken(request, token)))
    ),
    // `send` includes the request preparation above, so running it again picks up the refreshed token.
    HttpClient.transformResponse((send) =>
      Effect.flatMap(send, (response) => {
        if (response.status !== 401) return Effect.succeed(response)
        const rejected = bearerOf(response)
        if (rejected === undefined) return Effect.succeed(response)
        return Effect.flatMap(Refresher, (refresher) =>
          Effect.zipRight(refresher.invalidate(key, Redacted.make(rejected)), send))
      })
    )
  )
