/**
 * Persisting a refresh's answer: a write that fails keeps the refresh-in-flight intent (the rotated refresh token may be
 * lost, and the next holder must know), and a grant stored while the refresh ran wins over the refresh's own answer.
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenStore } from "@renew/core"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { fakeEndpoint, KEY, seedExpired, tokenResponse } from "./support/fakeEndpoint.js"
import { eventually, joinAdvancingShortSleeps } from "./support/time.js"

describe("persisting a refresh's answer", () => {
  it.live("a failed persist after a 2xx keeps the in-flight intent (DU-4)", () =>
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

  // setGrant (a re-authorization) while a refresh is on its way: its waiters must not fail with StaleWrite.
  it.scoped("waiters get the grant stored meanwhile instead of StaleWrite", () =>
    Effect.gen(function*() {
      let requests = 0
      const layer = Refresher.layer().pipe(
        Layer.provide(fakeEndpoint(() =>
          Effect.sync(() => requests++).pipe(
            Effect.zipRight(Effect.sleep("200 millis")),
            Effect.as(tokenResponse("at_refreshed", "rt_2"))
          )
        )),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      const result = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        const waiter = yield* Effect.fork(Effect.either(refresher.getAccessToken(KEY)))
        // The answer is 200 ms of TestClock away: the grant is stored before it, however slow the machine.
        yield* eventually("the refresh reached the token endpoint", () => requests === 1)
        yield* refresher.setGrant(KEY, { accessToken: "at_reauthorized", refreshToken: "rt_new", expiresIn: 3600 })
        return yield* joinAdvancingShortSleeps(waiter, 200, "the waiter")
      }).pipe(Effect.provide(layer))
      assert.isTrue(Either.isRight(result), `got ${Either.isLeft(result) ? result.left._tag : ""}`)
      assert.strictEqual(Either.isRight(result) ? Redacted.value(result.right) : "", "at_reauthorized")
    }))
})
