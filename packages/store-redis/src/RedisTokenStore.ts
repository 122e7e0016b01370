/**
 * A shared TokenStore on Redis, for a fleet of processes on many machines.
 *
 * - A grant is one Redis hash (`<prefix>grant:<key>`) with a `version` field. Writes are compare-and-set in one Lua
 *   script: a stale writer gets `StaleWrite` and changes nothing (FN-1); a deleted grant is never resurrected (FN-2);
 *   every field of a grant is written and read at once (FN-4).
 * - The refresh lock is a lease key (`<prefix>lease:<key>`) holding a random owner id, with a TTL kept by Redis's
 *   clock. Acquire, renew and release are Lua scripts conditional on the owner (LK-1); the lease is renewed every
 *   third of its TTL while the refresh runs (LK-3); a dead holder's lease simply expires (LK-2); waiters back off
 *   with jitter until `lockWaitTimeout` (LK-5).
 * - The scheduler's due index is a sorted set (`<prefix>due`: member = grant key, score = due time) written by the
 *   grant's own compare-and-set script (SC-5); claims are one script; an issuer pause is a key
 *   (`<prefix>issuer-pause:<issuer>`). All keys of a store are on one Redis (no Cluster).
 * - Durability is detected at startup (DU-3): with AOF on and `WAITAOF` (Redis 7.2+) every grant write waits for the
 *   local fsync; with `appendfsync always` the reply already implies it. Otherwise the store runs `best-effort` and
 *   logs a warning, or refuses to start with `requireDurable: true`.
 * - Every Redis failure is a typed `StoreError` that says what to do; no call waits longer than `commandTimeout`, and
 *   the client reconnects by itself when Redis comes back.
 * - Optional AES-256-GCM encryption of the token fields, with a key id per grant for key rotation.
 *
 * @since 0.1.0
 */
import { RefreshError, Token, TokenStore } from "@renew/core"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Redis, type RedisOptions } from "ioredis"
import * as Crypto from "node:crypto"
import * as GrantRecord from "@renew/store-kit/GrantRecord"
import { type Attempt, makeWithLock } from "@renew/store-kit/Lease"
import * as Scheduling from "@renew/store-kit/Scheduling"
import * as StoreOptions from "@renew/store-kit/StoreOptions"
import { describeUrl, detect, explain, lastSocketError } from "./internal/diagnostics.js"
import { type Client, defineScripts } from "./internal/scripts.js"

export type { Encryption } from "@renew/store-kit/Cipher"

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisTokenStoreOptions extends StoreOptions.CommonOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS (the REDIS_URL convention). Redacted: it may
   * hold a password.
   */
  readonly url: Redacted.Redacted<string>
  /** Prepended to every key this store writes. Default `"renew:"`. */
  readonly prefix?: string | undefined
  /**
   * Refuse to start unless every acknowledged grant write survives a Redis crash (AOF on, with `WAITAOF` or
   * `appendfsync always`). Default false: run `best-effort` with a warning.
   */
  readonly requireDurable?: boolean | undefined
  /** Per TCP connect attempt. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * No Redis command waits longer than this; it fails with a `StoreError` instead. Default 2 seconds (at most a third
   * of the lease TTL, so a renewal always ends before the lease could lapse).
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long a write waits for the AOF fsync (`WAITAOF`, Redis 7.2+). Default 1 second, at most 80% of commandTimeout. */
  readonly durableWriteTimeout?: Duration.DurationInput | undefined
}

/**
 * What the store found out about Redis persistence at startup.
 *
 * @since 0.1.0
 * @category models
 */
export interface DurabilityReport {
  readonly durability: "durable" | "best-effort"
  readonly redisVersion: string
  readonly aofEnabled: boolean
  /** `undefined` when `CONFIG GET` is not allowed (managed Redis). */
  readonly appendfsync: string | undefined
  readonly waitAofSupported: boolean
  /** Whether grant writes are followed by `WAITAOF 1 0 <timeout>`. */
  readonly usesWaitAof: boolean
  /** Why, in words; for `best-effort` also how to make it durable. */
  readonly reason: string
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

/**
 * Opens a client (its own connections) to the Redis at `options.url`, checks persistence and prepares the scripts.
 * Fails with `StoreError` if Redis cannot be reached within `connectTimeout`, or is not durable while
 * `requireDurable` is set; with `ConfigurationError` for inconsistent options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RedisTokenStoreOptions
): Effect.Effect<TokenStore.TokenStore["Type"], RefreshError.StoreError | RefreshError.ConfigurationError, Scope.Scope> =>
  Effect.gen(function*() {
    const url = Redacted.value(options.url)
    const where = describeUrl(url)
    const prefix = options.prefix ?? "renew:"
    const { cipher, lease, maxPollMillis } = yield* StoreOptions.normalize(options)
    const commandTimeoutMillis = yield* StoreOptions.callTimeout("commandTimeout", options.commandTimeout, 2000, lease)
    const connectTimeoutMillis = yield* StoreOptions.millis("connectTimeout", options.connectTimeout, 5000, 1)
    // WAITAOF must give up (and be reported as such) before the client's own command timeout would cut it off.
    const durableWriteTimeoutMillis = Math.floor(
      Math.min(
        yield* StoreOptions.millis("durableWriteTimeout", options.durableWriteTimeout, 1000, 1),
        commandTimeoutMillis * 0.8
      )
    )

    const clientOptions = (name: string): RedisOptions => ({
      lazyConnect: true,
      connectTimeout: connectTimeoutMillis,
      commandTimeout: commandTimeoutMillis,
      // A command sent while the connection is down waits for one reconnect attempt, then fails: never forever.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      // Reconnect forever, backing off to one attempt a second: the store recovers by itself when Redis is back.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      connectionName: name,
      disableClientInfo: true
    })

    const connect = (name: string) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          const redis = new Redis(url, clientOptions(name))
          // Errors surface on the commands that hit them; this keeps the socket-level cause (ECONNREFUSED, ...) to
          // explain them, and keeps ioredis from printing each reconnect attempt.
          redis.on("error", (error: Error) => void lastSocketError.set(redis, error))
          redis.on("ready", () => void lastSocketError.delete(redis))
          return Effect.tryPromise({
            try: () => redis.connect(),
            catch: (cause) => storeError("open", explain(where, lastSocketError.get(redis) ?? cause))
          }).pipe(
            Effect.timeoutFail({
              duration: Duration.millis(connectTimeoutMillis + 1000),
              onTimeout: () =>
                storeError("open", `Redis at ${where} did not become ready within ${connectTimeoutMillis} ms. Check that it is up and REDIS_URL`)
            }),
            Effect.as(defineScripts(redis)),
            Effect.onError(() => Effect.sync(() => redis.disconnect()))
          )
        }),
        (redis) => Effect.sync(() => redis.disconnect())
      )

    const redis = yield* connect("renew-store")
    const report = yield* Effect.tryPromise({
      try: () => detect(redis),
      catch: (cause) => storeError("open", explain(where, cause))
    })
    if (report.durability !== "durable") {
      if (options.requireDurable === true) {
        return yield* storeError(
          "open",
          `requireDurable is set, but ${report.reason}. Or set requireDurable: false to run best-effort`
        )
      }
      yield* Effect.logWarning(`renew: Redis token store at ${where} runs best-effort: ${report.reason}`)
    }
    // WAITAOF blocks the connection it is sent on until the fsync: durable writes get their own small pool, so reads
    // and lease calls never queue behind them.
    const writers = report.usesWaitAof
      ? yield* Effect.forEach([0, 1, 2, 3], (i) => connect(`renew-store-writer-${i}`))
      : []
    let nextWriter = 0

    const run = <A>(operation: string, f: () => Promise<A>, client: Redis = redis) =>
      Effect.tryPromise({
        try: f,
        catch: (cause) => storeError(operation, explain(where, cause, lastSocketError.get(client)))
      })

    const grantKey = (key: string) => `${prefix}grant:${key}`
    const leaseKey = (key: string) => `${prefix}lease:${key}`
    // The due index: one sorted set per prefix, member = grant key, score = when it is due.
    const dueKey = `${prefix}due`
    const pauseKey = (issuer: string) => `${prefix}issuer-pause:${issuer}`

    const decode = (key: string, hash: Record<string, string>): Effect.Effect<Token.Grant, RefreshError.StoreError> =>
      Either.match(GrantRecord.decode(key, hash, cipher), {
        onLeft: (detail) => Effect.fail(storeError("get", `${detail} (the hash ${grantKey("<key>")})`)),
        onRight: Effect.succeed
      })

    const get = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("get", key),
        Effect.flatMap(
          run("get", () => redis.hgetall(grantKey(key))),
          (hash) => (Object.keys(hash).length === 0 ? Effect.succeedNone : Effect.asSome(decode(key, hash)))
        )
      )

    /** Runs a write; with WAITAOF, on a writer connection followed by `WAITAOF 1 0 <timeout>`, checked. */
    const durably = <A>(operation: string, write: (client: Client) => Promise<A>): Effect.Effect<A, RefreshError.StoreError> => {
      if (!report.usesWaitAof) return run(operation, () => write(redis))
      return run(operation, async () => {
        const client = writers[nextWriter++ % writers.length]!
        const result = await write(client)
        const [local] = (await client.call("WAITAOF", "1", "0", String(durableWriteTimeoutMillis))) as [number, number]
        return { result, local }
      }).pipe(
        Effect.flatMap(({ local, result }) =>
          local >= 1
            ? Effect.succeed(result)
            : Effect.fail(storeError(
              operation,
              `the write reached Redis at ${where} but was not confirmed on disk within ${durableWriteTimeoutMillis} ms (WAITAOF). ` +
                "Check Redis's disk (INFO persistence: aof_last_write_status); the grant may or may not survive a Redis crash"
            ))
        )
      )
    }

    const compareAndSet = (key: string, expectedVersion: number | undefined, grant: Token.Grant) =>
      Effect.gen(function*() {
        const version = (expectedVersion ?? 0) + 1
        const prepared = yield* GrantRecord.prepare(key, version, grant, cipher)
        // A hash has no null: absent fields are left out.
        const pairs: Array<string> = []
        for (const field of GrantRecord.fields) {
          const value = prepared.record[field]
          if (value !== null) pairs.push(field, String(value))
        }
        pairs.push("updated_at", String(Date.now()))
        const writeId = Crypto.randomUUID()
        const [ok, actual] = yield* durably(
          "compareAndSet",
          (client) =>
            client.renewCas(
              grantKey(key),
              dueKey,
              expectedVersion === undefined ? "" : String(expectedVersion),
              String(version),
              writeId,
              key,
              prepared.dueAt === null ? "" : String(prepared.dueAt),
              ...pairs
            )
        )
        if (ok === 1) return prepared.grant
        return yield* TokenStore.staleWrite(expectedVersion, actual >= 0 ? actual : undefined)
      })

    const remove = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("delete", key),
        durably("delete", (client) => client.renewDelete(grantKey(key), dueKey, key)).pipe(Effect.asVoid)
      )

    const ttl = String(lease.ttlMillis)
    const withLock = makeWithLock({
      tryAcquire: (key, owner) =>
        Effect.map(
          run("lock", () => redis.renewAcquire(leaseKey(key), owner, ttl)),
          ([acquired, remaining]): Attempt => ({
            acquired: acquired === 1,
            holderRemainingMillis: remaining >= 0 ? remaining : undefined
          })
        ),
      renew: (key, owner) => Effect.map(run("lock", () => redis.renewRenew(leaseKey(key), owner, ttl)), (held) => held === 1),
      release: (key, owner) => Effect.asVoid(run("unlock", () => redis.renewRelease(leaseKey(key), owner)))
    }, {
      parameters: lease,
      maxPollMillis,
      backend: "Redis"
    })

    // Claims and pauses go on the main connection, without WAITAOF: one lost in a crash only makes a grant due again
    // (or lifts a pause) early, never loses a token.
    const scheduling: TokenStore.Scheduling = {
      claimDue: (request) =>
        Effect.flatMap(Scheduling.claim(request), ({ holdUntil, limit, now }) =>
          limit === 0
            ? Effect.succeed([])
            : Effect.map(
              run("claimDue", () => redis.renewClaim(dueKey, String(now), String(limit), String(holdUntil))),
              (flat) => {
                const rows: Array<{ key: string; dueAt: string }> = []
                for (let i = 0; i + 1 < flat.length; i += 2) rows.push({ key: flat[i]!, dueAt: flat[i + 1]! })
                return Scheduling.claimed(rows)
              }
            )),
      backlog: (now) =>
        Effect.flatMap(Scheduling.millis("backlog", now, "floor"), (at) =>
          Effect.map(
            run("backlog", () => redis.renewBacklog(dueKey, String(at))),
            ([due, scheduled, oldest]) => Scheduling.backlog(at, { due, oldest, scheduled })
          )),
      pauseIssuer: (issuer, until) =>
        Effect.flatMap(Scheduling.millis("pauseIssuer", until, "ceil"), (end) =>
          Effect.asVoid(run("pauseIssuer", () => redis.renewPause(pauseKey(issuer), String(end))))),
      issuerPausedUntil: (issuer, now) =>
        Effect.flatMap(Scheduling.millis("issuerPausedUntil", now, "floor"), (at) =>
          Effect.map(run("issuerPausedUntil", () => redis.get(pauseKey(issuer))), (until) => Scheduling.pausedUntil(at, until)))
    }

    return TokenStore.TokenStore.of({
      durability: report.durability,
      lease,
      get,
      compareAndSet,
      delete: remove,
      withLock,
      scheduling
  })
  })

/**
 * Reads what `make` would decide about durability, without opening a store (for health checks and `renew doctor`).
 *
 * @since 0.1.0
 * @category diagnostics
 */
export const inspectDurability = (
  url: Redacted.Redacted<string>
): Effect.Effect<DurabilityReport, RefreshError.StoreError> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const redis = new Redis(Redacted.value(url), {
        lazyConnect: true,
        connectTimeout: 5000,
        commandTimeout: 5000,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        disableClientInfo: true
      })
      redis.on("error", () => {})
      return redis
    }),
    (redis) =>
      Effect.tryPromise({
        try: async () => {
          await redis.connect()
          return detect(redis)
        },
        catch: (cause) => storeError("inspect", explain(describeUrl(Redacted.value(url)), cause))
      }),
    (redis) => Effect.sync(() => redis.disconnect())
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: RedisTokenStoreOptions
): Layer.Layer<TokenStore.TokenStore, RefreshError.StoreError | RefreshError.ConfigurationError> =>
  Layer.scoped(TokenStore.TokenStore, make(options))

/**
 * Options from `Config`, e.g. `RedisTokenStore.layerConfig({ url: Config.redacted("REDIS_URL") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<RedisTokenStoreOptions>
): Layer.Layer<
  TokenStore.TokenStore,
  RefreshError.StoreError | RefreshError.ConfigurationError | ConfigError.ConfigError
> => Layer.scoped(TokenStore.TokenStore, Effect.flatMap(Config.unwrap(options), make))
