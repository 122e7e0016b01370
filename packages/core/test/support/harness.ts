/**
 * Test wiring for the engine: a scripted loopback token endpoint and a Refresher over a real HTTP client.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import {
  type ScriptedTokenEndpoint,
  type ScriptedTokenEndpointOptions,
  startScriptedTokenEndpoint
} from "@renew/scripted-endpoint-fixture"
import { Effect, Layer, Redacted } from "effect"

export const CLIENT_ID = "renew-test-client"
export const CLIENT_SECRET = "CANARY-client-secret-7f3a9c2e"

/** A scripted token endpoint that lives as long as the test's scope. */
export const scriptedEndpoint = (options?: ScriptedTokenEndpointOptions) =>
  Effect.acquireRelease(
    Effect.promise(() => startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, ...options })),
    (endpoint) => Effect.promise(() => endpoint.close())
  )

/**
 * Refresher + TokenStore (memory unless given) talking to `endpoint` over undici. `http` wraps the HTTP client, e.g. to
 * hold the server's answers until the test has done something while a request is on its way.
 */
export const engine = (
  endpoint: ScriptedTokenEndpoint,
  options: {
    readonly refresher?: Refresher.RefresherOptions
    readonly endpoint?: Partial<TokenEndpoint.TokenEndpointOptions>
    readonly store?: Layer.Layer<TokenStore.TokenStore>
    readonly http?: (client: HttpClient.HttpClient) => HttpClient.HttpClient
  } = {}
) =>
  Refresher.layer(options.refresher).pipe(
    Layer.provide(
      TokenEndpoint.layer({
        url: endpoint.url,
        clientId: CLIENT_ID,
        clientSecret: Redacted.make(CLIENT_SECRET),
        ...options.endpoint
      })
    ),
    Layer.provide(
      options.http === undefined
        ? NodeHttpClient.layerUndici
        : Layer.effect(HttpClient.HttpClient, Effect.map(HttpClient.HttpClient, options.http)).pipe(
          Layer.provide(NodeHttpClient.layerUndici)
        )
    ),
    Layer.provideMerge(options.store ?? TokenStore.layerMemory),
    Layer.orDie
  )

/** Seeds `key` with a grant whose access token is already expired and whose refresh token is live. */
export const seedExpired = (endpoint: ScriptedTokenEndpoint, key: string) =>
  Effect.flatMap(Refresher.Refresher, (refresher) =>
    refresher.setGrant(key, {
      accessToken: "at_initial_expired",
      refreshToken: endpoint.mintRefreshToken(),
      expiresIn: 0
    }))
