/**
 * The Redis store's Lua scripts: each is one atomic step on the server. A grant's hash and its due-index entry are
 * written (and deleted) by the same script, so the index never disagrees with the grant.
 *
 * @internal
 */
import type { Redis } from "ioredis"

/**
 * KEYS[1] the grant hash, KEYS[2] the due index (sorted set). ARGV[1] the expected version ('' = the grant must not
 * exist), ARGV[2] the new version, ARGV[3] a unique write id, ARGV[4] the grant key (its member in the due index),
 * ARGV[5] its due time ('' = never due: removed from the index), ARGV[6..] field, value pairs. Returns {1, version} or
 * {0, current version or -1}. The write id makes a resend after a dropped connection report the write it already
 * made instead of StaleWrite.
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
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'write_id', ARGV[3], unpack(ARGV, 6))
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
end
return {1, tonumber(ARGV[2])}
`

/** KEYS[1] the grant hash, KEYS[2] the due index. ARGV[1] the grant key. */
const DELETE = `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
`

/**
 * KEYS[1] the due index. ARGV[1] now, ARGV[2] limit, ARGV[3] holdUntil. Moves up to `limit` members due at `now`
 * (earliest first) to `holdUntil`; returns them with the scores they had: {member, score, member, score, ...}.
 */
const CLAIM = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], due[i])
end
return due
`

/** KEYS[1] the due index. ARGV[1] now. Returns {due, scheduled, earliest score or ''}. */
const BACKLOG = `
local earliest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]), redis.call('ZCARD', KEYS[1]), earliest[2] or ''}
`

/**
 * KEYS[1] the issuer's pause. ARGV[1] its end. Keeps the later end. The key does not expire: readers compare the end
 * with their own clock (which a Redis expiry would not follow: a test's clock, a skewed host), and there is one key
 * per token endpoint.
 */
const PAUSE = `
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
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


/** @internal */
export interface Scripts {
  renewCas(grant: string, due: string, ...args: Array<string>): Promise<[number, number]>
  renewDelete(grant: string, due: string, key: string): Promise<number>
  renewClaim(due: string, now: string, limit: string, holdUntil: string): Promise<Array<string>>
  renewBacklog(due: string, now: string): Promise<[number, number, string]>
  renewPause(pause: string, until: string): Promise<number>
  renewAcquire(key: string, owner: string, ttlMillis: string): Promise<[number, number]>
  renewRenew(key: string, owner: string, ttlMillis: string): Promise<number>
  renewRelease(key: string, owner: string): Promise<number>
}

/** @internal */
export type Client = Redis & Scripts

/** @internal */
export const defineScripts = (redis: Redis): Client => {
  redis.defineCommand("renewCas", { numberOfKeys: 2, lua: CAS })
  redis.defineCommand("renewDelete", { numberOfKeys: 2, lua: DELETE })
  redis.defineCommand("renewClaim", { numberOfKeys: 1, lua: CLAIM })
  redis.defineCommand("renewBacklog", { numberOfKeys: 1, lua: BACKLOG })
  redis.defineCommand("renewPause", { numberOfKeys: 1, lua: PAUSE })
  redis.defineCommand("renewAcquire", { numberOfKeys: 1, lua: ACQUIRE })
  redis.defineCommand("renewRenew", { numberOfKeys: 1, lua: RENEW })
  redis.defineCommand("renewRelease", { numberOfKeys: 1, lua: RELEASE })
  return redis as Client
}
