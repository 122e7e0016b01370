/**
 * Engines against a real authorization server (oidc-provider, from `@renew/auth-server-fixture`) for the conformance
 * tests: a server that lives as long as the test's scope, and an engine for one of its clients over a given store.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { type AuthServer, type AuthServerOptions, startAuthServer } from "@renew/auth-server-fixture"
import { Refresher, TokenEndpoint, TokenStore } from "@renew/core"
import { Context, Effect, Layer, Redacted } from "effect"

/** A real authorization server that lives as long as the test's scope. */
export const authServer = (options: AuthServerOptions) =>
  Effect.acquireRelease(Effect.promise(() => startAuthServer(options)), (server) => Effect.promise(() => server.close()))

/** A Refresher (forced refreshes never held back) for `client` of `server`, over `store`, with introspection. */
export const engineFor = (server: AuthServer, client: "basic" | "post", store: TokenStore.TokenStore["Type"]) =>
  Effect.map(
    Layer.build(Refresher.layer({ forcedRefreshCooldown: 0 }).pipe(
      Layer.provide(TokenEndpoint.layer({
        url: server.tokenEndpoint,
        clientId: server.clients[client].clientId,
        clientSecret: Redacted.make(server.clients[client].clientSecret),
        authMethod: server.clients[client].authMethod,
        introspectionUrl: server.introspectionEndpoint
      })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provide(Layer.succeed(TokenStore.TokenStore, store)),
      Layer.orDie
    )),
    (context) => Context.get(context, Refresher.Refresher)
  )
