/**
 * The stored shape of a grant, one field per column (SQLite, PostgreSQL) or hash field (Redis), with the token values
 * sealed when encryption is configured. One codec, so every store writes and reads grants the same way.
 *
 * @since 0.1.0
 */
import { RefreshError, Token, TokenStore } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type { Cipher } from "./Cipher.js"
import { undecryptable } from "./Cipher.js"

/**
 * Field names are the column names. `null` stands for "absent".
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantRecord {
  readonly access_token: string | null
  readonly refresh_token: string | null
  readonly token_type: string
  readonly issued_at: number
  readonly expires_at: number
  readonly scope: string | null
  readonly refresh_token_expires_at: number | null
  readonly refresh_started_at: number | null
  readonly reauth_required: string | null
  /** When the scheduler should refresh the grant, as the engine set it (`Grant.refreshDueAt`). Not a secret. */
  readonly refresh_due_at: number | null
  /** When the grant's refreshes started failing (`Grant.failingSince`). Not a secret. */
  readonly failing_since: number | null
  /** The id of the key that sealed the token fields; `null` when they are stored as they are. */
  readonly key_id: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export const fields: ReadonlyArray<keyof GrantRecord> = [
  "access_token",
  "refresh_token",
  "token_type",
  "issued_at",
  "expires_at",
  "scope",
  "refresh_token_expires_at",
  "refresh_started_at",
  "reauth_required",
  "refresh_due_at",
  "failing_since",
  "key_id"
]

/**
 * What a sealed value is bound to (AES-GCM additional data): its grant, field, the grant version it was written at and
 * the key id. A sealed value moved to another grant or field, or an old one restored under a newer version, fails to
 * open. JSON keeps the encoding unambiguous whatever the key contains.
 */
const boundTo = (key: string, field: string, version: number, keyId: string) =>
  JSON.stringify(["renew/grant/2", key, field, version, keyId])

// How values were bound before the version was (read only under `allowLegacyRows`).
const legacyBoundTo = (key: string, field: string) => `${key}\u0000${field}`

const seal = (
  value: Redacted.Redacted<string> | undefined,
  cipher: Cipher | undefined,
  aad: string
): string | null =>
  value === undefined ? null : cipher === undefined ? Redacted.value(value) : cipher.encrypt(Redacted.value(value), aad)

/**
 * The record of `grant` written at `version`, as every store writes it. No checks: see `prepare`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (key: string, version: number, grant: Token.Grant, cipher: Cipher | undefined): GrantRecord => {
  const keyId = cipher?.activeKeyId ?? null
  const aad = (field: string) => boundTo(key, field, version, keyId ?? "")
  return {
    access_token: seal(grant.accessToken, cipher, aad("access_token")),
    refresh_token: seal(grant.refreshToken, cipher, aad("refresh_token")),
    token_type: grant.tokenType,
    issued_at: grant.issuedAt,
    expires_at: grant.expiresAt,
    scope: grant.scope ?? null,
    refresh_token_expires_at: grant.refreshTokenExpiresAt ?? null,
    refresh_started_at: grant.refreshStartedAt ?? null,
    reauth_required: grant.reauthRequired ?? null,
    refresh_due_at: grant.refreshDueAt ?? null,
    failing_since: grant.failingSince ?? null,
    key_id: keyId
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Prepared {
  /** What to store. */
  readonly record: GrantRecord
  /** The grant as stored (times in whole milliseconds, within range) at its new version: what the write returns. */
  readonly grant: Token.Grant
  /**
   * The grant's entry in the due index (`TokenStore.dueAtOf`), written in the same atomic write as the record; `null`:
   * never due (dead, or no refresh token), so not in the index.
   */
  readonly dueAt: number | null
}

/**
 * Checks and encodes a compare-and-set write of `grant` under `key` at `version`, the same way on every store: a key
 * that no store can hold is refused, times are normalised (`TokenStore.storable`). Fails before anything is written.
 *
 * @since 0.1.0
 * @category encoding
 */
export const prepare = (
  key: string,
  version: number,
  grant: Token.Grant,
  cipher: Cipher | undefined
): Either.Either<Prepared, RefreshError.StoreError> =>
  Either.gen(function*() {
    const problem = TokenStore.invalidKey(key)
    if (problem !== undefined) return yield* Either.left(storeError("compareAndSet", problem))
    const normal = yield* Either.mapLeft(TokenStore.storable(grant), (detail) => storeError("compareAndSet", detail))
    return {
      record: encode(key, version, normal, cipher),
      grant: TokenStore.withVersion(normal, version),
      dueAt: TokenStore.dueAtOf(normal) ?? null
    }
  })

/**
 * Fails with a `StoreError` for a key no store can hold (for reads, deletes and locks; writes check in `prepare`).
 *
 * @since 0.1.0
 * @category validation
 */
export const checkKey = (operation: string, key: string): Effect.Effect<void, RefreshError.StoreError> => {
  const problem = TokenStore.invalidKey(key)
  return problem === undefined ? Effect.void : Effect.fail(storeError(operation, problem))
}

const storeError = (operation: string, detail: string) => new RefreshError.StoreError({ operation, detail })

const present = (value: unknown): value is string | number | bigint =>
  value !== null && value !== undefined && value !== ""

// An empty string is a value (an empty scope or token type), not "absent": only null and a missing field are.
const text = (value: unknown): string | undefined => (value === null || value === undefined ? undefined : String(value))

// Drivers hand numbers back as numbers, bigint strings (PostgreSQL) or strings (Redis).
const numeric = (value: unknown): number | undefined => (present(value) ? Number(value) : undefined)

const unsealed =
  "the grant's tokens are stored in plaintext although encryption is configured: it was written before encryption " +
  "was turned on, or planted by someone with write access to the store. If you are migrating to encryption, set " +
  "encryption.allowLegacyRows: true until every grant has been refreshed once; otherwise delete the grant and authorize again"

const unbound =
  "the grant was sealed without its version (by an earlier @renew store), so it could be an old value restored by " +
  "someone with write access to the store. If you just upgraded, set encryption.allowLegacyRows: true until every " +
  "grant has been refreshed once; otherwise delete the grant and authorize again"

/**
 * Reads a stored record (and its `version`) back into a grant. Fields may be `null`, missing, or numbers given as
 * strings. Fails with a message that says what to do when a sealed field cannot be opened, a token is in plaintext or
 * sealed the old way while encryption is on (unless `allowLegacyRows`), or the record is malformed.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  key: string,
  record: Readonly<Record<string, unknown>>,
  cipher: Cipher | undefined
): Either.Either<Token.Grant, string> => {
  const keyId = text(record.key_id)
  const version = numeric(record.version)
  const open = (field: "access_token" | "refresh_token"): Either.Either<string | undefined, string> => {
    const value = text(record[field])
    if (value === undefined) return Either.right(undefined)
    if (keyId === undefined) {
      // Plaintext under encryption is a downgrade (or a planted token) unless the operator is migrating.
      return cipher === undefined || cipher.allowLegacyRows ? Either.right(value) : Either.left(unsealed)
    }
    if (cipher === undefined) return Either.left(undecryptable(keyId, cipher))
    const opened = version === undefined ? undefined : cipher.decrypt(value, boundTo(key, field, version, keyId), keyId)
    if (opened !== undefined) return Either.right(opened)
    const legacy = cipher.decrypt(value, legacyBoundTo(key, field), keyId)
    if (legacy === undefined) return Either.left(undecryptable(keyId, cipher))
    return cipher.allowLegacyRows ? Either.right(legacy) : Either.left(unbound)
  }
  return Either.gen(function*() {
    const accessToken = yield* open("access_token")
    const refreshToken = yield* open("refresh_token")
    const scope = text(record.scope)
    const refreshTokenExpiresAt = numeric(record.refresh_token_expires_at)
    const refreshStartedAt = numeric(record.refresh_started_at)
    const reauthRequired = text(record.reauth_required)
    // From the record, never from the due index: a claim moves the index entry, not the grant's own due time.
    const refreshDueAt = numeric(record.refresh_due_at)
    const failingSince = numeric(record.failing_since)
    const tokenType = text(record.token_type)
    const issuedAt = numeric(record.issued_at)
    const expiresAt = numeric(record.expires_at)
    const malformed = "a stored grant is malformed (was it edited by hand, or written by another program?)"
    if (tokenType === undefined || issuedAt === undefined || expiresAt === undefined || version === undefined) {
      return yield* Either.left(malformed)
    }
    try {
      return new Token.Grant({
        ...(accessToken !== undefined ? { accessToken: Redacted.make(accessToken) } : {}),
        ...(refreshToken !== undefined ? { refreshToken: Redacted.make(refreshToken) } : {}),
        tokenType,
        issuedAt,
        expiresAt,
        ...(scope !== undefined ? { scope } : {}),
        ...(refreshTokenExpiresAt !== undefined ? { refreshTokenExpiresAt } : {}),
        ...(refreshStartedAt !== undefined ? { refreshStartedAt } : {}),
        ...(reauthRequired !== undefined ? { reauthRequired: reauthRequired as Token.ReauthReason } : {}),
        ...(refreshDueAt !== undefined ? { refreshDueAt } : {}),
        ...(failingSince !== undefined ? { failingSince } : {}),
        version
      })
    } catch {
      return yield* Either.left(malformed)
    }
  })
}
