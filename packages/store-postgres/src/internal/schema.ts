/**
 * The PostgreSQL store's tables and their versioned migrations.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** @internal The schema version this code writes and understands. */
export const SCHEMA_VERSION = 2

/** @internal Qualified table names (`schema.prefix…`), checked identifiers. */
export interface Tables {
  readonly schema: string
  readonly prefix: string
  readonly grants: string
  readonly leases: string
  readonly issuerPauses: string
  readonly versions: string
}

/** @internal */
export const tables = (schema: string, prefix: string): Tables => ({
  schema,
  prefix,
  grants: `${schema}.${prefix}grants`,
  leases: `${schema}.${prefix}leases`,
  issuerPauses: `${schema}.${prefix}issuer_pauses`,
  versions: `${schema}.${prefix}schema_version`
})

const MIGRATIONS: ReadonlyArray<(t: Tables) => ReadonlyArray<string>> = [
  // 1: grants and leases.
  (t) => [
    `CREATE TABLE IF NOT EXISTS ${t.grants} (
      key TEXT PRIMARY KEY,
      version BIGINT NOT NULL,
      access_token TEXT,
      refresh_token TEXT,
      token_type TEXT NOT NULL,
      issued_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      scope TEXT,
      refresh_token_expires_at BIGINT,
      refresh_started_at BIGINT,
      reauth_required TEXT,
      key_id TEXT,
      write_id TEXT,
      updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`,
    // UNLOGGED: a lease is coordination, not data. Claiming and releasing one then costs no WAL flush (the grant
    // writes do), and a crash that empties the table only frees leases whose holders' renewals fail anyway; the
    // grant's version check still fences any write.
    `CREATE UNLOGGED TABLE IF NOT EXISTS ${t.leases} (
      key TEXT PRIMARY KEY,
      owner TEXT NOT NULL,
      expires_at TIMESTAMPTZ NOT NULL
    )`
  ],
  // 2: the scheduler's fields (in clear: not secrets), the due index and issuer pauses. `due_at` is
  // TokenStore.dueAtOf of the grant as written (NULL: never due), moved to `holdUntil` by a claim. A grant written
  // before this migration enters the due index with its next write.
  (t) => [
    `ALTER TABLE ${t.grants}
      ADD COLUMN IF NOT EXISTS refresh_due_at BIGINT,
      ADD COLUMN IF NOT EXISTS failing_since BIGINT,
      ADD COLUMN IF NOT EXISTS due_at BIGINT`,
    `CREATE INDEX IF NOT EXISTS ${t.prefix}grants_due_at ON ${t.grants} (due_at) WHERE due_at IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${t.issuerPauses} (
      issuer TEXT PRIMARY KEY,
      paused_until BIGINT NOT NULL
    )`
  ]
]

/**
 * Brings the tables to `SCHEMA_VERSION` in one transaction and returns the version found before. A newer version is
 * left alone (returned as found). Replicas starting together are serialized by a transaction-scoped advisory lock
 * (released at commit: no session state survives, so this is safe behind transaction pooling).
 *
 * @internal
 */
export const migrate = (sql: SqlClient.SqlClient, t: Tables): Effect.Effect<number, SqlError> =>
  sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`renew:migrate:${t.grants}`}))`
    const exists = yield* sql`SELECT 1 FROM pg_namespace WHERE nspname = ${t.schema}`
    if (exists.length === 0) yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS ${t.schema}`)
    yield* sql.unsafe(
      `CREATE TABLE IF NOT EXISTS ${t.versions} (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`
    )
    const [{ current }] = (yield* sql.unsafe(
      `SELECT COALESCE(MAX(version), 0)::int AS current FROM ${t.versions}`
    )) as unknown as [{ current: number }]
    if (current > SCHEMA_VERSION) return current
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
      for (const statement of MIGRATIONS[version - 1]!(t)) yield* sql.unsafe(statement)
      yield* sql.unsafe(`INSERT INTO ${t.versions} (version) VALUES (${version})`)
    }
    return current
  }))
