/**
 * The durable embedded TokenStore: one SQLite file (WAL mode) shared by every process on the machine.
 *
 * - Writes are compare-and-set on a version column: a stale writer gets `StaleWrite` and changes nothing.
 * - The grant lock is a lease row with an owner and an expiry: one process refreshes a grant at a time; a dead
 *   holder's lease is taken over once it expires (LK-2); renewal and release check the owner (LK-1, LK-3).
 * - Optional AES-256-GCM encryption of the token columns, with a key id per row for key rotation.
 * - The file is created with mode 0600. A corrupt file, a newer schema or an unwritable location is a typed
 *   `StoreError` that says what to do; nothing is overwritten.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { RefreshError, Token, TokenStore } from "@renew/core"
import * as Cipher from "@renew/store-kit/Cipher"
import * as GrantRecord from "@renew/store-kit/GrantRecord"
import * as Lease from "@renew/store-kit/Lease"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"

/**
 * @since 0.1.0
 * @category models
 */
export type Encryption = Cipher.Encryption

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteTokenStoreOptions {
  /** The database file; its directory is created if missing. */
  readonly filename: string
  /** Lease lifetime. Default 30 seconds; renewed every third of it while a refresh runs. */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** How long to wait for another process's lease before `LockTimeout`. Default: twice the lease TTL. */
  readonly lockWaitTimeout?: Duration.DurationInput | undefined
  readonly encryption?: Encryption | undefined
}

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = 1

const MIGRATION_1 = [
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
]

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
    const leaseTtlMillis = Duration.toMillis(options.leaseTtl ?? Duration.seconds(30))
    const lockWaitMillis = Duration.toMillis(options.lockWaitTimeout ?? Duration.millis(leaseTtlMillis * 2))
    const lease = Lease.parameters(leaseTtlMillis, lockWaitMillis)
    const cipher = yield* Effect.try({
      try: () => Cipher.makeCipher(options.encryption),
      catch: (error) => error as RefreshError.ConfigurationError
    })
    yield* prepareFile(filename)

    // better-sqlite3 throws while opening (a corrupt file fails on the WAL pragma): turn those defects into errors.
    const connect = (config: SqliteClient.SqliteClientConfig) =>
      Layer.build(SqliteClient.layer(config).pipe(Layer.provide(Reactivity.layer))).pipe(
        Effect.catchAllCause((cause) => Effect.fail(storeError("open", explain(filename, Cause.squash(cause)))))
      )
    // Look before writing anything: a corrupt file or a newer schema must be left exactly as it is.
    yield* Effect.scoped(Effect.gen(function*() {
      const probe = yield* Effect.provide(SqlClient.SqlClient, yield* connect({ filename, readonly: true, disableWAL: true }))
      const rows = yield* probe`PRAGMA user_version`.pipe(
        Effect.catchAllCause((cause) => Effect.fail(storeError("open", explain(filename, causeOf(Cause.squash(cause))))))
      )
      const found = Number((rows[0] as { user_version?: number } | undefined)?.user_version ?? 0)
      if (found > SCHEMA_VERSION) {
        return yield* storeError(
          "open",
          `schema version ${found} of ${filename} is newer than this @renew/store-sqlite understands (${SCHEMA_VERSION}). Upgrade @renew/store-sqlite; the file was not changed`
        )
      }
    }))
    const context = yield* connect({ filename })
    const sql = yield* Effect.provide(SqlClient.SqlClient, context)
    const run = <A>(operation: string, effect: Effect.Effect<A, SqlError>) =>
      effect.pipe(
        Effect.catchAllCause((cause) => Effect.fail(storeError(operation, explain(filename, causeOf(Cause.squash(cause))))))
      )

    // Schema: PRAGMA user_version is the migration number. A newer file is refused, never downgraded.
    yield* run(
      "migrate",
      Effect.gen(function*() {
        const [{ user_version }] = (yield* sql`PRAGMA user_version`) as unknown as [{ user_version: number }]
        if (user_version < SCHEMA_VERSION) {
          yield* sql.withTransaction(Effect.gen(function*() {
            for (const statement of MIGRATION_1) yield* sql.unsafe(statement)
            yield* sql.unsafe(`PRAGMA user_version = ${SCHEMA_VERSION}`)
          }))
        }
      })
    )

    const decode = (row: GrantRow): Effect.Effect<Token.Grant, RefreshError.StoreError> =>
      Either.match(GrantRecord.decode(row.key, { ...row }, cipher), {
        onLeft: (detail) => Effect.fail(storeError("get", detail)),
        onRight: Effect.succeed
      })

    const get = (key: string) =>
      Effect.flatMap(
        run("get", sql<GrantRow>`SELECT * FROM renew_grants WHERE key = ${key}`),
        (rows) => rows.length === 0 ? Effect.succeedNone : Effect.asSome(decode(rows[0]!))
      )

    const compareAndSet = (key: string, expectedVersion: number | undefined, grant: Token.Grant) =>
      Effect.gen(function*() {
        const version = (expectedVersion ?? 0) + 1
        const columns = { version, ...GrantRecord.encode(key, grant, cipher), updated_at: now() }
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
        if (written.length === 1) return TokenStore.withVersion(grant, version)
        const current = yield* run("compareAndSet", sql<{ version: number }>`SELECT version FROM renew_grants WHERE key = ${key}`)
        return yield* new RefreshError.StaleWrite({
          ...(expectedVersion !== undefined ? { expectedVersion } : {}),
          ...(current.length === 1 ? { actualVersion: Number(current[0]!.version) } : {})
        })
      })

    const remove = (key: string) => run("delete", sql`DELETE FROM renew_grants WHERE key = ${key}`).pipe(Effect.asVoid)

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
    }, { parameters: lease, maxPollMillis: 100, backend: "SQLite" })

    return TokenStore.TokenStore.of({
      durability: "durable",
      lease,
      get,
      compareAndSet,
      delete: remove,
      withLock
    })
  })

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
