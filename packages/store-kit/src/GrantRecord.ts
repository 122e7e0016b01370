/**
 * The stored shape of a grant, one field per column (SQLite, PostgreSQL) or hash field (Redis), with the token values
 * sealed when encryption is configured. One codec, so every store writes and reads grants the same way.
 *
 * @since 0.1.0
 */
import { Token } from "@renew/core"
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
  "key_id"
]

// The grant key and field name are authenticated data: a sealed value moved to another grant or field fails to open.
const aad = (key: string, field: string) => `${key}\u0000${field}`

const seal = (
  key: string,
  field: string,
  value: Redacted.Redacted<string> | undefined,
  cipher: Cipher | undefined
): string | null =>
  value === undefined
    ? null
    : cipher === undefined
    ? Redacted.value(value)
    : cipher.encrypt(Redacted.value(value), aad(key, field))

/**
 * @since 0.1.0
 * @category encoding
 */
export const encode = (key: string, grant: Token.Grant, cipher: Cipher | undefined): GrantRecord => ({
  access_token: seal(key, "access_token", grant.accessToken, cipher),
  refresh_token: seal(key, "refresh_token", grant.refreshToken, cipher),
  token_type: grant.tokenType,
  issued_at: grant.issuedAt,
  expires_at: grant.expiresAt,
  scope: grant.scope ?? null,
  refresh_token_expires_at: grant.refreshTokenExpiresAt ?? null,
  refresh_started_at: grant.refreshStartedAt ?? null,
  reauth_required: grant.reauthRequired ?? null,
  key_id: cipher?.activeKeyId ?? null
})

const present = (value: unknown): value is string | number | bigint =>
  value !== null && value !== undefined && value !== ""

const text = (value: unknown): string | undefined => (present(value) ? String(value) : undefined)

// Drivers hand numbers back as numbers, bigint strings (PostgreSQL) or strings (Redis).
const numeric = (value: unknown): number | undefined => (present(value) ? Number(value) : undefined)

/**
 * Reads a stored record (and its `version`) back into a grant. Fields may be `null`, missing, or numbers given as
 * strings. Fails with a message that says what to do when a sealed field cannot be opened or the record is malformed.
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
  const open = (field: "access_token" | "refresh_token"): Either.Either<string | undefined, string> => {
    const value = text(record[field])
    if (value === undefined || keyId === undefined) return Either.right(value)
    const opened = cipher?.decrypt(value, aad(key, field), keyId)
    return opened === undefined ? Either.left(undecryptable(keyId, cipher)) : Either.right(opened)
  }
  return Either.gen(function*() {
    const accessToken = yield* open("access_token")
    const refreshToken = yield* open("refresh_token")
    const scope = text(record.scope)
    const refreshTokenExpiresAt = numeric(record.refresh_token_expires_at)
    const refreshStartedAt = numeric(record.refresh_started_at)
    const reauthRequired = text(record.reauth_required)
    const tokenType = text(record.token_type)
    const issuedAt = numeric(record.issued_at)
    const expiresAt = numeric(record.expires_at)
    const version = numeric(record.version)
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
        version
      })
    } catch {
      return yield* Either.left(malformed)
    }
  })
}
