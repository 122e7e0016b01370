/**
 * The shared stores against the in-memory one, in the same run, reported as ratios:
 *
 * 1. Store round trip: `get` + `withLock(get + compareAndSet(version + 1))` on one key, as the engine does per refresh
 *    (re-read under the lock, then write). Time-boxed; sequential (1 fiber) and concurrent (32 fibers, one key each).
 * 2. Full refresh: `refresher.refresh(key)` (forced, cooldown 0) against the loopback scripted endpoint answering at
 *    once with rotation on. On Redis/PostgreSQL a refresh also writes the refresh-in-flight intent (DU-4), so it is
 *    lease + 2 reads + 2 compare-and-sets + 1 HTTP exchange; on memory it is 1 read + 1 write + the exchange.
 * 3. Fleet herd: 4 child processes (test/fleet/child.ts) × 1,000 concurrent callers on one expired grant, the endpoint
 *    answering after 50 ms: wall time from "go" to the last caller served, and token requests made (must be 1).
 *    Baseline: 4,000 callers in ONE process on the in-memory store. 3 rounds, median reported.
 *
 * Needs Redis (REDIS_URL, default redis://127.0.0.1:6379) and PostgreSQL (DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test); a missing one is reported and skipped. Works in its own key prefix and
 * schema, removed at the end.
 *
 * Run: npx tsx bench/fleet.ts
 */
import { register } from "node:module"
import { spawnChild } from "../test/support/fleetChild.js"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"

// `@renew/*` imported by the store packages must resolve to the same sources this file loads (one copy of core).
register("../test/support/src-hooks.mjs", import.meta.url)

const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const CLIENT_ID = "renew-bench-client"
const CLIENT_SECRET = "bench-client-secret"
const ROUND_TRIP_SECONDS = 2
const REFRESH_SECONDS = 3
const CONCURRENT_FIBERS = 32
const HERD_CHILDREN = 4
const HERD_CALLERS = 1000
const HERD_ROUNDS = 3
const HERD_LATENCY_MS = 50

type StoreName = "memory" | "redis" | "postgres"

interface Figures {
  sequentialOps?: number
  concurrentOps?: number
  refreshesPerSecond?: number
  herdWallMs?: number
  herdRequests?: ReadonlyArray<number>
  skipped?: string
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const main = async () => {
  const { Effect, Layer, Logger, LogLevel, Option, Redacted } = await import("effect")
  const NodeHttpClient = await import("@effect/platform-node/NodeHttpClient")
  const { Refresher, Token, TokenEndpoint, TokenStore } = await import("../packages/core/src/index.js")
  const { RedisTokenStore } = await import("../packages/store-redis/src/index.js")
  const { PgTokenStore } = await import("../packages/store-postgres/src/index.js")
  type Store = import("../packages/core/src/index.js").TokenStore.TokenStore["Type"]

  const run = <A, E>(effect: import("effect").Effect.Effect<A, E, import("effect").Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(effect).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  const suffix = `${process.pid}_${Date.now().toString(36)}`
  const redisPrefix = `renew-bench:${suffix}:`
  const pgSchema = `renew_bench_${suffix}`

  const openers: Record<StoreName, import("effect").Effect.Effect<Store, unknown, import("effect").Scope.Scope>> = {
    memory: TokenStore.makeMemory,
    redis: RedisTokenStore.make({ url: Redacted.make(REDIS_URL), prefix: redisPrefix }),
    postgres: PgTokenStore.make({ url: Redacted.make(DATABASE_URL), schema: pgSchema, maxConnections: 8 })
  }

  const seedGrant = (refreshToken: string, expired: boolean) =>
    new Token.Grant({
      accessToken: Redacted.make("at_bench"),
      refreshToken: Redacted.make(refreshToken),
      tokenType: "Bearer",
      issuedAt: Date.now() - 120_000,
      expiresAt: expired ? Date.now() - 60_000 : Date.now() + 3_600_000,
      version: 0
    })

  /** get + withLock(get + CAS), for `seconds`, on `fibers` keys at once; returns round trips per second. */
  const roundTrips = (store: Store, fibers: number, seconds: number) =>
    Effect.gen(function*() {
      const keys = Array.from({ length: fibers }, (_, i) => `rt:${fibers}:${i}:${Date.now()}`)
      for (const key of keys) yield* store.compareAndSet(key, undefined, seedGrant("rt_bench", false))
      const one = (key: string) =>
        Effect.zipRight(
          store.get(key),
          store.withLock(
            key,
            () => Effect.flatMap(store.get(key), (grant) => {
              const current = Option.getOrThrow(grant)
              return store.compareAndSet(key, current.version, current)
            })
          )
        )
      // Warm-up: connections, JIT, scripts loaded.
      yield* Effect.forEach(keys, (key) => Effect.repeatN(one(key), 20), { concurrency: "unbounded", discard: true })
      let count = 0
      const deadline = performance.now() + seconds * 1000
      const started = performance.now()
      yield* Effect.forEach(
        keys,
        (key) =>
          Effect.whileLoop({
            while: () => performance.now() < deadline,
            body: () => one(key),
            step: () => void count++
          }),
        { concurrency: "unbounded", discard: true }
      )
      return count / ((performance.now() - started) / 1000)
    })

  /** Sequential forced refreshes through a Refresher for `seconds`; returns refreshes per second. */
  const refreshes = (store: Store, seconds: number) =>
    Effect.gen(function*() {
      const endpoint = yield* Effect.acquireRelease(
        Effect.promise(() => startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })),
        (endpoint) => Effect.promise(() => endpoint.close())
      )
      const layer = Refresher.layer({ forcedRefreshCooldown: 0 }).pipe(
        Layer.provide(TokenEndpoint.layer({ url: endpoint.url, clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET) })),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.succeed(TokenStore.TokenStore, store)),
        Layer.orDie
      )
      return yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const key = `refresh:${Date.now()}`
        yield* store.compareAndSet(key, undefined, seedGrant(endpoint.mintRefreshToken(), false))
        for (let i = 0; i < 30; i++) yield* refresher.refresh(key)
        let count = 0
        const started = performance.now()
        while (performance.now() - started < seconds * 1000) {
          yield* refresher.refresh(key)
          count++
        }
        return count / ((performance.now() - started) / 1000)
      }).pipe(Effect.provide(layer))
    })

  /** One herd round: children on a shared store, or (memory) all callers in this process. */
  const herdRound = (name: StoreName, store: Store) =>
    Effect.gen(function*() {
      const endpoint = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, latencyMs: HERD_LATENCY_MS })
        ),
        (endpoint) => Effect.promise(() => endpoint.close())
      )
      const key = `herd:${Date.now()}`
      yield* store.compareAndSet(key, undefined, seedGrant(endpoint.mintRefreshToken(), true))
      if (name === "memory") {
        const layer = Refresher.layer().pipe(
          Layer.provide(TokenEndpoint.layer({ url: endpoint.url, clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET) })),
          Layer.provide(NodeHttpClient.layerUndici),
          Layer.provide(Layer.succeed(TokenStore.TokenStore, store)),
          Layer.orDie
        )
        return yield* Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          const started = performance.now()
          yield* Effect.forEach(
            Array.from({ length: HERD_CHILDREN * HERD_CALLERS }),
            () => refresher.getAccessToken(key),
            { concurrency: "unbounded", discard: true }
          )
          return { wallMs: performance.now() - started, requests: endpoint.refreshRequests }
        }).pipe(Effect.provide(layer))
      }
      const children = Array.from({ length: HERD_CHILDREN }, () =>
        spawnChild({
          RENEW_STORE: name,
          RENEW_STORE_URL: name === "redis" ? REDIS_URL : DATABASE_URL,
          RENEW_NAMESPACE: name === "redis" ? redisPrefix : pgSchema,
          RENEW_MODE: "herd",
          RENEW_KEY: key,
          RENEW_CALLERS: String(HERD_CALLERS),
          RENEW_TOKEN_URL: endpoint.url,
          RENEW_CLIENT_ID: CLIENT_ID,
          RENEW_CLIENT_SECRET: CLIENT_SECRET
        }))
      yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.signal("SIGKILL"))))
      yield* Effect.promise(() => Promise.all(children.map((child) => child.waitFor("ready"))))
      const started = performance.now()
      for (const child of children) child.go()
      const results = yield* Effect.promise(() => Promise.all(children.map((child) => child.waitFor("result"))))
      const wallMs = performance.now() - started
      const served = results.reduce((sum, result) => sum + Number(result["served"]), 0)
      if (served !== HERD_CHILDREN * HERD_CALLERS) throw new Error(`herd on ${name}: only ${served} callers served`)
      return { wallMs, requests: endpoint.refreshRequests }
    })

  const figures: Record<StoreName, Figures> = { memory: {}, redis: {}, postgres: {} }
  const names: ReadonlyArray<StoreName> = ["memory", "redis", "postgres"]
  for (const name of names) {
    const opened = await run(Effect.either(Effect.flatMap(openers[name], () => Effect.void)))
    if (opened._tag === "Left") {
      figures[name].skipped = String((opened.left as { message?: string }).message ?? opened.left)
      console.log(`${name}: skipped (${figures[name].skipped})`)
      continue
    }
    process.stdout.write(`${name}: round trips ...`)
    figures[name].sequentialOps = await run(Effect.flatMap(openers[name], (store) => roundTrips(store, 1, ROUND_TRIP_SECONDS)))
    figures[name].concurrentOps = await run(
      Effect.flatMap(openers[name], (store) => roundTrips(store, CONCURRENT_FIBERS, ROUND_TRIP_SECONDS))
    )
    process.stdout.write(" refreshes ...")
    figures[name].refreshesPerSecond = await run(Effect.flatMap(openers[name], (store) => refreshes(store, REFRESH_SECONDS)))
    process.stdout.write(" herd ...")
    const rounds: Array<{ wallMs: number; requests: number }> = []
    for (let round = 0; round < HERD_ROUNDS; round++) {
      rounds.push(await run(Effect.flatMap(openers[name], (store) => herdRound(name, store))))
    }
    figures[name].herdWallMs = median(rounds.map((r) => r.wallMs))
    figures[name].herdRequests = rounds.map((r) => r.requests)
    console.log(" done")
  }

  // Clean up this run's keys and schema.
  await run(Effect.ignore(Effect.promise(async () => {
    const { Redis } = await import("ioredis")
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true })
    try {
      await client.connect()
      const keys = await client.keys(`${redisPrefix}*`)
      if (keys.length > 0) await client.del(...keys)
    } finally {
      client.disconnect()
    }
  })))
  if (figures.postgres.skipped === undefined) {
    const PgClient = await import("@effect/sql-pg/PgClient")
    const SqlClient = await import("@effect/sql/SqlClient")
    await run(Effect.ignore(Effect.gen(function*() {
      const context = yield* Layer.build(PgClient.layer({ url: Redacted.make(DATABASE_URL), maxConnections: 1 }))
      const sql = context.unsafeMap.get(SqlClient.SqlClient.key) as import("@effect/sql/SqlClient").SqlClient
      yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`)
    })))
  }

  const fmt = (value: number | undefined, digits = 0) => (value === undefined ? "-" : value.toFixed(digits))
  const ratio = (value: number | undefined, base: number | undefined) =>
    value === undefined || base === undefined ? "" : ` (${(value / base).toFixed(3)}×)`
  const base = figures.memory
  const cell = (name: StoreName, pick: (f: Figures) => number | undefined, digits = 0) =>
    figures[name].skipped !== undefined ? "skipped" : `${fmt(pick(figures[name]), digits)}${name === "memory" ? "" : ratio(pick(figures[name]), pick(base))}`
  const rows: Array<[string, string, string, string]> = [
    ["store round trip, 1 fiber (ops/s)", ...names.map((n) => cell(n, (f) => f.sequentialOps))] as [string, string, string, string],
    [`store round trip, ${CONCURRENT_FIBERS} fibers (ops/s)`, ...names.map((n) => cell(n, (f) => f.concurrentOps))] as [string, string, string, string],
    ["full refresh, 1 fiber (refreshes/s)", ...names.map((n) => cell(n, (f) => f.refreshesPerSecond))] as [string, string, string, string],
    [
      `herd ${HERD_CHILDREN}×${HERD_CALLERS} callers, ${HERD_LATENCY_MS} ms endpoint (wall ms, median of ${HERD_ROUNDS})`,
      ...names.map((n) => cell(n, (f) => f.herdWallMs))
    ] as [string, string, string, string],
    ["herd token requests per round (must be 1)", ...names.map((n) => figures[n].herdRequests?.join("/") ?? "-")] as [string, string, string, string]
  ]
  const header: [string, string, string, string] = ["benchmark", "memory (1 process)", "redis", "postgres"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  console.log()
  console.log(`fleet bench (${new Date().toISOString().slice(0, 10)}, Node ${process.version}); ratios are store / memory`)
  console.log(line(header))
  console.log(line(widths.map((w) => "-".repeat(w))))
  for (const row of rows) console.log(line(row))
  const badHerd = names.some((n) => figures[n].herdRequests?.some((r) => r !== 1))
  if (badHerd) {
    console.error("a herd round made more than one token request")
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  console.error("benchmark crashed:", error)
  process.exitCode = 1
})
