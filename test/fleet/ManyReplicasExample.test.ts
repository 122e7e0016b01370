/**
 * examples/many-replicas.ts (the example of docs/running-many-replicas.md), run for real: two replicas, each with its
 * own engine and its own Redis connections built from the same environment, ask for one expired grant at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Token, TokenStore } from "@renew/core"
import { ConfigProvider, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { Redis } from "ioredis"
import { program, RenewLive } from "../../examples/many-replicas.js"
import { Engine, Services } from "@renew/store-testkit"

const { CLIENT_ID, CLIENT_SECRET, scriptedEndpoint } = Engine

const redis = await Services.redis()
Services.skipNotice(redis)

describe.runIf(redis.available)("examples/many-replicas.ts", () => {
  it.scopedLive("two replicas, one expired grant: one token request, both served", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 50 })
      const prefix = `renew-example:${process.pid}:${Date.now()}:`
      const env = ConfigProvider.fromMap(new Map([
        ["REDIS_URL", Services.REDIS_URL],
        ["RENEW_REDIS_PREFIX", prefix],
        ["TOKEN_URL", endpoint.url],
        ["CLIENT_ID", CLIENT_ID],
        ["CLIENT_SECRET", CLIENT_SECRET],
        ["GRANT_KEY", "user-42"]
      ]))
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          const client = new Redis(Services.REDIS_URL)
          const keys = await client.keys(`${prefix}*`)
          if (keys.length > 0) await client.del(...keys)
          client.disconnect()
        })
      )
      const replica = RenewLive.pipe(
        Layer.provide(Layer.setConfigProvider(env)),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Error)),
        Layer.orDie
      )
      // Seed the grant (as the authorization-code callback would) through one replica's store.
      yield* Effect.flatMap(TokenStore.TokenStore, (store) =>
        store.compareAndSet("user-42", undefined, new Token.Grant({
          accessToken: Redacted.make("at_expired"),
          refreshToken: Redacted.make(endpoint.mintRefreshToken()),
          tokenType: "Bearer",
          issuedAt: Date.now() - 7_200_000,
          expiresAt: Date.now() - 3_600_000,
          version: 0
        }))).pipe(Effect.provide(replica))
      const lengths = yield* Effect.all([
        program.pipe(Effect.provide(replica), Effect.withConfigProvider(env)),
        program.pipe(Effect.provide(replica), Effect.withConfigProvider(env))
      ], { concurrency: "unbounded" })
      assert.deepStrictEqual(lengths, [endpoint.lastIssued()!.accessToken.length, endpoint.lastIssued()!.accessToken.length])
      assert.strictEqual(endpoint.refreshRequests, 1)
    }))
})
