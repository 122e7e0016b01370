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
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { RefreshError, Token, TokenStore } from "@renew/core"
import type * as Cipher from "@renew/store-kit/Cipher"
import * as GrantRecord from "@renew/store-kit/GrantRecord"
import * as Lease from "@renew/store-kit/Lease"
import * as StoreOptions from "@renew/store-kit/StoreOptions"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Scheduling from "./internal/scheduling.js"
import * as Schema from "./internal/schema.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Encryption = Cipher.Encryption

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteTokenStoreOptions extends StoreOptions.CommonOptions {
  /** The database file; its directory is created if missing. */
  readonly filename: string
}

/**
 * The schema version this code writes and understands.
 *
 * @since 0.1.0
 */
export const SCHEMA_VERSION = Schema.SCHEMA_VERSION

// A row of renew_grants: the grant's record (GrantRecord) under its key and version.
interface GrantRow extends GrantRecord.GrantRecord {
  readonly key: string
  readonly version: number
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

/** Turns what better-sqlite3 says into advice. Never quotes row data. */
const explain = (filename: string, cause: unknown): string => {
  const code = typeof cause === "object" && cause !== null ? String((cause as { code?: unknown }).code ?? "") : ""
  const message = cause instanceof Error ? cause.message : String(cause)
  if (code === "SQLITE_NOTADB" || /not a database/i.test(message)) {
    return `${filename} is not a SQLite database or is corrupt. Nothing was overwritten: move the file away (keep it for forensics) and authorize again, or restore a backup`
  }
  if (code === "SQLITE_CORRUPT") return `${filename} is corrupt. Nothing was overwritten: restore a backup or move it away`
  if (code === "SQLITE_READONLY" || /readonly|read-only/i.test(message)) {
    return `${filename} is read-only for this process. Check the file's and its directory's permissions`
  }
  if (code === "SQLITE_CANTOPEN" || /unable to open/i.test(message)) {
    return `cannot open ${filename}. Check that its directory exists and is writable by this process`
  }
  if (code === "SQLITE_BUSY") return `${filename} stayed locked by another process for too long`
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return `cannot create or open ${filename}: permission denied or read-only file system. Choose a writable location`
  }
  if (code === "ENOTDIR" || code === "EEXIST") {
    return `cannot open ${filename}: a component of its directory path is a file, not a directory`
  }
  return `${message}${code ? ` (${code})` : ""}`
}

/** The SqlError's cause, or the error itself. */
const causeOf = (error: SqlError | unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? (error as { cause: unknown }).cause : error

/** A connection to `filename`; better-sqlite3 throws while opening (a corrupt file fails on the WAL pragma). */
const connect = (filename: string, config: SqliteClient.SqliteClientConfig) =>
  Layer.build(SqliteClient.layer(config).pipe(Layer.provide(Reactivity.layer))).pipe(
    Effect.flatMap((context) => Effect.provide(SqlClient.SqlClient, context)),
    Effect.catchAllCause((cause) => Effect.fail(storeError("open", explain(filename, Cause.squash(cause)))))
  )

/** The schema version of an open file (`PRAGMA user_version`). */
const schemaVersion = (filename: string, sql: SqlClient.SqlClient) =>
  sql`PRAGMA user_version`.pipe(
    Effect.map((rows) => Number((rows[0] as { user_version?: number } | undefined)?.user_version ?? 0)),
    Effect.catchAllCause((cause) => Effect.fail(storeError("open", explain(filename, causeOf(Cause.squash(cause))))))
  )

const newerSchema = (filename: string, found: number) =>
  storeError(
    "open",
    `schema version ${found} of ${filename} is newer than this @renew/store-sqlite understands (${SCHEMA_VERSION}). Upgrade @renew/store-sqlite; the file was not changed`
  )

/** Creates the file with mode 0600 (and its directory with 0700) before SQLite opens it. */
const prepareFile = (filename: string): Effect.Effect<void, RefreshError.StoreError> =>
  Effect.try({
    try: () => {
      Fs.mkdirSync(Path.dirname(filename), { recursive: true, mode: 0o700 })
      // "a" never truncates: an existing file is left exactly as it is.
      Fs.closeSync(Fs.openSync(filename, "a", 0o600))
    },
    catch: (cause) => storeError("open", explain(filename, cause))
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqliteTokenStoreOptions
): Effect.Effect<TokenStore.TokenStore["Type"], RefreshError.StoreError | RefreshError.ConfigurationError, Scope.Scope> =>
  Effect.gen(function*() {
    const filename = Path.resolve(options.filename)
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const { cipher, lease, maxPollMillis } = yield* StoreOptions.normalize(options)
    const leaseTtlMillis = lease.ttlMillis
    yield* prepareFile(filename)

    // Look before writing anything: a corrupt file or a newer schema must be left exactly as it is.
    yield* Effect.scoped(Effect.gen(function*() {
      const probe = yield* connect(filename, { filename, readonly: true, disableWAL: true })
      const found = yield* schemaVersion(filename, probe)
      if (found > SCHEMA_VERSION) return yield* newerSchema(filename, found)
    }))
    const sql = yield* connect(filename, { filename })
    const run = <A>(operation: string, effect: Effect.Effect<A, SqlError>) =>
      effect.pipe(
        Effect.catchAllCause((cause) => Effect.fail(storeError(operation, explain(filename, causeOf(Cause.squash(cause))))))
      )

    // Schema: PRAGMA user_version is the migration number. A newer file is refused, never downgraded.
    const migrated = yield* run("migrate", Schema.migrate(sql))
    if (migrated > SCHEMA_VERSION) return yield* newerSchema(filename, migrated)

    const decode = (row: GrantRow): Effect.Effect<Token.Grant, RefreshError.StoreError> =>
      Either.match(GrantRecord.decode(row.key, { ...row }, cipher), {
        onLeft: (detail) => Effect.fail(storeError("get", detail)),
        onRight: Effect.succeed
      })

    const get = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("get", key),
        Effect.flatMap(
          run("get", sql<GrantRow>`SELECT * FROM renew_grants WHERE key = ${key}`),
          (rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(decode(rows[0]!))
        )
      )

    const compareAndSet = (key: string, expectedVersion: number | undefined, grant: Token.Grant) =>
      Effect.gen(function*() {
        const version = (expectedVersion ?? 0) + 1
        const prepared = yield* GrantRecord.prepare(key, version, grant, cipher)
        // The due index entry goes with the grant, in the same statement.
        const columns = { version, ...prepared.record, due_at: prepared.dueAt, updated_at: now() }
        // One statement each: SQLite runs it atomically, so the version check and the write cannot be split.
        const written = expectedVersion === undefined
          ? yield* run(
            "compareAndSet",
            sql`INSERT INTO renew_grants ${sql.insert({ key, ...columns })} ON CONFLICT(key) DO NOTHING RETURNING version`
          )
          : yield* run(
            "compareAndSet",
            sql`UPDATE renew_grants SET ${sql.update(columns)} WHERE key = ${key} AND version = ${expectedVersion} RETURNING version`
          )
        if (written.length === 1) return prepared.grant
        const current = yield* run("compareAndSet", sql<{ version: number }>`SELECT version FROM renew_grants WHERE key = ${key}`)
        return yield* TokenStore.staleWrite(expectedVersion, current.length === 1 ? Number(current[0]!.version) : undefined)
      })

    const remove = (key: string) =>
      Effect.zipRight(
        GrantRecord.checkKey("delete", key),
        run("delete", sql`DELETE FROM renew_grants WHERE key = ${key}`).pipe(Effect.asVoid)
      )

    // Leases. Time is wall-clock milliseconds: every process on the machine reads the same clock. Each operation is
    // one statement, which SQLite runs atomically; renewal and release are conditional on the owner (LK-1).
    const withLock = Lease.makeWithLock({
      tryAcquire: (key, owner) =>
        Effect.suspend(() =>
          run(
            "lock",
            sql<{ owner: string; expires_at: number }>`INSERT INTO renew_leases (key, owner, expires_at)
              VALUES (${key}, ${owner}, ${now() + leaseTtlMillis})
              ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
              WHERE renew_leases.expires_at <= ${now()} OR renew_leases.owner = excluded.owner
              RETURNING owner, expires_at`
          )
        ).pipe(
          Effect.flatMap((rows): Effect.Effect<Lease.Attempt, RefreshError.StoreError> =>
            rows.length === 1
              ? Effect.succeed({ acquired: true })
              : Effect.map(
                run("lock", sql<{ expires_at: number }>`SELECT expires_at FROM renew_leases WHERE key = ${key}`),
                (holder) => ({
                  acquired: false,
                  ...(holder.length === 1 ? { holderRemainingMillis: Number(holder[0]!.expires_at) - now() } : {})
                })
              )
          )
        ),
      renew: (key, owner) =>
        Effect.suspend(() =>
          run(
            "lock",
            // A lapsed lease is not revived, even if nobody took it: "lost" means the same on every store.
            sql`UPDATE renew_leases SET expires_at = ${now() + leaseTtlMillis}
              WHERE key = ${key} AND owner = ${owner} AND expires_at > ${now()} RETURNING owner`
          )
        ).pipe(Effect.map((rows) => rows.length === 1)),
      release: (key, owner) =>
        run("unlock", sql`DELETE FROM renew_leases WHERE key = ${key} AND owner = ${owner}`).pipe(Effect.asVoid)
    }, { parameters: lease, maxPollMillis, backend: "SQLite" })

    return TokenStore.TokenStore.of({
      durability: "durable",
      lease,
      get,
      compareAndSet,
      delete: remove,
      withLock,
      scheduling: Scheduling.make(sql, run)
    })
  })

/**
 * What `listGrants` tells about a grant: everything but its tokens. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantInfo {
  readonly key: string
  readonly version: number
  readonly tokenType: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly scope: string | undefined
  readonly refreshTokenExpiresAt: number | undefined
  /** Set while a refresh is in flight (or was interrupted by a crash: see `leaseExpiresAt`). */
  readonly refreshStartedAt: number | undefined
  /** Why the grant needs a new authorization (a `ReauthReason`), if it does. */
  readonly reauthRequired: string | undefined
  /** The id of the encryption key that sealed its tokens; `undefined` when they are stored in plaintext. */
  readonly keyId: string | undefined
  /** When the refresh lease on the grant expires, if one is recorded (live, or left by a holder that died). */
  readonly leaseExpiresAt: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListGrantsOptions {
  /** Only grants whose key sorts after this one (the previous page's `next`). */
  readonly after?: string | undefined
  /** Grants per page: default 100, at most 1,000. */
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface GrantPage {
  /** In key order. */
  readonly grants: ReadonlyArray<GrantInfo>
  /** Pass as `after` for the next page; `undefined` on the last one. */
  readonly next: string | undefined
}

interface InfoRow {
  readonly key: string
  readonly version: number
  readonly token_type: string
  readonly issued_at: number
  readonly expires_at: number
  readonly scope: string | null
  readonly refresh_token_expires_at: number | null
  readonly refresh_started_at: number | null
  readonly reauth_required: string | null
  readonly key_id: string | null
  readonly lease_expires_at: number | null
}

const optional = <A>(value: A | null): A | undefined => (value === null ? undefined : value)

/**
 * Lists the grants of an existing store file, a page at a time, read-only: the file is never created, written or
 * migrated, the token columns are never read, and nothing is decrypted (no keys are needed). A missing file, a file
 * that is not a Renew store, or one with a newer schema is a `StoreError` that says so.
 *
 * @since 0.1.0
 * @category diagnostics
 */
export const listGrants = (
  filename: string,
  options: ListGrantsOptions = {}
): Effect.Effect<GrantPage, RefreshError.StoreError> =>
  Effect.scoped(Effect.gen(function*() {
    const resolved = Path.resolve(filename)
    if (!Fs.existsSync(resolved)) {
      return yield* storeError("inspect", `${resolved} does not exist. Check the path: it is the file your service configures for @renew/store-sqlite`)
    }
    const limit = Math.max(1, Math.min(1000, Math.floor(options.limit ?? 100)))
    const sql = yield* connect(resolved, { filename: resolved, readonly: true, disableWAL: true })
    const found = yield* schemaVersion(resolved, sql)
    if (found > SCHEMA_VERSION) return yield* newerSchema(resolved, found)
    if (found === 0) return yield* storeError("inspect", `${resolved} is not a Renew store (it has no grants table)`)
    const rows = yield* sql<InfoRow>`
      SELECT g.key, g.version, g.token_type, g.issued_at, g.expires_at, g.scope, g.refresh_token_expires_at,
             g.refresh_started_at, g.reauth_required, g.key_id, l.expires_at AS lease_expires_at
      FROM renew_grants g LEFT JOIN renew_leases l ON l.key = g.key
      WHERE ${options.after === undefined ? sql`1 = 1` : sql`g.key > ${options.after}`}
      ORDER BY g.key LIMIT ${limit}`.pipe(
      Effect.catchAllCause((cause) => Effect.fail(storeError("inspect", explain(resolved, causeOf(Cause.squash(cause))))))
    )
    const grants = rows.map((row): GrantInfo => ({
      key: row.key,
      version: Number(row.version),
      tokenType: row.token_type,
      issuedAt: Number(row.issued_at),
      expiresAt: Number(row.expires_at),
      scope: optional(row.scope),
      refreshTokenExpiresAt: row.refresh_token_expires_at === null ? undefined : Number(row.refresh_token_expires_at),
      refreshStartedAt: row.refresh_started_at === null ? undefined : Number(row.refresh_started_at),
      reauthRequired: optional(row.reauth_required),
      keyId: optional(row.key_id),
      leaseExpiresAt: row.lease_expires_at === null ? undefined : Number(row.lease_expires_at)
    }))
    return { grants, next: rows.length === limit ? rows[rows.length - 1]!.key : undefined }
  }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: SqliteTokenStoreOptions
): Layer.Layer<TokenStore.TokenStore, RefreshError.StoreError | RefreshError.ConfigurationError> =>
  Layer.scoped(TokenStore.TokenStore, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<SqliteTokenStoreOptions>
): Layer.Layer<
  TokenStore.TokenStore,
  RefreshError.StoreError | RefreshError.ConfigurationError | ConfigError.ConfigError
> => Layer.scoped(TokenStore.TokenStore, Effect.flatMap(Config.unwrap(options), make))
