/**
 * Grants for store tests: a fixed sample, the extreme values every store must hold, a fast-check arbitrary of every
 * grant the engine can build, and a plain view for comparing grants.
 *
 * @since 0.1.0
 */
import { Token } from "@renew/core"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"

/**
 * @since 0.1.0
 * @category models
 */
export type GrantFields = ConstructorParameters<typeof Token.Grant>[0]

/**
 * @since 0.1.0
 * @category constructors
 */
export const sample = (overrides: Partial<GrantFields> = {}): Token.Grant =>
  new Token.Grant({
    accessToken: Redacted.make("at_conformance"),
    refreshToken: Redacted.make("rt_conformance"),
    tokenType: "Bearer",
    issuedAt: 1_700_000_000_000,
    expiresAt: 1_700_000_360_000,
    version: 0,
    ...overrides
  })

/**
 * A grant the engine would never build (a fraction, NaN, a time out of range), made without validation: what a buggy
 * caller could still hand a store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unchecked = (overrides: Partial<GrantFields>): Token.Grant =>
  new Token.Grant({ ...sample(), ...overrides }, { disableValidation: true })

/**
 * Every field as plain data (token values revealed), for deep equality.
 *
 * @since 0.1.0
 * @category destructors
 */
export const values = (g: Token.Grant) => ({
  accessToken: g.accessToken === undefined ? undefined : Redacted.value(g.accessToken),
  refreshToken: g.refreshToken === undefined ? undefined : Redacted.value(g.refreshToken),
  tokenType: g.tokenType,
  issuedAt: g.issuedAt,
  expiresAt: g.expiresAt,
  scope: g.scope,
  refreshTokenExpiresAt: g.refreshTokenExpiresAt,
  refreshStartedAt: g.refreshStartedAt,
  reauthRequired: g.reauthRequired,
  refreshDueAt: g.refreshDueAt,
  failingSince: g.failingSince,
  version: g.version
})

/** 9999-12-31T23:59:59.999Z. */
export const FAR_FUTURE = 253_402_300_799_999

/** A string of exactly `bytes` UTF-8 bytes, mixing 1-, 2-, 3- and 4-byte characters. */
export const utf8OfLength = (bytes: number, seed = "a"): string => {
  const parts = [seed, "é", "字", "🔑"]
  let text = ""
  let size = 0
  for (let i = 0; size < bytes; i++) {
    const part = parts[i % parts.length]!
    const length = Buffer.byteLength(part, "utf8")
    const next = size + length <= bytes ? part : "a"
    text += next
    size += Buffer.byteLength(next, "utf8")
  }
  return text
}

// Token values as the engine can hold them: non-empty, well-formed Unicode (RFC 6749 tokens are printable ASCII; the
// wider alphabet is margin). NUL is left out: PostgreSQL text cannot hold it (a token can never carry one anyway).
const text = (minLength: number, maxLength: number) =>
  FastCheck.string({ unit: "grapheme", minLength, maxLength }).filter((s) => !s.includes("\u0000"))

const time = FastCheck.maxSafeNat()

/**
 * Any grant the engine can build: times are whole milliseconds in `[0, 2^53 - 1]`, tokens non-empty, every optional
 * field present or absent. Version 0 (stores stamp their own).
 *
 * @since 0.1.0
 * @category arbitraries
 */
export const arbitrary: FastCheck.Arbitrary<Token.Grant> = FastCheck.record({
  accessToken: FastCheck.option(text(1, 200), { nil: undefined }),
  refreshToken: FastCheck.option(text(1, 200), { nil: undefined }),
  tokenType: text(0, 20),
  issuedAt: time,
  expiresAt: time,
  scope: FastCheck.option(text(0, 100), { nil: undefined }),
  refreshTokenExpiresAt: FastCheck.option(time, { nil: undefined }),
  refreshStartedAt: FastCheck.option(time, { nil: undefined }),
  reauthRequired: FastCheck.option(FastCheck.constantFrom(...Token.ReauthReason.literals), { nil: undefined }),
  refreshDueAt: FastCheck.option(time, { nil: undefined }),
  failingSince: FastCheck.option(time, { nil: undefined })
}).map((fields) =>
  new Token.Grant({
    ...(fields.accessToken !== undefined ? { accessToken: Redacted.make(fields.accessToken) } : {}),
    ...(fields.refreshToken !== undefined ? { refreshToken: Redacted.make(fields.refreshToken) } : {}),
    tokenType: fields.tokenType,
    issuedAt: fields.issuedAt,
    expiresAt: fields.expiresAt,
    ...(fields.scope !== undefined ? { scope: fields.scope } : {}),
    ...(fields.refreshTokenExpiresAt !== undefined ? { refreshTokenExpiresAt: fields.refreshTokenExpiresAt } : {}),
    ...(fields.refreshStartedAt !== undefined ? { refreshStartedAt: fields.refreshStartedAt } : {}),
    ...(fields.reauthRequired !== undefined ? { reauthRequired: fields.reauthRequired } : {}),
    ...(fields.refreshDueAt !== undefined ? { refreshDueAt: fields.refreshDueAt } : {}),
    ...(fields.failingSince !== undefined ? { failingSince: fields.failingSince } : {}),
    version: 0
  })
)
