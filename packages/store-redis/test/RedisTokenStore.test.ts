/**
 * RedisTokenStore against real Redis: the shared conformance, lease/fencing and encryption suites on the machine's
 * Redis (REDIS_URL), durability detection on private redis-server instances (AOF off / appendfsync always /
 * everysec), and faults (Redis killed mid-run and restarted). Lease takeover across real processes (SIGSTOP /
 * SIGKILL) is in test/fleet/LeaseTakeover.test.ts.
 *
 * Under CI=true an unreachable Redis or a missing redis-server binary fails the file; otherwise the tests are skipped
 * with a message saying how to enable them (@renew/store-testkit/Services).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Refresher, Token, TokenStore } from "@renew/core"
import { RedisTokenStore } from "@renew/store-redis"
import { Engine, LeaseSuite, SchedulerSuite, SchedulingSuite, SealingSuite, Services, TokenStoreSuite } from "@renew/store-testkit"
import { Effect, Layer, Logger, LogLevel, Option, Redacted, Schedule, TestClock, TestServices } from "effect"
import { Redis } from "ioredis"

const { engine, scriptedEndpoint, seedExpired } = Engine

const redis = await Services.redis()
const binary = redis.available ? Services.redisServerBinary() : redis
Services.skipNotice(redis, binary)

/** Every key of this run starts with it; deleted at the end. */
const RUN = `renew-test:${process.pid}:${Date.now()}:`
let keys = 0
const key = (label: string) => `${label}:${keys++}`

const quiet = <A, E, R>(self: Effect.Effect<A, E, R>) => Logger.withMinimumLogLevel(self, LogLevel.Error)

const open = (options: Partial<RedisTokenStore.RedisTokenStoreOptions> = {}) =>
  quiet(RedisTokenStore.make({ url: Redacted.make(Services.REDIS_URL), prefix: RUN, ...options }))

/** Collects log lines written while `self` runs. */
const capturingLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) =>
      void lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    )
    return Effect.map(self.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger))), (a) => [a, lines] as const)
  })

const grant = (accessToken: string, overrides: Partial<ConstructorParameters<typeof Token.Grant>[0]> = {}) =>
  new Token.Grant({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make("rt_redis_secret_value"),
    tokenType: "Bearer",
    issuedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    version: 0,
    ...overrides
  })

/** A raw client for looking at what the store wrote. */
const rawClient = (url = Services.REDIS_URL) =>
  Effect.acquireRelease(Effect.sync(() => new Redis(url, { maxRetriesPerRequest: 1 })), (client) =>
    Effect.sync(() => client.disconnect()))

/**
 * Retries while Redis is coming back (the client reconnects with backoff, at most a second apart), for up to 20 s:
 * generous, a loaded machine reconnects slowly.
 */
const untilBack = { times: 400, schedule: Schedule.spaced("50 millis") }

/** A private redis-server, SIGKILLed at the end of the test. */
const privateServer = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(() => Services.startRedisServer({ args })),
    (server) => Effect.promise(() => server.kill())
  )

if (redis.available) {
  TokenStoreSuite.suite("redis", {
    open: open({ leaseTtl: "30 seconds" }),
    durability: "best-effort",
    lease: { ttlMillis: 30_000, renewEveryMillis: 10_000, waitMillis: 60_000 }
  })

  LeaseSuite.suite("redis", {
    open: ({ lockWaitMillis, ttlMillis }) =>
      open({ leaseTtl: ttlMillis, ...(lockWaitMillis !== undefined ? { lockWaitTimeout: lockWaitMillis } : {}) }),
    // An expired Redis key is gone: the lease lapses by disappearing.
    expireLease: (k) => Effect.flatMap(rawClient(), (client) => Effect.promise(() => client.del(`${RUN}lease:${k}`))),
    leaseOwner: (k) =>
      Effect.flatMap(rawClient(), (client) =>
        Effect.map(Effect.promise(() => client.get(`${RUN}lease:${k}`)), (owner) => owner ?? undefined))
  })

  SealingSuite.suite("redis", {
    open: (encryption) => open(encryption !== undefined ? { encryption } : {}),
    readRecord: (k) => Effect.flatMap(rawClient(), (client) => Effect.promise(() => client.hgetall(`${RUN}grant:${k}`))),
    writeRecord: (k, fields) =>
      Effect.flatMap(rawClient(), (client) =>
        Effect.promise(async () => {
          for (const [field, value] of Object.entries(fields)) {
            if (value === null) await client.hdel(`${RUN}grant:${k}`, field)
            else await client.hset(`${RUN}grant:${k}`, field, value)
          }
        }))
  })

  // The due index is global to a key prefix: each scheduling test gets a prefix of its own (under RUN, deleted at the
  // end), and each client it opens has its own connection.
  let schedulingPrefixes = 0
  SchedulingSuite.suite("redis", {
    backend: Effect.sync(() => open({ prefix: `${RUN}sched${schedulingPrefixes++}:` }))
  })

  SchedulerSuite.suite("redis", {
    backend: Effect.sync(() => open({ prefix: `${RUN}scheduler${schedulingPrefixes++}:` }))
  })

  afterAll(async () => {
    const client = new Redis(Services.REDIS_URL)
    let cursor = "0"
    do {
      const [next, found] = await client.scan(cursor, "MATCH", `${RUN}*`, "COUNT", 500)
      if (found.length > 0) await client.del(...found)
      cursor = next
    } while (cursor !== "0")
    client.disconnect()
  })
}

describe.runIf(redis.available)("RedisTokenStore: layout, encryption and options", () => {
  it.scopedLive("the grant is one hash with a version field; the lease key holds an owner and a TTL", () =>
    Effect.gen(function*() {
      const store = yield* open({ leaseTtl: "30 seconds" })
      const raw = yield* rawClient()
      const k = key("layout")
      yield* store.compareAndSet(k, undefined, grant("at_layout"))
      const hash = yield* Effect.promise(() => raw.hgetall(`${RUN}grant:${k}`))
      assert.strictEqual(hash["version"], "1")
      assert.strictEqual(hash["access_token"], "at_layout")
      yield* store.withLock(k, () => Effect.gen(function*() {
        // The lease TTL, give or take how long this read took; a long TTL keeps that slack far from the assertion.
        const ttl = yield* Effect.promise(() => raw.pttl(`${RUN}lease:${k}`))
        assert.isAbove(ttl, 15_000)
        assert.isAtMost(ttl, 30_000)
      }))
      assert.strictEqual(yield* Effect.promise(() => raw.exists(`${RUN}lease:${k}`)), 0)
    }))

  it.scopedLive("the due index is a sorted set written by the grant's own script; a claim moves only the score; a delete removes it", () =>
    Effect.gen(function*() {
      const prefix = `${RUN}due-layout:`
      const store = yield* open({ prefix })
      const raw = yield* rawClient()
      const k = key("due")
      yield* store.compareAndSet(k, undefined, grant("at_due", { refreshDueAt: 1_000, failingSince: 500 }))
      assert.strictEqual(yield* Effect.promise(() => raw.zscore(`${prefix}due`, k)), "1000")
      const before = yield* Effect.promise(() => raw.hgetall(`${prefix}grant:${k}`))
      assert.strictEqual(before["refresh_due_at"], "1000")
      assert.strictEqual(before["failing_since"], "500")
      assert.deepStrictEqual(yield* store.scheduling!.claimDue({ now: 2_000, limit: 10, holdUntil: 9_000 }), [
        { key: k, dueAt: 1_000 }
      ])
      assert.strictEqual(yield* Effect.promise(() => raw.zscore(`${prefix}due`, k)), "9000")
      assert.deepStrictEqual(yield* Effect.promise(() => raw.hgetall(`${prefix}grant:${k}`)), before)
      // A dead grant leaves the index with the write that kills it; a delete removes its entry with the hash.
      yield* store.compareAndSet(k, 1, grant("at_due", { reauthRequired: "revoked" }))
      assert.isNull(yield* Effect.promise(() => raw.zscore(`${prefix}due`, k)))
      yield* store.compareAndSet(k, 2, grant("at_due"))
      assert.isNotNull(yield* Effect.promise(() => raw.zscore(`${prefix}due`, k)))
      yield* store.delete(k)
      assert.isNull(yield* Effect.promise(() => raw.zscore(`${prefix}due`, k)))
      // An issuer pause is a key holding its end, read against the reader's clock (no Redis expiry).
      const end = Date.now() + 60_000
      yield* store.scheduling!.pauseIssuer("https://issuer.example/token", end)
      const pause = `${prefix}issuer-pause:https://issuer.example/token`
      assert.strictEqual(yield* Effect.promise(() => raw.get(pause)), String(end))
      assert.strictEqual(yield* Effect.promise(() => raw.pttl(pause)), -1)
    }))

  it.scopedLive("encrypts the token fields at rest; a wrong key is a StoreError that says what to do", () =>
    Effect.gen(function*() {
      const keyA = Buffer.alloc(32, 7).toString("base64")
      const keyB = Buffer.alloc(32, 8).toString("base64")
      const store = yield* open({ encryption: { keys: { k1: Redacted.make(keyA) }, activeKeyId: "k1" } })
      const raw = yield* rawClient()
      const k = key("encrypted")
      yield* store.compareAndSet(k, undefined, grant("at_plaintext_canary"))
      const hash = yield* Effect.promise(() => raw.hgetall(`${RUN}grant:${k}`))
      assert.notInclude(JSON.stringify(hash), "at_plaintext_canary")
      assert.notInclude(JSON.stringify(hash), "rt_redis_secret_value")
      assert.strictEqual(hash["key_id"], "k1")
      const read = Option.getOrThrow(yield* store.get(k))
      assert.strictEqual(Redacted.value(read.accessToken!), "at_plaintext_canary")
      const wrong = yield* open({ encryption: { keys: { k1: Redacted.make(keyB) }, activeKeyId: "k1" } })
      const error = yield* Effect.flip(wrong.get(k))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /cannot decrypt the grant with key id k1/)
      const plain = yield* open()
      assert.match((yield* Effect.flip(plain.get(k))).message, /encrypted \(key id k1\) but no encryption keys/)
    }))

  it.scopedLive("options that let a renewal outlive the lease are refused", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(open({ leaseTtl: "300 millis", commandTimeout: "200 millis" }))
      assert.strictEqual(error._tag, "ConfigurationError")
    }))
})

describe.runIf(redis.available)("RedisTokenStore: connection failures", () => {
  it.scopedLive("an unreachable Redis is a StoreError at startup, within connectTimeout, saying what to do", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => Services.freePort())
      const started = Date.now()
      const error = yield* Effect.flip(
        RedisTokenStore.make({ url: Redacted.make(`redis://:hunter2-canary@127.0.0.1:${port}`), connectTimeout: "1 second" })
      )
      assert.isBelow(Date.now() - started, 3000)
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /refused the connection.*REDIS_URL/)
      assert.notInclude(error.message, "hunter2-canary")
    }))
})

describe.runIf(redis.available && binary.available)("RedisTokenStore: durability (DU-3)", () => {
  it.scopedLive("AOF off: best-effort with a warning; requireDurable refuses and says how to enable AOF", () =>
    Effect.gen(function*() {
      const server = yield* privateServer(["--appendonly", "no"])
      const [store, logs] = yield* capturingLogs(RedisTokenStore.make({ url: Redacted.make(server.url) }))
      assert.strictEqual(store.durability, "best-effort")
      assert.isTrue(logs.some((line) => /WARN.*best-effort.*AOF off.*appendonly yes/.test(line)), logs.join("\n"))
      const refused = yield* Effect.flip(RedisTokenStore.make({ url: Redacted.make(server.url), requireDurable: true }))
      assert.strictEqual(refused._tag, "StoreError")
      assert.match(refused.message, /requireDurable.*appendonly yes/)
    }))

  it.scopedLive("AOF with appendfsync always: durable; a SIGKILLed Redis restarted on its files has lost nothing", () =>
    Effect.gen(function*() {
      let server = yield* Effect.promise(() => Services.startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] }))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const report = yield* RedisTokenStore.inspectDurability(Redacted.make(server.url))
      assert.strictEqual(report.durability, "durable")
      assert.isTrue(report.aofEnabled)
      const store = yield* RedisTokenStore.make({ url: Redacted.make(server.url), requireDurable: true })
      assert.strictEqual(store.durability, "durable")
      let written = yield* store.compareAndSet("k", undefined, grant("at_1"))
      for (let i = 2; i <= 20; i++) written = yield* store.compareAndSet("k", written.version, grant(`at_${i}`))
      // Crash Redis right after the acknowledged writes, and bring it back on the same files.
      yield* Effect.promise(() => server.kill())
      server = yield* Effect.promise(() => server.restart())
      const read = yield* Effect.retry(store.get("k"), untilBack)
      const survived = Option.getOrThrow(read)
      assert.strictEqual(survived.version, 20)
      assert.strictEqual(Redacted.value(survived.accessToken!), "at_20")
    }), { timeout: 20_000 })

  it.scopedLive("AOF with appendfsync everysec: durable through WAITAOF on Redis 7.2+, best-effort naming the fix before", () =>
    Effect.gen(function*() {
      const server = yield* privateServer(["--appendonly", "yes", "--appendfsync", "everysec"])
      const report = yield* RedisTokenStore.inspectDurability(Redacted.make(server.url))
      const store = yield* quiet(RedisTokenStore.make({ url: Redacted.make(server.url) }))
      if (report.waitAofSupported) {
        assert.strictEqual(report.durability, "durable")
        assert.isTrue(report.usesWaitAof)
      } else {
        assert.strictEqual(report.durability, "best-effort")
        assert.match(report.reason, /appendfsync everysec.*WAITAOF.*7\.2/)
      }
      assert.strictEqual(store.durability, report.durability)
      const written = yield* store.compareAndSet("k", undefined, grant("at_everysec"))
      assert.strictEqual(written.version, 1)
    }))
})

describe.runIf(redis.available && binary.available)("RedisTokenStore: Redis stopped mid-run", () => {
  it.scoped("killed: typed StoreError, fresh cached tokens still served, recovery on restart (no persistence: grants are gone)", () =>
    Effect.gen(function*() {
      // The engine's clock is the TestClock, so "fresh" and "due" do not depend on how fast this runs on a loaded
      // machine; Redis, its client's timeouts and the endpoint run on real time.
      yield* TestClock.setTime(Date.now())
      let server = yield* Effect.promise(() => Services.startRedisServer())
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 4 })
      const store = yield* RedisTokenStore.make({
        url: Redacted.make(server.url),
        leaseTtl: "3 seconds",
        connectTimeout: "500 millis",
        commandTimeout: "500 millis"
      }).pipe(quiet)
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, "fault")
        const fresh = yield* refresher.getAccessToken("fault")
        assert.strictEqual(endpoint.refreshRequests, 1)

        yield* Effect.promise(() => server.kill())
        const started = Date.now()
        const error = yield* Effect.flip(store.get("fault"))
        assert.isBelow(Date.now() - started, 2000, "no hang")
        assert.strictEqual(error._tag, "StoreError")
        assert.match(error.message, /refused the connection|connection to Redis.*lost/)
        // The cached token is fresh (4 s lifetime, refreshed at 2 s): served from memory while Redis is down.
        for (let i = 0; i < 100; i++) {
          assert.strictEqual(Redacted.value(yield* refresher.getAccessToken("fault")), Redacted.value(fresh))
        }
        // Once due, the refresh needs the store: a typed StoreError, not a hang, and no token request.
        yield* TestClock.adjust("2200 millis")
        const due = yield* Effect.flip(refresher.getAccessToken("fault"))
        assert.strictEqual(due._tag, "StoreError")
        assert.strictEqual(endpoint.refreshRequests, 1)

        // Redis comes back on the same port: the same store instance reconnects by itself.
        server = yield* Effect.promise(() => server.restart())
        const back = yield* TestServices.provideWithLive(store.get("fault"), Effect.retry(untilBack))
        // This server keeps nothing on disk: the grant is gone, and the engine says so with a typed error.
        assert.isTrue(Option.isNone(back))
        const missing = yield* Effect.flip(refresher.getAccessToken("fault"))
        assert.strictEqual(missing._tag, "GrantNotFound")
        yield* seedExpired(endpoint, "fault")
        const again = yield* refresher.getAccessToken("fault")
        assert.strictEqual(Redacted.value(again), endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, store) })))
    }), { timeout: 30_000 })

  it.scopedLive("killed with AOF always: after the restart the rotated refresh token is there and the next refresh works (nothing lost)", () =>
    Effect.gen(function*() {
      let server = yield* Effect.promise(() =>
        Services.startRedisServer({ args: ["--appendonly", "yes", "--appendfsync", "always"] })
      )
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const endpoint = yield* scriptedEndpoint({ rotation: true })
      const store = yield* RedisTokenStore.make({
        url: Redacted.make(server.url),
        requireDurable: true,
        connectTimeout: "500 millis",
        commandTimeout: "500 millis"
      })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, "durable")
        yield* refresher.getAccessToken("durable")
        const rotated = Option.getOrThrow(yield* store.get("durable"))
        yield* Effect.promise(() => server.kill())
        assert.strictEqual((yield* Effect.flip(refresher.refresh("durable")))._tag, "StoreError")
        server = yield* Effect.promise(() => server.restart())
        const after = Option.getOrThrow(yield* Effect.retry(store.get("durable"), untilBack))
        assert.strictEqual(after.version, rotated.version)
        assert.strictEqual(Redacted.value(after.refreshToken!), Redacted.value(rotated.refreshToken!))
        assert.isTrue(endpoint.isActive(Redacted.value(after.refreshToken!)))
        // The grant lives on: a forced refresh rotates it again.
        const next = yield* refresher.refresh("durable").pipe(Effect.retry({ times: 5 }))
        assert.isAbove(next.version, rotated.version)
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(
        Effect.provide(engine(endpoint, {
          store: Layer.succeed(TokenStore.TokenStore, store),
          refresher: { forcedRefreshCooldown: 0 }
        }))
      )
    }), { timeout: 30_000 })
})
