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
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import { RefreshError, Token, TokenStore } from "@renew/core"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as GrantRecord from "@renew/store-kit/GrantRecord"
import { makeWithLock } from "@renew/store-kit/Lease"
import * as StoreOptions from "@renew/store-kit/StoreOptions"
import { describeUrl, explain } from "./internal/errors.js"
import * as Scheduling from "./internal/scheduling.js"
import * as Schema from "./internal/schema.js"

export type { Encryption } from "@renew/store-kit/Cipher"

/**
 * The schema version this code writes and understands.
 *
 * @since 0.1.0
 */
export const SCHEMA_VERSION = Schema.SCHEMA_VERSION

/**
 * @since 0.1.0
 * @category models
 */
export interface PgTokenStoreOptions extends StoreOptions.CommonOptions {
  /** `postgres://user:password@host:port/database?…` (the DATABASE_URL convention). Redacted: it may hold a password. */
  readonly url: Redacted.Redacted<string>
  /** The schema holding the tables; created if missing. Default `"public"`. */
  readonly schema?: string | undefined
  /**
   * Prefix of the table names: `<prefix>grants`, `<prefix>leases`, `<prefix>issuer_pauses`, `<prefix>schema_version`.
   * Default `"renew_"`.
   */
  readonly tablePrefix?: string | undefined
  /**
   * Accept `synchronous_commit = off`, under which a PostgreSQL crash can lose acknowledged writes (up to three times
   * `wal_writer_delay`), rotated refresh tokens included. The store then reports `best-effort`. Default false.
   */
  readonly allowAsyncCommit?: boolean | undefined
  /** Per connection attempt. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** No statement waits longer than this (it is cancelled and fails with `StoreError`). Default 5 s, at most TTL/3. */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** Pool size of this process. Default 10. */
  readonly maxConnections?: number | undefined
  /** `application_name` of the connections (visible in pg_stat_activity). Default `"renew"`. */
  readonly applicationName?: string | undefined
}


// A row of the grants table; PostgreSQL hands bigints back as strings, which GrantRecord.decode accepts.
interface GrantRow {
  readonly key: string
  readonly version: string | number
  readonly [field: string]: unknown
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,40}$/

/**
 * Opens a pool to the database at `options.url`, checks `synchronous_commit`, migrates the tables, and returns the
 * store. Fails with `StoreError` when the database cannot be reached, its schema is newer than this code, or commits
 * are asynchronous without `allowAsyncCommit`; with `ConfigurationError` for inconsistent options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PgTokenStoreOptions
): Effect.Effect<TokenStore.TokenStore["Type"], RefreshError.StoreError | RefreshError.ConfigurationError, Scope.Scope> =>
  Effect.gen(function*() {
    const url = Redacted.value(options.url)
    const where = describeUrl(url)
    const schemaName = options.schema ?? "public"
    const tablePrefix = options.tablePrefix ?? "renew_"
    const { cipher, lease, maxPollMillis } = yield* StoreOptions.normalize(options)
    const leaseTtlMillis = lease.ttlMillis
    const queryTimeoutMillis = yield* StoreOptions.callTimeout("queryTimeout", options.queryTimeout, 5000, lease)
    const connectTimeoutMillis = yield* StoreOptions.millis("connectTimeout", options.connectTimeout, 5000, 1)
    for (const [option, value] of [["schema", schemaName], ["tablePrefix", tablePrefix + "x"]] as const) {
      if (!IDENTIFIER.test(value)) {
        return yield* new RefreshError.ConfigurationError({
          option,
          detail: "must be lower-case letters, digits and underscores, starting with a letter or underscore"
        })
      }
    }
    const tables = Schema.tables(schemaName, tablePrefix)

    const context = yield* Layer.build(PgClient.layer({
      url: options.url,
      connectTimeout: Duration.millis(connectTimeoutMillis),
      maxConnections: options.maxConnections ?? 10,
      applicationName: options.applicationName ?? "renew",
      idleTimeout: Duration.seconds(30)
    })).pipe(
      Effect.catchAllCause((cause) => Effect.fail(storeError("open", explain(where, Cause.squash(cause)))))
    )
    const sql = Context.get(context, SqlClient.SqlClient)

    /** A bounded statement: cancelled (pg_cancel_backend) and failed after queryTimeout, even in uninterruptible code. */
    const run = <A>(operation: string, statement: Effect.Effect<A, SqlError>): Effect.Effect<A, RefreshError.StoreError> =>
      Effect.interruptible(statement).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(queryTimeoutMillis),
          onTimeout: () =>
            storeError(operation, `PostgreSQL at ${where} did not answer within queryTimeout (${queryTimeoutMillis} ms). Check its load and locks (pg_stat_activity)`)
        }),
        Effect.catchAllCause((cause) => {
          if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
          const failure = Cause.squash(cause)
          return Effect.fail(
            failure instanceof RefreshError.StoreError ? failure : storeError(operation, explain(where, failure))
          )
        })
      )

    // DU-2: asynchronous commit can lose acknowledged writes in a crash.
    const [{ value: synchronousCommit }] = (yield* run(
      "open",
      sql<{ value: string }>`SELECT current_setting('synchronous_commit') AS value`
    )) as unknown as [{ value: string }]
    let durability: TokenStore.Durability = "durable"
    if (synchronousCommit === "off") {
      if (options.allowAsyncCommit !== true) {
        return yield* storeError(
          "open",
          `synchronous_commit is off for these connections (set on the database, the role, or the connection's options), so a ` +
            `PostgreSQL crash can lose acknowledged grant writes, rotated refresh tokens included. Turn it on ` +
            `(ALTER ROLE … / ALTER DATABASE … SET synchronous_commit = on, or drop it from the connection options), or set ` +
            `allowAsyncCommit: true to accept the risk`
        )
      }
      durability = "best-effort"
      yield* Effect.logWarning(
        `renew: PostgreSQL token store at ${where} runs best-effort: synchronous_commit is off (allowAsyncCommit is set)`
      )
    }

    // Migrations, serialized across replicas (see Schema.migrate).
    yield* run("migrate", Schema.migrate(sql, tables)).pipe(
      Effect.flatMap((found) =>
        found > SCHEMA_VERSION
          ? Effect.fail(storeError(
            "open",
            `the renew tables in schema ${schemaName} are at schema version ${found}, newer than this @renew/store-postgres understands (${SCHEMA_VERSION}). ` +
              "Upgrade @renew/store-postgres; nothing was changed"
          ))
          : Effect.void
      )
    )

    const grants = sql(tables.grants)
    const leases = sql(tables.leases)

    const decode = (row: GrantRow): Effect.Effect<Token.Grant, RefreshError.StoreError> =>
      Either.match(GrantRecord.decode(row.key, { ...row }, cipher), {
        onLeft: (detail) => Effect.fail(storeError("get", `${detail} (table ${tables.grants})`)),
        onRight: Effect.succeed
      })

    const get = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("get", key),
        Effect.flatMap(
          run("get", sql<GrantRow>`SELECT * FROM ${grants} WHERE key = ${key}`),
          (rows) => (rows.length === 0 ? Effect.succeedNone : Effect.asSome(decode(rows[0]!)))
        )
      )

    const currentVersion = (key: string) =>
      run("compareAndSet", sql<{ version: string; write_id: string | null }>`SELECT version, write_id FROM ${grants} WHERE key = ${key}`)

    const compareAndSet = (key: string, expectedVersion: number | undefined, grant: Token.Grant) =>
      Effect.gen(function*() {
        const version = (expectedVersion ?? 0) + 1
        const prepared = yield* GrantRecord.prepare(key, version, grant, cipher)
        const writeId = Crypto.randomUUID()
        // The due index entry goes with the grant, in the same statement.
        const columns = { version, ...prepared.record, due_at: prepared.dueAt, write_id: writeId }
        // One statement each: the version check and the write cannot be split.
        const statement = expectedVersion === undefined
          ? sql`INSERT INTO ${grants} ${sql.insert({ key, ...columns })} ON CONFLICT (key) DO NOTHING RETURNING version`
          : sql`UPDATE ${grants} SET ${sql.update(columns)}, updated_at = now() WHERE key = ${key} AND version = ${expectedVersion} RETURNING version`
        const written = yield* run("compareAndSet", statement).pipe(
          // The connection dropped (or the statement timed out) with the outcome unknown: the write id tells whether
          // this very write was committed.
          Effect.catchAll((error) =>
            Effect.flatMap(Effect.either(currentVersion(key)), (found) =>
              found._tag === "Right" && found.right[0]?.write_id === writeId
                ? Effect.succeed([{ version }])
                : Effect.fail(error))
          )
        )
        if (written.length === 1) return prepared.grant
        const current = yield* currentVersion(key)
        return yield* TokenStore.staleWrite(expectedVersion, current.length === 1 ? Number(current[0]!.version) : undefined)
      })

    const remove = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("delete", key),
        run("delete", sql`DELETE FROM ${grants} WHERE key = ${key}`).pipe(Effect.asVoid)
      )

    // Leases: single autocommit statements on the database's clock (clock_timestamp(), not the caller's).
    const withLock = makeWithLock({
      tryAcquire: (key, owner) =>
        Effect.map(
          run(
            "lock",
            sql<{ acquired: string | number; remaining: string | number | null }>`
              WITH attempt AS (
                INSERT INTO ${leases} AS l (key, owner, expires_at)
                VALUES (${key}, ${owner}, clock_timestamp() + ${leaseTtlMillis}::integer * interval '1 millisecond')
                ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                WHERE l.expires_at <= clock_timestamp() OR l.owner = excluded.owner
                RETURNING owner
              )
              SELECT (SELECT count(*) FROM attempt) AS acquired,
                     (SELECT floor(extract(epoch FROM (expires_at - clock_timestamp())) * 1000)
                        FROM ${leases} WHERE key = ${key}) AS remaining`
          ),
          (rows) => {
            const row = rows[0]
            const remaining = row?.remaining === null || row?.remaining === undefined ? undefined : Number(row.remaining)
            return {
              acquired: Number(row?.acquired ?? 0) === 1,
              holderRemainingMillis: remaining !== undefined && remaining >= 0 ? remaining : undefined
            }
          }
        ),
      renew: (key, owner) =>
        Effect.map(
          run(
            "lock",
            sql`UPDATE ${leases} SET expires_at = clock_timestamp() + ${leaseTtlMillis}::integer * interval '1 millisecond'
                WHERE key = ${key} AND owner = ${owner} AND expires_at > clock_timestamp() RETURNING owner`
          ),
          (rows) => rows.length === 1
        ),
      // Owner-checked: a holder whose lease expired and was taken over cannot release the new holder's lease (LK-1).
      release: (key, owner) => Effect.asVoid(run("unlock", sql`DELETE FROM ${leases} WHERE key = ${key} AND owner = ${owner}`))
    }, {
      parameters: lease,
      maxPollMillis,
      backend: "PostgreSQL"
    })

    return TokenStore.TokenStore.of({
      durability,
      lease,
      get,
      compareAndSet,
      delete: remove,
      withLock,
      scheduling: Scheduling.make(sql, tables, run)
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PgTokenStoreOptions
): Layer.Layer<TokenStore.TokenStore, RefreshError.StoreError | RefreshError.ConfigurationError> =>
  Layer.scoped(TokenStore.TokenStore, make(options))

/**
 * Options from `Config`, e.g. `PgTokenStore.layerConfig({ url: Config.redacted("DATABASE_URL") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<PgTokenStoreOptions>
): Layer.Layer<
  TokenStore.TokenStore,
  RefreshError.StoreError | RefreshError.ConfigurationError | ConfigError.ConfigError
> => Layer.scoped(TokenStore.TokenStore, Effect.flatMap(Config.unwrap(options), make))
