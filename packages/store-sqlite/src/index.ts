/**
 * @since 0.1.0
 */

/**
 * The durable embedded TokenStore: one SQLite file (WAL mode) shared by every process on the machine.
 *
 * - Writes are compare-and-set on a version column: a stale writer gets `StaleWrite` and changes nothing.
 * - The grant lock is a lease row with an owner and an expiry: one process refreshes a grant at a time; a dead
 *   holder's lease is taken over once it expires (LK-2); renewal and release check the owner (LK-1, LK-3).
 * - Optional AES-256-GCM encryption of the token columns, with a key id per row for key rotation.
 * - The file is created with mode 0600. A corrupt file, a newer schema or an unwritable location is a typed
 *   `StoreError` that says what to do; nothing is overwritten.
 * - `listGrants` reads what a file holds, grant by grant, without opening it for writing and without the token
 *   columns (for `renew inspect` and health checks): nothing outside this package needs to know its tables.
 *
 * @since 0.1.0
 */
export * as SqliteTokenStore from "./SqliteTokenStore.js"
