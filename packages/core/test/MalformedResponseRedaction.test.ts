/**
 * A 2xx that is not a valid token response is reported as MalformedResponse quoting the server's answer: whatever the
 * members carrying a token are called, the token itself is never in the quote.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import { TokenEndpoint } from "@renew/core"
import { Effect, Redacted } from "effect"

describe("a MalformedResponse never quotes a token the server sent", () => {
  it.effect("a 2xx with camelCase, upper-case or nested token members never quotes the new access token", () =>
    Effect.gen(function*() {
      const token = "0123456789abcdef0123456789abcdef" // 32 hex chars: below the old 40-char opaque-run rule
      for (const body of [
        `{"accessToken":"${token}","tokenType":"Bearer","expiresIn":3600}`,
        `{"ACCESS_TOKEN":"${token}","token_type":"Bearer"}`,
        `{"data":{"session_token":"${token}"}}`
      ]) {
        // Through the public endpoint, with an HTTP client that answers `body`.
        const endpoint = yield* TokenEndpoint.make({ url: "https://auth.example.com/token", clientId: "c" }).pipe(
          Effect.provideService(
            HttpClient.HttpClient,
            HttpClient.make((request) =>
              Effect.succeed(HttpClientResponse.fromWeb(request, new Response(body, { status: 200 })))
            )
          )
        )
        const error = yield* Effect.flip(endpoint.refresh({ refreshToken: Redacted.make("rt_old_value_123456") }))
        assert.strictEqual(error._tag, "MalformedResponse", body)
        assert.notInclude(error.message, token, `leaked via ${body}`)
      }
    }))
})
