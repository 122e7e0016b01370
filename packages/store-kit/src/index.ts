/**
 * @since 0.1.0
 */

/**
 * AES-256-GCM for token values at rest, shared by the SQLite, Redis and PostgreSQL stores. What a value is bound to
 * (its grant, field, version and key id: see `GrantRecord`) is authenticated data, so a ciphertext moved to another
 * grant, field or version fails to decrypt instead of yielding a wrong token. Every stored value carries the id of the
 * key that sealed it, so keys can be rotated.
 *
 * @since 0.1.0
 */
export * as Cipher from "./Cipher.js"

/**
 * The lease protocol shared by the shared stores: a lease is a record with a random owner id and an expiry kept by
 * the backend's clock. Acquire, renew and release are each one atomic backend operation conditional on the owner
 * (LK-1). While the body runs the lease is renewed every third of its TTL (LK-3); waiters back off with jitter, never
 * sleep past the moment the holder's lease expires, and try once more before giving up with `LockTimeout` (LK-5).
 *
 * Fencing: the body gets a `Lease`. A renewal that finds the lease lost (lapsed, taken, or gone), or that keeps
 * failing until the lease may have lapsed, marks it lost for good; the holder then sends no further attempt and
 * writes only by compare-and-set on the version it holds.
 *
 * @since 0.1.0
 */
export * as Lease from "./Lease.js"

/**
 * The stored shape of a grant, one field per column (SQLite, PostgreSQL) or hash field (Redis), with the token values
 * sealed when encryption is configured. One codec, so every store writes and reads grants the same way.
 *
 * @since 0.1.0
 */
export * as GrantRecord from "./GrantRecord.js"

/**
 * One reading of the options every shared store has (lease TTL, lock wait, encryption) and of its per-call timeout,
 * with the same defaults, bounds and errors on SQLite, Redis and PostgreSQL.
 *
 * - Durations are read as whole milliseconds, rounded up (a lease is never shorter than asked).
 * - `leaseTtl`: default 30 s, from 30 ms to 24 h. It is renewed every third of itself while held.
 * - `lockWaitTimeout`: default twice the lease TTL, at most 24 h.
 * - A per-call timeout (Redis `commandTimeout`, PostgreSQL `queryTimeout`) is at most a third of the lease TTL, so a
 *   renewal ends before the lease could lapse.
 * - The waiters' longest sleep between attempts is a tenth of the TTL, between 5 and 200 ms.
 *
 * @since 0.1.0
 */
export * as StoreOptions from "./StoreOptions.js"

/**
 * What the shared stores' scheduling sides (`TokenStore.Scheduling`) have in common: the claim request and issuer
 * pauses read the same way (whole milliseconds, within range), and claimed grants handed back in the port's order.
 *
 * @since 0.1.0
 */
export * as Scheduling from "./Scheduling.js"
