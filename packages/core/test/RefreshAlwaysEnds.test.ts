/**
 * A refresh always ends: neither a hanging side call after the token endpoint answered nor a request made after the
 * engine closed can leave a caller waiting for ever. On the TestClock: a timeout fires when the test moves the clock,
 * never because the machine was slow; a hang is caught by a generous real-time bound.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import { Refresher, Token, TokenEndpoint, TokenStore } from "@renew/core"
import { Effect, Exit, Layer, Redacted, Scope } from "effect"
import { fakeEndpoint, KEY, seedExpired, tokenResponse } from "./support/fakeEndpoint.js"
import { joinAdvancingShortSleeps, joinWithin } from "./support/time.js"

describe("a refresh always ends", () => {
  // Introspection runs inside the uninterruptible region that stores the answer: its timeout must still end it.
  it.scoped("a hanging introspection endpoint after a 2xx does not hang the refresh", () =>
    Effect.gen(function*() {
      let introspections = 0
      const http = HttpClient.make((request) =>
        request.url.endsWith("/introspect")
          ? Effect.zipRight(Effect.sync(() => introspections++), Effect.never)
          : Effect.succeed(HttpClientResponse.fromWeb(
            request,
            new Response(JSON.stringify({ access_token: "at_new", token_type: "Bearer", expires_in: 3600, refresh_token: "rt_new" }), {
              status: 200,
              headers: { "content-type": "application/json" }
            })
          ))
      )
      const layer = Refresher.layer().pipe(
        Layer.provide(TokenEndpoint.layer({
          url: "https://as.example/token",
          introspectionUrl: "https://as.example/introspect",
          clientId: "client",
          timeout: "200 millis"
        })),
        Layer.provide(Layer.succeed(HttpClient.HttpClient, http)),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      const run = yield* Effect.gen(function*() {
        // Seed directly in the store so setGrant's own introspection is not involved.
        const store = yield* TokenStore.TokenStore
        yield* store.compareAndSet(KEY, undefined, new Token.Grant({
          accessToken: Redacted.make("at_0"), refreshToken: Redacted.make("rt_1"), refreshTokenExpiresAt: 1e15,
          tokenType: "Bearer", issuedAt: 0, expiresAt: 0, version: 0
        })).pipe(Effect.orDie)
        const refresher = yield* Refresher.Refresher
        return yield* refresher.getAccessToken(KEY)
        // A daemon: should the refresh hang where nothing can interrupt it, the test still ends, with joinWithin's message.
      }).pipe(Effect.provide(layer), Effect.forkDaemon)
      // The clock moves only to the 200 ms per-call timeouts; then the new token is served and the layer closes.
      const token = yield* joinAdvancingShortSleeps(run, 200, "the refresh (or the layer's shutdown) after a hanging introspection")
      assert.strictEqual(Redacted.value(token), "at_new")
      assert.isAtLeast(introspections, 1, "the introspection endpoint was asked")
    }))

  // A flight forked into a closed scope is interrupted before its completion is installed: it must complete anyway.
  it.scoped("a refresh requested after the engine's scope closed still completes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const layer = Refresher.layer().pipe(
        Layer.provide(fakeEndpoint(() => Effect.succeed(tokenResponse("at_1", "rt_2")))),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      const ctx = yield* Layer.buildWithScope(layer, scope)
      const refresher = Effect.runSync(Effect.provide(Refresher.Refresher, ctx))
      yield* Effect.provide(seedExpired(), ctx)
      yield* Scope.close(scope, Exit.void)
      const caller = yield* Effect.fork(Effect.exit(refresher.getAccessToken(KEY)))
      const exit = yield* joinWithin(caller, "getAccessToken after the engine's scope closed")
      assert.isTrue(Exit.isFailure(exit), "a closed engine refreshes nothing")
      assert.strictEqual(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "", "EngineClosed")
    }))
})
