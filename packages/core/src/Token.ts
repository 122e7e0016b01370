/**
 * Token and grant models: the RFC 6749 §5.1 token response as it arrives on the wire, the stored grant, and the
 * expiry arithmetic that decides when a grant is due for refresh.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ConfigurationError } from "./RefreshError.js"

/**
 * An access or refresh token. Always `Redacted`: it prints as `<redacted>` in logs, errors and `util.inspect`.
 *
 * @since 0.1.0
 * @category models
 */
export const Secret = Schema.Redacted(Schema.NonEmptyString)

/**
 * The longest lifetime Renew counts for a token: 10 years, in seconds. A longer `expires_in`, `refresh_expires_in` or
 * `expiresIn` (a server sending `1e16`) is clamped to it.
 *
 * @since 0.1.0
 * @category time
 */
export const maxLifetimeSeconds = 10 * 365 * 24 * 60 * 60

/**
 * The latest time a grant can hold, 9999-12-31T23:59:59.999Z, in epoch millis.
 *
 * @since 0.1.0
 * @category time
 */
export const maxEpochMillis = 253_402_300_799_999

/**
 * A time in a grant: a whole number of epoch milliseconds in [0, `maxEpochMillis`]. Every store holds it exactly
 * (a PostgreSQL BIGINT, a SQLite INTEGER, a Redis string), as do a JavaScript safe integer and a `Date`.
 *
 * @since 0.1.0
 * @category time
 */
export const EpochMillis = Schema.Int.pipe(Schema.between(0, maxEpochMillis))

/**
 * Normalises a time to `EpochMillis`: rounded down to a whole millisecond (never later than the server said), and
 * clamped to [0, `maxEpochMillis`]. `NaN` (no time at all) becomes 0, the epoch: an expiry nobody knows is past, so
 * the grant is due at once rather than unwritable.
 *
 * @since 0.1.0
 * @category time
 */
export const toEpochMillis = (millis: number): number =>
  Number.isNaN(millis) ? 0 : Math.min(maxEpochMillis, Math.max(0, Math.floor(millis)))

/** A lifetime in seconds clamped to [0, `maxLifetimeSeconds`]. */
const clampLifetime = (seconds: number): number => Math.min(maxLifetimeSeconds, Math.max(0, seconds))

/**
 * A non-negative lifetime in seconds. Some servers send it as a numeric string; both are accepted.
 *
 * @since 0.1.0
 * @category models
 */
export const ExpiresIn = Schema.Union(Schema.Number, Schema.NumberFromString).pipe(
  Schema.filter((n) => Number.isFinite(n) && n >= 0, { message: () => "expected a non-negative number of seconds" })
)

/**
 * The successful token response of RFC 6749 §5.1, as decoded from the wire. Token values are decoded straight into
 * `Redacted`, so no later step can print them by accident.
 *
 * @since 0.1.0
 * @category models
 */
export class TokenResponse extends Schema.Class<TokenResponse>("@renew/core/TokenResponse")({
  access_token: Secret,
  token_type: Schema.String,
  expires_in: Schema.optional(ExpiresIn),
  refresh_token: Schema.optional(Secret),
  /** Not in RFC 6749, but sent by Keycloak and others: the refresh token's lifetime in seconds. */
  refresh_expires_in: Schema.optional(ExpiresIn),
  scope: Schema.optional(Schema.String),
  /**
   * Set by the token endpoint, never read from the wire: the optional members of the answer that were present but
   * unusable and so treated as absent (`expires_in`, `refresh_expires_in`, `refresh_token`, `scope`), by name only
   * (never a value). `null` counts as absent and is not listed.
   */
  ignored: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * Why a grant can no longer be refreshed without the user authorizing again.
 *
 * @since 0.1.0
 * @category models
 */
export const ReauthReason = Schema.Literal(
  "invalid_grant",
  "expired",
  "idle_timeout",
  "revoked",
  "password_changed",
  "consent_revoked",
  "session_ended",
  "interaction_required",
  "user_inactive",
  "reused",
  "unknown",
  "rotation_lost"
)

/**
 * @since 0.1.0
 * @category models
 */
export type ReauthReason = typeof ReauthReason.Type

const grantFields = {
  /** Absent for a grant seeded with a refresh token only: it is due at once. */
  accessToken: Schema.optional(Secret),
  refreshToken: Schema.optional(Secret),
  tokenType: Schema.String,
  /** When the access token was obtained (epoch millis, read from `Clock`). */
  issuedAt: EpochMillis,
  /** When the access token stops being valid (epoch millis). */
  expiresAt: EpochMillis,
  scope: Schema.optional(Schema.String),
  /** When the refresh token stops being valid (epoch millis), when known (server field or introspection). */
  refreshTokenExpiresAt: Schema.optional(EpochMillis),
  version: Schema.Int.pipe(Schema.nonNegative()),
  /**
   * Set (epoch millis) while a refresh is in flight on a durable store, cleared when its outcome is written. Found
   * set by the next lock holder, it means a process died mid-refresh: the server may have rotated the refresh token
   * without anyone storing the new one.
   */
  refreshStartedAt: Schema.optional(EpochMillis),
  /** Set when the grant is dead and only a new authorization can revive it. */
  reauthRequired: Schema.optional(ReauthReason),
  /**
   * When the background scheduler should refresh this grant (SC-1: before the access token's expiry, with jitter, or
   * sooner for keep-alive), epoch millis. Written by the engine with each new token; a store indexes it (its due
   * index) and moves it later while a scheduler holds the grant claimed. Absent: `TokenStore.dueAtOf` derives it.
   */
  refreshDueAt: Schema.optional(EpochMillis),
  /**
   * Set (epoch millis) by the first refresh that failed after reaching the server, cleared by the next success. The
   * write that sets or clears it is the one that reports the state change (`failing`, `recovered`), so replicas
   * sharing a store report each change once.
   */
  failingSince: Schema.optional(EpochMillis)
}

type GrantFields = Schema.Struct.Constructor<typeof grantFields>

// An optional time that is NaN is not known: absent.
const known = (millis: number | undefined): millis is number => millis !== undefined && !Number.isNaN(millis)

const normalizeTimes = (fields: GrantFields): GrantFields => {
  const { failingSince, refreshDueAt, refreshStartedAt, refreshTokenExpiresAt, ...rest } = fields
  return {
    ...rest,
    issuedAt: toEpochMillis(fields.issuedAt),
    expiresAt: toEpochMillis(fields.expiresAt),
    ...(known(refreshTokenExpiresAt) ? { refreshTokenExpiresAt: toEpochMillis(refreshTokenExpiresAt) } : {}),
    ...(known(refreshStartedAt) ? { refreshStartedAt: toEpochMillis(refreshStartedAt) } : {}),
    ...(known(refreshDueAt) ? { refreshDueAt: toEpochMillis(refreshDueAt) } : {}),
    ...(known(failingSince) ? { failingSince: toEpochMillis(failingSince) } : {})
  }
}

/**
 * A stored grant: what the engine needs to hand out an access token and to refresh it.
 *
 * `version` is owned by the store: every successful write bumps it, and writes are compare-and-set on it, so a stale
 * writer can never overwrite a newer refresh token.
 *
 * Every time in a grant is an `EpochMillis`: the constructor rounds each one down to a whole millisecond and clamps
 * it to [0, `maxEpochMillis`] (see `toEpochMillis`; an optional time that is `NaN` is dropped), so whatever a server
 * sent (`"expires_in": 3599.1234567`, `1e16`) and whichever path built the grant, every store can hold it. A write
 * that failed after the server rotated would lose the rotation.
 *
 * @since 0.1.0
 * @category models
 */
export class Grant extends Schema.Class<Grant>("@renew/core/Grant")(grantFields) {
  constructor(fields: GrantFields, options?: Schema.MakeOptions) {
    super(normalizeTimes(fields), options)
  }
}

/**
 * What a caller hands to the engine to seed a grant (for example right after the authorization-code exchange).
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantInput {
  /** Optional: a grant seeded with only a refresh token is refreshed on first use. */
  readonly accessToken?: string | Redacted.Redacted<string> | undefined
  readonly refreshToken?: string | Redacted.Redacted<string> | undefined
  /** Absolute expiry, epoch millis. Takes precedence over `expiresIn`. */
  readonly expiresAt?: number | undefined
  /** Lifetime in seconds from now. */
  readonly expiresIn?: number | undefined
  readonly scope?: string | undefined
  readonly tokenType?: string | undefined
}

/**
 * An `expires_in` in whole millis, clamped to `maxLifetimeSeconds`. It has one-second granularity (servers derive it
 * from whole-second timestamps: exp = floor(now) + ttl), so a token may expire up to a second sooner than
 * `now + expires_in`: count a second less, but never less than half.
 */
const lifetimeOf = (expiresInSeconds: number): number => {
  const seconds = clampLifetime(expiresInSeconds)
  return Math.floor(Math.max(seconds * 1000 - 1000, seconds * 500))
}

/** The default lifetime in whole millis, clamped like a server's. */
const defaultLifetimeOf = (lifetime: Duration.DurationInput): number =>
  Math.floor(clampLifetime(Duration.toMillis(lifetime) / 1000) * 1000)

/** A secret given as a string or Redacted; an empty one counts as absent. */
const asSecret = (value: string | Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined => {
  if (value === undefined) return undefined
  const redacted = Redacted.isRedacted(value) ? value : Redacted.make(value)
  return Redacted.value(redacted) === "" ? undefined : redacted
}

/**
 * Builds a grant from caller input. A grant without a known expiry gets `defaultLifetime`; one without an access
 * token is due at once. Refuses input with neither token, or with a nonsensical expiry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const grantFromInput = (
  input: GrantInput,
  options: { readonly now: number; readonly defaultLifetime: Duration.DurationInput; readonly version: number }
): Either.Either<Grant, ConfigurationError> => {
  const accessToken = asSecret(input.accessToken)
  const refreshToken = asSecret(input.refreshToken)
  if (accessToken === undefined && refreshToken === undefined) {
    return Either.left(
      new ConfigurationError({ option: "grant", detail: "a grant needs an access token, a refresh token, or both" })
    )
  }
  for (const [option, value] of [["expiresIn", input.expiresIn], ["expiresAt", input.expiresAt]] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      return Either.left(new ConfigurationError({ option: `grant.${option}`, detail: "must be a non-negative number" }))
    }
  }
  // The Grant constructor makes every time a storable whole millisecond (see `EpochMillis`).
  const expiresAt = accessToken === undefined ? options.now : input.expiresAt ??
    options.now + (input.expiresIn !== undefined ? lifetimeOf(input.expiresIn) : defaultLifetimeOf(options.defaultLifetime))
  return Either.right(new Grant({
    ...(accessToken !== undefined ? { accessToken } : {}),
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    tokenType: input.tokenType ?? "Bearer",
    issuedAt: options.now,
    expiresAt,
    ...(input.scope !== undefined ? { scope: input.scope } : {}),
    version: options.version
  }))
}

/**
 * Folds a successful refresh response into the previous grant.
 *
 * - A response without `refresh_token` keeps the previous one (RFC 6749 §6 lets servers omit it; Google does).
 * - A response without `scope` keeps the previous scope (RFC 6749 §5.1: omitted when identical).
 * - A response without `expires_in` gets `defaultLifetime`.
 * - `now` should be when the request was sent, and one second is taken off `expires_in` (its granularity), so the
 *   computed expiry is never later than the server's.
 * - Lifetimes are clamped to `maxLifetimeSeconds` and every time is a whole millisecond (see `EpochMillis`).
 *
 * The returned grant carries the previous `version`; the store bumps it on write.
 *
 * @since 0.1.0
 * @category constructors
 */
export const grantFromResponse = (
  response: TokenResponse,
  previous: Grant,
  options: { readonly now: number; readonly defaultLifetime: Duration.DurationInput }
): Grant => {
  const lifetimeMillis = response.expires_in !== undefined
    ? lifetimeOf(response.expires_in)
    : defaultLifetimeOf(options.defaultLifetime)
  const refreshToken = response.refresh_token ?? previous.refreshToken
  const refreshTokenExpiresAt = response.refresh_token === undefined
    ? previous.refreshTokenExpiresAt
    : response.refresh_expires_in !== undefined && response.refresh_expires_in > 0
    ? options.now + Math.floor(clampLifetime(response.refresh_expires_in) * 1000)
    : undefined
  const scope = response.scope ?? previous.scope
  return new Grant({
    accessToken: response.access_token,
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    tokenType: response.token_type,
    issuedAt: options.now,
    expiresAt: options.now + lifetimeMillis,
    ...(scope !== undefined ? { scope } : {}),
    ...(refreshTokenExpiresAt !== undefined ? { refreshTokenExpiresAt } : {}),
    version: previous.version
  })
}

/**
 * When the grant becomes due for a proactive refresh: `expiresAt - skew`, where the skew is never more than half of
 * the token's lifetime, so a 30-second token is not refreshed on every call (Spring #14943).
 *
 * @since 0.1.0
 * @category expiry
 */
export const refreshAt = (grant: Grant, skew: Duration.DurationInput): number => {
  if (grant.accessToken === undefined) return -Infinity
  const lifetime = Math.max(0, grant.expiresAt - grant.issuedAt)
  return grant.expiresAt - Math.min(Duration.toMillis(skew), lifetime / 2)
}

/**
 * @since 0.1.0
 * @category expiry
 */
export const isDue = (grant: Grant, now: number, skew: Duration.DurationInput): boolean =>
  now >= refreshAt(grant, skew)

/**
 * @since 0.1.0
 * @category expiry
 */
export const isExpired = (grant: Grant, now: number): boolean => now >= grant.expiresAt
