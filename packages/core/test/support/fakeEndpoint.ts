/**
 * An in-process TokenEndpoint for engine tests that need no HTTP at all: each refresh answers what the test says.
 */
import { Refresher, Token, TokenEndpoint } from "@renew/core"
import { Effect, Layer, Redacted } from "effect"

export const KEY = "user-1"

/** A token response carrying `accessToken` and, if given, a new `refreshToken`. */
export const tokenResponse = (accessToken: string, refreshToken?: string) =>
  new Token.TokenResponse({
    access_token: Redacted.make(accessToken),
    token_type: "Bearer",
    expires_in: 3600,
    ...(refreshToken !== undefined ? { refresh_token: Redacted.make(refreshToken) } : {})
  })

/** A TokenEndpoint whose refresh (and introspection, none by default) are the given functions. */
export const fakeEndpoint = (
  refresh: TokenEndpoint.TokenEndpoint["Type"]["refresh"],
  introspect: TokenEndpoint.TokenEndpoint["Type"]["introspect"] = () => Effect.succeedNone
) =>
  Layer.succeed(
    TokenEndpoint.TokenEndpoint,
    TokenEndpoint.TokenEndpoint.of({
      url: "https://as.example/token",
      host: "as.example",
      clientId: "client",
      authMethod: "none",
      timeoutMillis: 1000,
      refresh,
      introspect
    })
  )

/** Seeds KEY with an expired access token and the refresh token `refreshToken`. */
export const seedExpired = (refreshToken = "rt_1") =>
  Effect.flatMap(Refresher.Refresher, (refresher) =>
    refresher.setGrant(KEY, { accessToken: "at_0", refreshToken, expiresIn: 0 }))
