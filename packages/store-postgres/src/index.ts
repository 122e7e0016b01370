/**
 * @since 0.1.0
 */

/**
 * A shared TokenStore on PostgreSQL, for a fleet of processes on many machines.
 *
 * - A grant is one row of `renew_grants` with a `version` column. Writes are compare-and-set in one statement
 *   (`UPDATE … WHERE key = $1 AND version = $2 RETURNING`, `INSERT … ON CONFLICT DO NOTHING RETURNING`): a stale
 *   writer gets `StaleWrite` and changes nothing (FN-1); a deleted grant is never resurrected (FN-2); a row is
 *   written and read whole (FN-4).
 * - The refresh lock is a lease row in `renew_leases` (an UNLOGGED table: owner id, expiry on the database's clock), claimed, renewed
 *   and released by single autocommit statements conditional on the owner (LK-1). No transaction and no session-level
 *   advisory lock is ever held across the token request, so it works behind transaction-pooling proxies (PgBouncer).
 *   The lease is renewed every third of its TTL while the refresh runs (LK-3); a dead holder's lease expires (LK-2).
 * - The scheduler's due index is a `due_at` column written with the grant; claims are one `FOR UPDATE SKIP LOCKED`
 *   statement, and issuer pauses a small table (`renew_issuer_pauses`).
 * - Migrations are versioned in `renew_schema_version` and run under a transaction-scoped advisory lock, so replicas
 *   starting together migrate once. A newer schema is refused and left alone.
 * - `synchronous_commit = off` (database, role or connection) is refused unless `allowAsyncCommit` (DU-2).
 * - Every database failure is a typed `StoreError` that says what to do; no statement waits longer than
 *   `queryTimeout`; a dropped connection is replaced by the pool on the next call.
 * - Optional AES-256-GCM encryption of the token columns, with a key id per row for key rotation.
 *
 * @since 0.1.0
 */
export * as PgTokenStore from "./PgTokenStore.js"
