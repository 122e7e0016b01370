/**
 * Access to a `@renew/store-sqlite` file from the CLI: a read-only listing of grant metadata straight from SQLite
 * (the TokenStore port has no "list keys"; token columns are never selected, nothing is decrypted), and opening the
 * store proper for commands that refresh.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"

/** What the listing reads: metadata only. @internal */
export interface GrantRow {
  readonly key: string
  readonly version: number
  readonly tokenType: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly scope: string | undefined
  readonly refreshTokenExpiresAt: number | undefined
  readonly refreshStartedAt: number | undefined
  readonly reauthRequired: string | undefined
  readonly keyId: string | undefined
  /** Expiry of a live or stale refresh lease on the grant, if one is recorded. */
  readonly leaseExpiresAt: number | undefined
}

/** A store file that cannot be used, with what to do about it. @internal */
export class StoreFileError {
  readonly _tag = "StoreFileError"
  constructor(readonly message: string) {}
}

/** @internal */
export const requireFile = (filename: string): Effect.Effect<string, StoreFileError> =>
  Effect.suspend(() => {
    const resolved = Path.resolve(filename)
    try {
      const stat = Fs.statSync(resolved)
      if (!stat.isFile()) return Effect.fail(new StoreFileError(`${resolved} is not a file`))
      return Effect.succeed(resolved)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      return Effect.fail(
        new StoreFileError(
          code === "ENOENT"
            ? `store file ${resolved} does not exist. Check the --store path (it is the file your service configures for @renew/store-sqlite)`
            : `cannot read store file ${resolved} (${code ?? "unknown error"})`
        )
      )
    }
  })

interface RawRow {
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

const explain = (filename: string, cause: unknown): string => {
  const message = cause instanceof Error ? cause.message : String(cause)
  if (/no such table/i.test(message)) return `${filename} is not a Renew store (it has no renew_grants table)`
  if (/not a database|file is encrypted/i.test(message)) return `${filename} is not a SQLite database or is corrupt`
  if (/unable to open/i.test(message)) return `cannot open ${filename} (check the path and its permissions)`
  return `cannot read ${filename}: ${message}`
}

const causeOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "cause" in error ? (error as { cause: unknown }).cause : error

/**
 * Lists every grant's metadata, read-only. Never selects the token columns.
 *
 * @internal
 */
export const listGrants = (filename: string): Effect.Effect<ReadonlyArray<GrantRow>, StoreFileError> =>
  Effect.gen(function*() {
    const resolved = yield* requireFile(filename)
    const rows = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql<RawRow>`
        SELECT g.key, g.version, g.token_type, g.issued_at, g.expires_at, g.scope, g.refresh_token_expires_at,
               g.refresh_started_at, g.reauth_required, g.key_id, l.expires_at AS lease_expires_at
        FROM renew_grants g LEFT JOIN renew_leases l ON l.key = g.key
        ORDER BY g.key`
    }).pipe(
      Effect.provide(
        SqliteClient.layer({ filename: resolved, readonly: true, disableWAL: true }).pipe(
          Layer.provide(Reactivity.layer)
        )
      ),
      Effect.catchAllCause((cause) =>
        Effect.fail(new StoreFileError(explain(resolved, causeOf(Cause.squash(cause)))))
      )
    )
    return rows.map((row): GrantRow => ({
      key: row.key,
      version: Number(row.version),
      tokenType: row.token_type,
      issuedAt: Number(row.issued_at),
      expiresAt: Number(row.expires_at),
      scope: row.scope ?? undefined,
      refreshTokenExpiresAt: row.refresh_token_expires_at === null ? undefined : Number(row.refresh_token_expires_at),
      refreshStartedAt: row.refresh_started_at === null ? undefined : Number(row.refresh_started_at),
      reauthRequired: row.reauth_required ?? undefined,
      keyId: row.key_id ?? undefined,
      leaseExpiresAt: row.lease_expires_at === null ? undefined : Number(row.lease_expires_at)
    }))
  })

/** @internal */
export interface OpenStoreOptions {
  readonly filename: string
  /** The store's AES-256-GCM key (base64), when the grants are encrypted. */
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /** Its id; by default the id recorded on the grant's row. */
  readonly encryptionKeyId?: string | undefined
  /** The grant about to be used: its row tells the key id. */
  readonly key?: string | undefined
}

/**
 * Opens the store through `@renew/store-sqlite` (compare-and-set, leases, encryption), refusing a file that does not
 * exist (the store would otherwise create an empty one).
 *
 * @internal
 */
export const openStore = (
  options: OpenStoreOptions
): Effect.Effect<TokenStore.TokenStore["Type"], StoreFileError, Scope.Scope> =>
  Effect.gen(function*() {
    const filename = yield* requireFile(options.filename)
    let encryption: SqliteTokenStore.Encryption | undefined
    if (options.encryptionKey !== undefined) {
      let keyId = options.encryptionKeyId
      if (keyId === undefined) {
        const rows = yield* listGrants(filename)
        keyId = rows.find((row) => row.key === options.key)?.keyId ?? rows.find((row) => row.keyId !== undefined)?.keyId ??
          "default"
      }
      encryption = { keys: { [keyId]: options.encryptionKey }, activeKeyId: keyId }
    }
    return yield* SqliteTokenStore.make({ filename, ...(encryption !== undefined ? { encryption } : {}) }).pipe(
      Effect.mapError((error) => new StoreFileError(error.message))
    )
  })
