// Defects found in a code review of the engine; each test failed before its fix.
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import { FailureRateMonitor, Refresher, RefreshError, Token, TokenEndpoint, TokenStore } from "@renew/core"
import { Effect, Either, Exit, Layer, Option, Redacted, Scope } from "effect"

const KEY = "user-1"

const tokenResponse = (at: string, rt?: string) =>
  new Token.TokenResponse({
    access_token: Redacted.make(at),
    token_type: "Bearer",
    expires_in: 3600,
    ...(rt !== undefined ? { refresh_token: Redacted.make(rt) } : {})
  })

const fakeEndpoint = (
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

const seedExpired = (rt = "rt_1") =>
  Effect.flatMap(Refresher.Refresher, (r) =>
    r.setGrant(KEY, { accessToken: "at_0", refreshToken: rt, expiresIn: 0 }))

describe("found in review", () => {
  // F1: introspection runs inside the uninterruptible persist region; its Effect.timeout cannot fire there.
  it.live("a hanging introspection endpoint after a 2xx does not hang the refresh", () =>
    Effect.gen(function*() {
      const http = HttpClient.make((request) =>
        request.url.endsWith("/introspect")
          ? Effect.never
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
      const result = yield* Effect.gen(function*() {
        // Seed directly in the store so setGrant's own introspection is not involved.
        const store = yield* TokenStore.TokenStore
        yield* store.compareAndSet(KEY, undefined, new Token.Grant({
          accessToken: Redacted.make("at_0"), refreshToken: Redacted.make("rt_1"), refreshTokenExpiresAt: 1e15,
          tokenType: "Bearer", issuedAt: 0, expiresAt: 0, version: 0
        })).pipe(Effect.orDie)
        const refresher = yield* Refresher.Refresher
        return yield* refresher.getAccessToken(KEY).pipe(Effect.timeout("3 seconds"), Effect.option)
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds"), Effect.option)
      // Expected: the 200 ms per-introspection timeout fires and the new token is served.
      assert.isTrue(Option.isSome(result) && Option.isSome(result.value), "refresh (or layer shutdown) hung")
    }), 15_000)

  // F2: a flight forked into a closed scope is interrupted before its onExit is installed; its Deferred never completes.
  it.live("a refresh requested after the engine's scope closed still completes", () =>
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
      const exit = yield* refresher.getAccessToken(KEY).pipe(Effect.timeout("1 second"), Effect.exit)
      // Expected: it ends (fails / is interrupted); it must not hang until our 1 s guard fires.
      assert.isFalse(
        Exit.isFailure(exit) && exit.cause._tag === "Fail" && (exit.cause.error as any)?._tag === "TimeoutException",
        "getAccessToken hung"
      )
    }))

  // F3: the failure-rate hook runs inline in the flight's (uninterruptible) onExit, before the Deferred completes.
  it.live("a failing onClear hook does not change the refresh's outcome", () =>
    Effect.gen(function*() {
      let calls = 0
      const layer = Refresher.layer({ retry: { maxAttempts: 1 }, staleRetryInterval: 0 }).pipe(
        Layer.provide(fakeEndpoint(() =>
          ++calls === 1
            ? Effect.fail(new RefreshError.ServerError({ status: 503 }))
            : Effect.succeed(tokenResponse(`at_${calls}`, `rt_${calls + 1}`))
        )),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.provide(FailureRateMonitor.layer({
          minVolume: 1,
          threshold: 0.6,
          onClear: () => Effect.die(new Error("webhook down"))
        })),
        Layer.orDie
      )
      const exit = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        yield* Effect.flip(refresher.getAccessToken(KEY)) // ServerError: alert raised
        return yield* Effect.exit(refresher.getAccessToken(KEY)) // succeeds at the server: alert cleared
      }).pipe(Effect.provide(layer))
      assert.isTrue(Exit.isSuccess(exit), `expected the refreshed token, got ${Exit.isFailure(exit) ? exit.cause : ""}`)
    }))

  it.live("a hanging onAlert hook does not hang the callers", () =>
    Effect.gen(function*() {
      const layer = Refresher.layer({ retry: { maxAttempts: 1 } }).pipe(
        Layer.provide(fakeEndpoint(() => Effect.fail(new RefreshError.ServerError({ status: 503 })))),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.provide(FailureRateMonitor.layer({ minVolume: 1, onAlert: () => Effect.never })),
        Layer.orDie
      )
      const result = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        return yield* refresher.getAccessToken(KEY).pipe(Effect.either, Effect.timeout("2 seconds"), Effect.option)
      }).pipe(Effect.provide(layer), Effect.timeout("4 seconds"), Effect.option)
      assert.isTrue(Option.isSome(result) && Option.isSome(result.value), "caller (or shutdown) hung on the alert hook")
    }), 10_000)

  // F4: a StoreError while persisting a 2xx clears the intent: the rotated refresh token is lost silently.
  it.live("a failed persist after a 2xx must keep the in-flight intent (DU-4)", () =>
    Effect.gen(function*() {
      const server = { live: new Set(["rt_1"]), n: 1 }
      const endpoint = fakeEndpoint(({ refreshToken }) =>
        Effect.suspend(() => {
          const rt = Redacted.value(refreshToken)
          if (!server.live.delete(rt)) return Effect.fail(new RefreshError.InvalidGrant({ status: 400, oauthError: "invalid_grant" }))
          const next = `rt_${++server.n}`
          server.live.add(next)
          return Effect.succeed(tokenResponse(`at_${server.n}`, next))
        })
      )
      let failed = false
      const storeLayer = Layer.effect(TokenStore.TokenStore, Effect.gen(function*() {
        const inner = yield* TokenStore.makeMemory
        return TokenStore.TokenStore.of({
          ...inner,
          durability: "durable",
          compareAndSet: (key, v, grant) =>
            Effect.suspend(() => {
              if (grant.refreshToken !== undefined && Redacted.value(grant.refreshToken) === "rt_2") {
                failed = true // the store keeps failing (retries included) on the write that carries the rotated token
                return Effect.fail(new RefreshError.StoreError({ operation: "compareAndSet", detail: "busy" }))
              }
              return inner.compareAndSet(key, v, grant)
            })
        })
      }))
      const layer = Refresher.layer().pipe(Layer.provide(endpoint), Layer.provideMerge(storeLayer), Layer.orDie)
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const store = yield* TokenStore.TokenStore
        yield* seedExpired()
        const first = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(first._tag, "StoreError")
        const stored = Option.getOrThrow(yield* store.get(KEY))
        assert.isTrue(failed)
        assert.isDefined(stored.refreshStartedAt, "intent was cleared although the server rotated rt_1 -> rt_2")
      }).pipe(Effect.provide(layer))
    }))

  // F5: Retry-After is not honoured across flights.
  it.live("a 429's Retry-After is honoured across flights", () =>
    Effect.gen(function*() {
      let requests = 0
      const layer = Refresher.layer().pipe(
        Layer.provide(fakeEndpoint(() =>
          Effect.suspend(() => (requests++, Effect.fail(new RefreshError.RateLimited({ status: 429, retryAfterMillis: 120_000 }))))
        )),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        for (let i = 0; i < 5; i++) yield* Effect.either(refresher.getAccessToken(KEY))
      }).pipe(Effect.provide(layer))
      assert.strictEqual(requests, 1, "the server asked for 120 s of quiet")
    }))

  // F6: token members the elider does not know by name are quoted in MalformedResponse.
  it.effect("a 2xx with camelCase token members never quotes the new access token", () =>
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

  // F7: setGrant (re-authorization) during a refresh makes every waiter fail with StaleWrite.
  it.live("waiters get the grant stored meanwhile instead of StaleWrite", () =>
    Effect.gen(function*() {
      const layer = Refresher.layer().pipe(
        Layer.provide(fakeEndpoint(() => Effect.succeed(tokenResponse("at_refreshed", "rt_2")).pipe(Effect.delay("200 millis")))),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      const result = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        const waiter = yield* Effect.fork(Effect.either(refresher.getAccessToken(KEY)))
        yield* Effect.sleep("50 millis")
        yield* refresher.setGrant(KEY, { accessToken: "at_reauthorized", refreshToken: "rt_new", expiresIn: 3600 })
        return yield* waiter
      }).pipe(Effect.provide(layer))
      assert.isTrue(Either.isRight(result), `got ${Either.isLeft(result) ? result.left._tag : ""}`)
    }))
})
