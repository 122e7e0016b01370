/**
 * The SQLite file's tables and their migrations. `PRAGMA user_version` is the migration number.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** @internal The schema version this code writes and understands. */
export const SCHEMA_VERSION = 2

/** The columns migration 2 adds to renew_grants. */
const SCHEDULING_COLUMNS = [
  // The grant's own fields (GrantRecord), in clear: they are not secrets.
  "refresh_due_at",
  "failing_since",
  // The due index: TokenStore.dueAtOf of the grant as written, moved to `holdUntil` by a claim. NULL: never due.
  "due_at",
  // The due time the last claim took the grant at: SQLite's RETURNING sees only the new row, so the claim copies the
  // old due time here to return it.
  "claimed_due_at"
]

const MIGRATIONS: ReadonlyArray<(existingColumns: ReadonlySet<string>) => ReadonlyArray<string>> = [
  // 1: grants and leases.
  () => [
    `CREATE TABLE IF NOT EXISTS renew_grants (
      key TEXT PRIMARY KEY,
      version INTEGER NOT NULL,
      access_token TEXT,
      refresh_token TEXT,
      token_type TEXT NOT NULL,
      issued_at INTEGER NOT NULL,
      expires_at INTEGER NOT NULL,
      scope TEXT,
      refresh_token_expires_at INTEGER,
      refresh_started_at INTEGER,
      reauth_required TEXT,
      key_id TEXT,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS renew_leases (
      key TEXT PRIMARY KEY,
      owner TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    )`
  ],
  // 2: the scheduler's fields, the due index and issuer pauses. A grant written before it enters the due index with
  // its next write.
  (existing) => [
    ...SCHEDULING_COLUMNS.filter((column) => !existing.has(column)).map((column) =>
      `ALTER TABLE renew_grants ADD COLUMN ${column} INTEGER`
    ),
    `CREATE INDEX IF NOT EXISTS renew_grants_due_at ON renew_grants (due_at) WHERE due_at IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS renew_issuer_pauses (
      issuer TEXT PRIMARY KEY,
      paused_until INTEGER NOT NULL
    )`
  ]
]

const userVersion = (sql: SqlClient.SqlClient) =>
  Effect.map(sql`PRAGMA user_version`, (rows) => Number((rows[0] as { user_version?: number } | undefined)?.user_version ?? 0))

/**
 * Brings the file to `SCHEMA_VERSION`; returns the version found when it is newer (nothing is changed then). The
 * write lock is taken before the version is read (BEGIN IMMEDIATE), so processes opening an old file together migrate
 * it once, and none of them reads a version that another is about to change.
 *
 * @internal
 */
export const migrate = (sql: SqlClient.SqlClient): Effect.Effect<number, SqlError> =>
  Effect.gen(function*() {
    const seen = yield* userVersion(sql)
    if (seen >= SCHEMA_VERSION) return seen
    yield* sql.unsafe("BEGIN IMMEDIATE")
    return yield* Effect.gen(function*() {
      const current = yield* userVersion(sql)
      if (current >= SCHEMA_VERSION) {
        yield* sql.unsafe("COMMIT")
        return current
      }
      for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
        const columns = yield* sql<{ name: string }>`PRAGMA table_info(renew_grants)`
        const existing = new Set(columns.map((column) => column.name))
        for (const statement of MIGRATIONS[version - 1]!(existing)) yield* sql.unsafe(statement)
      }
      yield* sql.unsafe(`PRAGMA user_version = ${SCHEMA_VERSION}`)
      yield* sql.unsafe("COMMIT")
      return SCHEMA_VERSION
    }).pipe(Effect.onError(() => Effect.ignore(sql.unsafe("ROLLBACK"))))
  })
