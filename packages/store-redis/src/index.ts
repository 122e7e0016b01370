/**
 * @since 0.1.0
 */

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
export * as RedisTokenStore from "./RedisTokenStore.js"
