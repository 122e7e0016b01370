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
import * as StoreOptions from "@renew/store-kit/StoreOptions"

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

// ---------------------------------------------------------------------------------------------------------------
// Lua
// ---------------------------------------------------------------------------------------------------------------

/**
 * KEYS[1] the grant hash. ARGV[1] the expected version ('' = the grant must not exist), ARGV[2] the new version,
 * ARGV[3] a unique write id, ARGV[4..] field, value pairs. Returns {1, version} or {0, current version or -1}.
 * The write id makes a resend after a dropped connection report the write it already made instead of StaleWrite.
 */
const CAS = `
local current = redis.call('HGET', KEYS[1], 'version')
if current == ARGV[2] and redis.call('HGET', KEYS[1], 'write_id') == ARGV[3] then
  return {1, tonumber(current)}
end
if (ARGV[1] == '' and current) or (ARGV[1] ~= '' and current ~= ARGV[1]) then
  if current then return {0, tonumber(current)} end
  return {0, -1}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'write_id', ARGV[3], unpack(ARGV, 4))
return {1, tonumber(ARGV[2])}
`

/** KEYS[1] the lease, ARGV[1] owner, ARGV[2] TTL ms. Returns {1, 0} or {0, the holder's remaining ms}. */
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, 0} end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}
`

/** KEYS[1] the lease, ARGV[1] owner, ARGV[2] TTL ms. 1 if still ours (and extended), else 0. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`

/** KEYS[1] the lease, ARGV[1] owner. Deletes it only if it is still ours (LK-1). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

interface Scripts {
  renewCas(key: string, ...args: Array<string>): Promise<[number, number]>
  renewAcquire(key: string, owner: string, ttlMillis: string): Promise<[number, number]>
  renewRenew(key: string, owner: string, ttlMillis: string): Promise<number>
  renewRelease(key: string, owner: string): Promise<number>
}

type Client = Redis & Scripts

const defineScripts = (redis: Redis): Client => {
  redis.defineCommand("renewCas", { numberOfKeys: 1, lua: CAS })
  redis.defineCommand("renewAcquire", { numberOfKeys: 1, lua: ACQUIRE })
  redis.defineCommand("renewRenew", { numberOfKeys: 1, lua: RENEW })
  redis.defineCommand("renewRelease", { numberOfKeys: 1, lua: RELEASE })
  return redis as Client
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/** host:port/db of the URL, never its credentials. */
const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    const db = parsed.pathname.replace(/^\//, "")
    return `${parsed.protocol}//${parsed.hostname}:${parsed.port || "6379"}${db ? `/${db}` : ""}`
  } catch {
    return "the configured REDIS_URL (unparsable)"
  }
}

/** The last socket-level error of each client while it is not connected (why commands fail). */
const lastSocketError = new WeakMap<Redis, Error>()

const GENERIC = /Connection is closed|Stream isn't writeable|max retries per request/i

/**
 * Turns what ioredis / Redis say into advice. Never quotes data, keys or credentials. A generic "connection closed"
 * is explained by the client's last socket error when there is one (ECONNREFUSED: Redis is down).
 */
const explain = (where: string, cause: unknown, socketError?: Error | undefined): string => {
  const raw = cause instanceof Error ? cause : new Error(String(cause))
  const error = socketError !== undefined && GENERIC.test(raw.message) ? socketError : raw
  const code = String((error as { code?: unknown }).code ?? "")
  const message = error.message
  const name = error.name
  if (code === "ECONNREFUSED") {
    return `Redis at ${where} refused the connection. Check that Redis is running and REDIS_URL points at it`
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `the host of ${where} does not resolve. Check REDIS_URL`
  if (code === "ETIMEDOUT" || /connect ETIMEDOUT/.test(message)) {
    return `connecting to Redis at ${where} timed out. Check the network path and REDIS_URL`
  }
  if (/Command timed out/.test(message)) {
    return `Redis at ${where} did not answer within commandTimeout. Redis is overloaded, blocked or unreachable; check its health (INFO, SLOWLOG)`
  }
  if (name === "MaxRetriesPerRequestError" || /max retries per request/i.test(message)) {
    return `lost the connection to Redis at ${where} and could not reconnect in time. Check that Redis is up; the store reconnects by itself when it is`
  }
  if (/Connection is closed|Stream isn't writeable|ECONNRESET|EPIPE/.test(message) || code === "ECONNRESET") {
    return `the connection to Redis at ${where} was lost. Check that Redis is up; the store reconnects by itself when it is`
  }
  if (/^(NOAUTH|WRONGPASS)/.test(message)) {
    return `Redis at ${where} rejected the credentials (${message.split(" ")[0]}). Put the right user and password in REDIS_URL`
  }
  if (/^NOPERM/.test(message)) {
    return `the Redis user lacks a permission this store needs (EVALSHA/EVAL, HSET, HGETALL, SET, GET, DEL, PEXPIRE, PTTL, INFO). Grant them in the ACL`
  }
  if (/^READONLY/.test(message)) {
    return `Redis at ${where} is a read-only replica. Point REDIS_URL at the primary`
  }
  if (/^OOM/.test(message)) {
    return `Redis at ${where} is out of memory (maxmemory reached). Raise maxmemory, or use a noeviction instance that is not shared with a cache`
  }
  if (/^MISCONF/.test(message)) {
    return `Redis at ${where} refuses writes because it cannot persist to disk (MISCONF). Fix its disk or dir`
  }
  if (/^LOADING/.test(message)) return `Redis at ${where} is still loading its data set. Retry in a moment`
  if (/^BUSY/.test(message)) return `Redis at ${where} is busy running a script. Retry in a moment`
  return `Redis at ${where} failed: ${message.split("\n")[0]!.slice(0, 200)}`
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

// ---------------------------------------------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------------------------------------------

const infoField = (info: string, field: string): string | undefined =>
  info.split(/\r?\n/).find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1).trim()

const detect = (redis: Redis): Promise<DurabilityReport> =>
  (async () => {
    const persistence = await redis.info("persistence")
    const server = await redis.info("server")
    const redisVersion = infoField(server, "redis_version") ?? "unknown"
    const aofEnabled = infoField(persistence, "aof_enabled") === "1"
    let appendfsync: string | undefined
    try {
      const reply = (await redis.config("GET", "appendfsync")) as unknown as Array<string>
      appendfsync = reply[1]
    } catch {
      appendfsync = undefined // CONFIG is often disabled on managed Redis
    }
    let waitAofSupported = false
    try {
      await redis.call("WAITAOF", "0", "0", "1")
      waitAofSupported = true
    } catch {
      waitAofSupported = false // "unknown command": Redis < 7.2
    }
    const base = { redisVersion, aofEnabled, appendfsync, waitAofSupported }
    const howToFix =
      "To make it durable: enable AOF (redis.conf `appendonly yes`, or `CONFIG SET appendonly yes` then `CONFIG REWRITE`) " +
      "and use Redis 7.2+ (WAITAOF) or `appendfsync always`"
    if (!aofEnabled) {
      return {
        ...base,
        durability: "best-effort",
        usesWaitAof: false,
        reason:
          `Redis ${redisVersion} has AOF off (appendonly no): a Redis restart or crash loses grants written since the last snapshot, ` +
          `including rotated refresh tokens that the authorization server no longer accepts. ${howToFix}`
      }
    }
    if (waitAofSupported) {
      return {
        ...base,
        durability: "durable",
        usesWaitAof: true,
        reason: `AOF is on (appendfsync ${appendfsync ?? "unknown"}); every grant write waits for WAITAOF 1 0 (local fsync)`
      }
    }
    if (appendfsync === "always") {
      return {
        ...base,
        durability: "durable",
        usesWaitAof: false,
        reason: `AOF is on with appendfsync always: Redis fsyncs every write before it replies`
      }
    }
    return {
      ...base,
      durability: "best-effort",
      usesWaitAof: false,
      reason: `AOF is on but with appendfsync ${appendfsync ?? "unknown (CONFIG GET is not allowed)"}, and Redis ${redisVersion} ` +
        `has no WAITAOF (7.2+): up to a second of acknowledged writes can be lost in a crash. ` +
        `Set appendfsync always, or upgrade to Redis 7.2+`
    }
  })()

// ---------------------------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------------------------



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
            client.renewCas(grantKey(key), expectedVersion === undefined ? "" : String(expectedVersion), String(version), writeId, ...pairs)
        )
        if (ok === 1) return prepared.grant
        return yield* TokenStore.staleWrite(expectedVersion, actual >= 0 ? actual : undefined)
      })

    const remove = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("delete", key),
        durably("delete", (client) => client.del(grantKey(key))).pipe(Effect.asVoid)
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

    return TokenStore.TokenStore.of({
      durability: report.durability,
      lease,
      get,
      compareAndSet,
      delete: remove,
      withLock
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
