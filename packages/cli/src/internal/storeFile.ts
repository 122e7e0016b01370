/**
 * Access to a `@renew/store-sqlite` file from the CLI: the grants' metadata through the store's own read API
 * (`SqliteTokenStore.listGrants`: token columns are never read, nothing is decrypted), and opening the store proper
 * for commands that refresh. The CLI knows nothing of the store's tables.
 *
 * @internal
 */
import type { TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"

/** What the listing reads: metadata only. @internal */
export type GrantRow = SqliteTokenStore.GrantInfo

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

/**
 * Lists every grant's metadata, read-only, page by page. Never reads the token columns.
 *
 * @internal
 */
export const listGrants = (filename: string): Effect.Effect<ReadonlyArray<GrantRow>, StoreFileError> =>
  Effect.gen(function*() {
    const resolved = yield* requireFile(filename)
    const grants: Array<GrantRow> = []
    let after: string | undefined
    do {
      const page = yield* SqliteTokenStore.listGrants(resolved, { after, limit: 1000 }).pipe(
        Effect.mapError((error) => new StoreFileError(error.detail))
      )
      grants.push(...page.grants)
      after = page.next
    } while (after !== undefined)
    return grants
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
