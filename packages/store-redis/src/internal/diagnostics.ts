/**
 * What the Redis store says when Redis fails, and what it found out about persistence: advice, never data, keys or
 * credentials.
 *
 * @internal
 */
import type { Redis } from "ioredis"
import type { DurabilityReport } from "../RedisTokenStore.js"

/** @internal host:port/db of the URL, never its credentials. */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    const db = parsed.pathname.replace(/^\//, "")
    return `${parsed.protocol}//${parsed.hostname}:${parsed.port || "6379"}${db ? `/${db}` : ""}`
  } catch {
    return "the configured REDIS_URL (unparsable)"
  }
}

/** The last socket-level error of each client while it is not connected (why commands fail). */
export const lastSocketError = new WeakMap<Redis, Error>()

const GENERIC = /Connection is closed|Stream isn't writeable|max retries per request/i

/**
 * Turns what ioredis / Redis say into advice. Never quotes data, keys or credentials. A generic "connection closed"
 * is explained by the client's last socket error when there is one (ECONNREFUSED: Redis is down).
 */
export const explain = (where: string, cause: unknown, socketError?: Error | undefined): string => {
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
    return `the Redis user lacks a permission this store needs (EVALSHA/EVAL, HSET, HGETALL, SET, GET, DEL, PEXPIRE, PEXPIREAT, PTTL, ZADD, ZREM, ZRANGE, ZRANGEBYSCORE, ZCOUNT, ZCARD, INFO). Grant them in the ACL`
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


const infoField = (info: string, field: string): string | undefined =>
  info.split(/\r?\n/).find((line) => line.startsWith(`${field}:`))?.slice(field.length + 1).trim()

/** @internal */
export const detect = (redis: Redis): Promise<DurabilityReport> =>
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
