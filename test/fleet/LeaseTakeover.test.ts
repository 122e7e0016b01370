/**
 * Lease takeover across REAL processes (test/fleet/child.ts) on Redis and PostgreSQL: a holder frozen with SIGSTOP is
 * fenced (its lease is taken over, its late write is StaleWrite, its late release leaves the new lease), and a holder
 * SIGKILLed mid-refresh is taken over within TTL + 2 retry intervals and the refresh completes (LK-1, LK-2, FN-1,
 * DU-4). The in-process lease and fencing cases are @renew/store-testkit's LeaseSuite, run by each store's tests.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, describe, it } from "@effect/vitest"
import { PgTokenStore } from "@renew/store-postgres"
import { RedisTokenStore } from "@renew/store-redis"
import { Services } from "@renew/store-testkit"
import { Context, Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { Redis } from "ioredis"
import * as Scenarios from "../support/leaseScenarios.js"

const redis = await Services.redis()
const postgres = await Services.postgres()
Services.skipNotice(redis, postgres)

const NAMESPACE_REDIS = `renew-takeover:${process.pid}:${Date.now()}:`
const NAMESPACE_PG = `renew_takeover_${process.pid}_${Date.now().toString(36)}`
let counter = 0
const key = (label: string) => `${label}:${counter++}`

const quiet = <A, E, R>(self: Effect.Effect<A, E, R>) => Logger.withMinimumLogLevel(self, LogLevel.Error)
// The stores' waiters sleep at most a tenth of the TTL, between 5 and 200 ms (@renew/store-kit StoreOptions).
const retryIntervalMillis = (ttl: number) => Math.max(5, Math.min(200, Math.floor(ttl / 10)))

const pgAdmin = Effect.map(
  Layer.build(PgClient.layer({ url: Redacted.make(Services.DATABASE_URL), maxConnections: 1 })),
  (context) => Context.get(context, SqlClient.SqlClient)
)

// Migrate once with the default timeouts: the scenarios' short leases cap queryTimeout at a third of the TTL.
if (postgres.available) {
  await Effect.runPromise(
    Effect.scoped(quiet(PgTokenStore.make({ url: Redacted.make(Services.DATABASE_URL), schema: NAMESPACE_PG, maxConnections: 1 })))
  )
}

const backends: ReadonlyArray<Scenarios.LeaseBackend & { readonly available: boolean }> = [
  {
    kind: "redis",
    available: redis.available,
    url: Services.REDIS_URL,
    namespace: NAMESPACE_REDIS,
    open: (ttl, wait) =>
      quiet(RedisTokenStore.make({
        url: Redacted.make(Services.REDIS_URL),
        prefix: NAMESPACE_REDIS,
        leaseTtl: ttl,
        ...(wait !== undefined ? { lockWaitTimeout: wait } : {})
      })),
    retryIntervalMillis
  },
  {
    kind: "postgres",
    available: postgres.available,
    url: Services.DATABASE_URL,
    namespace: NAMESPACE_PG,
    open: (ttl, wait) =>
      quiet(PgTokenStore.make({
        url: Redacted.make(Services.DATABASE_URL),
        schema: NAMESPACE_PG,
        maxConnections: 3,
        leaseTtl: ttl,
        ...(wait !== undefined ? { lockWaitTimeout: wait } : {})
      })),
    retryIntervalMillis
  }
]

for (const backend of backends) {
  describe.runIf(backend.available)(`lease takeover across processes: ${backend.kind}`, () => {
    it.scopedLive("a paused holder's lease is taken over; its late write is StaleWrite and its late release leaves the new lease intact (LK-1, FN-1, LK-3)", () =>
      Scenarios.pausedHolder(backend, key("paused")), { timeout: 180_000 })

    it.scopedLive("a holder SIGKILLed mid-refresh is taken over within TTL + 2 retry intervals and the refresh completes (LK-2, DU-4)", () =>
      Effect.tap(
        Scenarios.killedHolder(backend, key("killed")),
        (ms) => Effect.sync(() => console.log(`[LK-2] ${backend.kind} takeover after ${ms} ms`))
      ), { timeout: 180_000 })
  })
}

afterAll(async () => {
  if (redis.available) {
    const client = new Redis(Services.REDIS_URL)
    const keys = await client.keys(`${NAMESPACE_REDIS}*`)
    if (keys.length > 0) await client.del(...keys)
    client.disconnect()
  }
  if (postgres.available) {
    await Effect.runPromise(Effect.scoped(Effect.flatMap(pgAdmin, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS ${NAMESPACE_PG} CASCADE`))))
  }
})
