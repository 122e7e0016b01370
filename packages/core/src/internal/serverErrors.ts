/**
 * The causes the authorization server tells us of (RFC 6749 §5.2 answers, HTTP statuses, transport failures, bad
 * answers). Re-exported by RefreshError.ts, which is the public module.
 *
 * @internal
 */
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { render, seconds, ServerAnswer } from "./errorText.js"
import { TypeId } from "./errorTypeId.js"

/**
 * Why a refresh token was rejected, when it can be known: from the provider's own error code or description (a
 * `ProviderProfile` maps them), through introspection, or from a known expiry. Each reason has its own remedy.
 *
 * - `expired`: the refresh token (or the grant) reached its lifetime.
 * - `idle_timeout`: it expired because it went unused for too long (keep-alive refreshes prevent it).
 * - `revoked`: the user, an administrator or the provider revoked it, or it is no longer known.
 * - `password_changed`: the user's password changed or expired, which ended the grant.
 * - `consent_revoked`: the user's (or an administrator's) consent for this client is missing or was withdrawn.
 * - `session_ended`: the user's session at the provider ended (sign-out, session lifetime, sign-in frequency).
 * - `interaction_required`: the provider wants the user to sign in interactively (multi-factor, an access policy).
 * - `user_inactive`: the user's account is disabled, locked or deleted.
 * - `reused`: the provider saw the refresh token presented again after rotation (or past its reuse count).
 * - `rotation_lost`: Renew lost a rotated refresh token (a crash or an unanswered request, see `lostAfter`).
 * - `unknown`: the server refused a token it still considers alive, or nothing tells the cause.
 *
 * @since 0.1.0
 * @category models
 */
export const InvalidGrantReason = Schema.Literal(
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
 * @since 0.3.0
 * @category models
 */
export type InvalidGrantReason = typeof InvalidGrantReason.Type

/**
 * With `rotation_lost`: what left the earlier refresh without a known outcome.
 *
 * @since 0.2.0
 * @category models
 */
export const LostRotationCause = Schema.Literal("unrecorded", "timeout", "connection_reset", "unreadable_answer")

const lostRotationWhy: Record<typeof LostRotationCause.Type, string> = {
  unrecorded:
    "an earlier refresh has no recorded outcome: a process stopped after sending it, or its answer was lost to a timeout or a broken connection",
  timeout: "an earlier refresh timed out after it was sent, and the server had rotated the token",
  connection_reset: "the connection broke after an earlier refresh was sent, and the server had rotated the token",
  unreadable_answer: "an earlier refresh got an answer that could not be read, and the server had rotated the token"
}

const reasonWhy: Record<Exclude<InvalidGrantReason, "rotation_lost">, string> = {
  expired: "the refresh token has expired",
  idle_timeout: "the refresh token expired after a period without use",
  revoked: "the refresh token was revoked or is no longer known to the server",
  password_changed: "the user's password changed or expired, which ended the grant",
  consent_revoked: "the user's (or an administrator's) consent for this client is missing or was withdrawn",
  session_ended: "the user's session at the provider ended (sign-out, session lifetime or a sign-in frequency policy)",
  interaction_required:
    "the provider requires the user to sign in interactively (multi-factor authentication or an access policy)",
  user_inactive: "the user's account at the provider is disabled, locked or deleted",
  reused: "the refresh token was presented again after it had been rotated (or beyond its allowed reuse)",
  unknown: "the refresh token is expired, revoked, already used after a rotation, or issued to another client"
}

const MARKED = "the grant is marked as needing re-authorization and will not be retried."

const reasonRemedy: Partial<Record<InvalidGrantReason, string>> = {
  idle_timeout:
    `The user must authorize again; ${MARKED} To keep idle grants alive, refresh them more often than the provider's idle window (keep-alive).`,
  password_changed: `The user must sign in again (with the new password) and authorize; ${MARKED}`,
  consent_revoked: `The user (or an administrator) must grant this client consent again; ${MARKED}`,
  session_ended: `The user must sign in to the provider and authorize again; ${MARKED}`,
  interaction_required:
    `Send the user through the authorization flow interactively, so they can complete what the provider asks (multi-factor authentication, an access policy); ${MARKED}`,
  user_inactive: `An administrator must re-enable the user's account at the provider, then the user authorizes again; ${MARKED}`,
  reused:
    `The user must authorize again; ${MARKED} Check that every process shares one store, so a rotated refresh token is never presented twice.`
}

/**
 * The refresh token is expired, revoked, was already used after a rotation, or belongs to another client.
 * Terminal: the user must authorize again. With a provider profile, `reason` comes from the provider's own error code
 * or description, `providerCode` names it (e.g. `AADSTS700082`) and `remedy` is the provider's.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidGrant extends Schema.TaggedError<InvalidGrant>("@renew/core/InvalidGrant")("InvalidGrant", {
  ...ServerAnswer,
  reason: Schema.optional(InvalidGrantReason),
  /** With `rotation_lost`: what left the earlier refresh without a known outcome. */
  lostAfter: Schema.optional(LostRotationCause),
  /** The provider whose profile read the answer (its title, e.g. "Microsoft Entra ID"). */
  provider: Schema.optional(Schema.String),
  /** The provider's own code for the cause, when it sent one (e.g. `AADSTS700082`, `BAD_REFRESH_TOKEN`). */
  providerCode: Schema.optional(Schema.String),
  /** What to do, in the provider's terms, when its profile knows better than the reason's generic remedy. */
  remedy: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const why = this.reason === "rotation_lost"
      ? `a rotated refresh token was lost (${lostRotationWhy[this.lostAfter ?? "unrecorded"]})`
      : reasonWhy[this.reason ?? "unknown"]
    const origin = this.provider !== undefined || this.providerCode !== undefined
      ? ` (${[this.provider, this.providerCode].filter((part) => part !== undefined).join(" ")})`
      : ""
    const remedy = this.remedy !== undefined
      ? `${this.remedy} ${MARKED.charAt(0).toUpperCase()}${MARKED.slice(1)}`
      : reasonRemedy[this.reason ?? "unknown"] ?? `The user must authorize again; ${MARKED}`
    return render(`The authorization server rejected the refresh token: ${why}${origin}`, this, remedy)
  }
}

/**
 * The client id or secret is wrong, or the server expects another client authentication method.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidClient extends Schema.TaggedError<InvalidClient>("@renew/core/InvalidClient")("InvalidClient", {
  ...ServerAnswer
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return render(
      "The authorization server rejected the client credentials",
      this,
      "Check the client id and secret, and the token endpoint auth method (client_secret_basic or client_secret_post). The user's grant is untouched."
    )
  }
}

/**
 * The client may not use the refresh_token grant.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnauthorizedClient
  extends Schema.TaggedError<UnauthorizedClient>("@renew/core/UnauthorizedClient")("UnauthorizedClient", {
    ...ServerAnswer
  })
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return render(
      "This client is not allowed to use the refresh_token grant",
      this,
      "Enable the refresh_token grant type for this client on the authorization server."
    )
  }
}

/**
 * The requested scope is wider than what the user granted.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidScope extends Schema.TaggedError<InvalidScope>("@renew/core/InvalidScope")("InvalidScope", {
  ...ServerAnswer,
  requestedScope: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const requested = this.requestedScope !== undefined ? ` (requested ${JSON.stringify(this.requestedScope)})` : ""
    return render(
      `The requested scope exceeds the scope the user granted${requested}`,
      this,
      "Request the original scope or a subset of it, or leave scope out to keep the granted one."
    )
  }
}

/**
 * The server found the refresh request malformed: a configuration problem or a server bug.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("@renew/core/InvalidRequest")("InvalidRequest", {
  ...ServerAnswer,
  /**
   * When the endpoint answered with a redirect (3xx): the host (and port) its `Location` names, nothing more. Renew
   * never follows a redirect from the token or introspection endpoint.
   */
  redirectTo: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    if (this.status !== undefined && this.status >= 300 && this.status < 400) {
      const where = this.redirectTo !== undefined ? ` to ${this.redirectTo}` : " without a usable Location"
      return `The endpoint answered with a redirect (HTTP ${this.status})${where}, which Renew never follows: following it would send the refresh token and the client credentials to another URL. This is a configuration or server problem: set the endpoint URL to the final one (check the scheme, host and path, e.g. http vs https or a missing path segment), or remove the proxy or login page that redirects.`
    }
    return render(
      "The authorization server rejected the refresh request as invalid",
      this,
      "This is a configuration or server problem (missing client authentication, wrong endpoint URL, unexpected parameters); the server's description above says which."
    )
  }
}

/**
 * The endpoint does not support the refresh_token grant.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedGrantType
  extends Schema.TaggedError<UnsupportedGrantType>("@renew/core/UnsupportedGrantType")("UnsupportedGrantType", {
    ...ServerAnswer
  })
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return render(
      "The token endpoint does not support the refresh_token grant",
      this,
      "Check the token endpoint URL and that the server has the refresh_token grant enabled."
    )
  }
}

/**
 * HTTP 429 (or `slow_down`): the server asks us to back off, possibly with a `Retry-After`.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>("@renew/core/RateLimited")("RateLimited", {
  ...ServerAnswer,
  /** The server's `Retry-After`, in milliseconds from when the answer arrived. */
  retryAfterMillis: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    const after = this.retryAfterMillis !== undefined ? ` and asked to retry after ${seconds(this.retryAfterMillis)}` : ""
    return render(
      `The authorization server is rate-limiting this client${after}`,
      this,
      "Renew retries after the requested delay; if this persists, reduce refresh traffic (check for refresh loops)."
    )
  }
}

/**
 * The server failed: a 5xx, `server_error`, `temporarily_unavailable`, or an unexpected non-OAuth page from a proxy.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>("@renew/core/ServerError")("ServerError", {
  ...ServerAnswer,
  retryAfterMillis: Schema.optional(Schema.Number),
  /** A short excerpt of a non-OAuth body (an HTML error page), secrets elided. */
  bodyExcerpt: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    const excerpt = this.bodyExcerpt !== undefined ? `Body: ${JSON.stringify(this.bodyExcerpt)}. ` : ""
    return render(
      "The authorization server failed to answer the refresh request",
      this,
      `${excerpt}Renew retries with backoff; if it persists, check the server's status or any proxy in front of it.`
    )
  }
}

/**
 * The token endpoint could not be reached: DNS, connection refused or reset, TLS.
 *
 * @since 0.1.0
 * @category errors
 */
export class NetworkError extends Schema.TaggedError<NetworkError>("@renew/core/NetworkError")("NetworkError", {
  /** The token endpoint's host. */
  host: Schema.String,
  /** What the transport said (an error code such as ECONNREFUSED, never a request dump). */
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Could not reach the token endpoint at ${this.host}: ${this.detail}. Renew retries; check DNS, network connectivity, proxies and TLS to ${this.host}.`
  }
}

/**
 * The access token did not come in time: the token endpoint did not answer within the per-attempt timeout
 * (`limit: "attempt"`, the default), or a caller's own deadline ran out while it waited for a refresh
 * (`limit: "deadline"`, `getAccessToken(key, { deadlineMs })` of the Promise facade). Both are one cause for the
 * caller — the token is late — and are handled alike (retry later, or degrade); `limit` says which bound ran out.
 * A caller leaving at its deadline does not stop the refresh: other callers still get its outcome.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>("@renew/core/Timeout")("Timeout", {
  host: Schema.String,
  timeoutMillis: Schema.Number,
  /** Which bound ran out: the per-attempt timeout (absent or `attempt`) or the caller's deadline. @since 0.2.0 */
  limit: Schema.optional(Schema.Literal("attempt", "deadline"))
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    if (this.limit === "deadline") {
      return `No access token within the caller's deadline of ${
        seconds(this.timeoutMillis)
      }: the refresh at ${this.host} is still running and goes on for other callers. Call again later (a later call gets its outcome); if it persists, check the token endpoint's health or allow a longer deadline.`
    }
    return `The token endpoint at ${this.host} did not answer within ${
      seconds(this.timeoutMillis)
    }. Renew retries; if it persists, check the server's health or raise the per-attempt timeout.`
  }
}

/**
 * A success status whose body is not a valid token response: not JSON, truncated, no `access_token`, an unexpected
 * `token_type`. Not retried by default: the server may already have rotated the refresh token, and presenting the
 * old one again would trip reuse detection and revoke the whole grant.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedResponse
  extends Schema.TaggedError<MalformedResponse>("@renew/core/MalformedResponse")("MalformedResponse", {
    status: Schema.Number,
    /** What is wrong with the response. */
    detail: Schema.String,
    /** A short excerpt of the body with every token-looking value elided. */
    bodyExcerpt: Schema.optional(Schema.String)
  })
{
  /**
   * A new refresh token that the same 2xx answer carried although the rest of it was unusable (no access token, an
   * unexpected `token_type`, ...). The server may already have rotated: this is the only copy of the grant's next
   * refresh token, so the engine stores it.
   *
   * Not a schema field: it is never encoded, and as a non-enumerable `Redacted` it never shows in `JSON.stringify`,
   * `util.inspect` or the message.
   *
   * @since 0.1.0
   */
  declare readonly rotatedRefreshToken: Redacted.Redacted<string> | undefined

  constructor(
    props: {
      readonly status: number
      readonly detail: string
      readonly bodyExcerpt?: string | undefined
      readonly rotatedRefreshToken?: Redacted.Redacted<string> | undefined
    },
    options?: Schema.MakeOptions
  ) {
    const { rotatedRefreshToken, ...fields } = props
    super(fields, options)
    Object.defineProperty(this, "rotatedRefreshToken", { value: rotatedRefreshToken, enumerable: false })
  }

  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const excerpt = this.bodyExcerpt !== undefined ? ` Body (secrets elided): ${JSON.stringify(this.bodyExcerpt)}.` : ""
    const kept = this.rotatedRefreshToken !== undefined
      ? " It did carry a new refresh token (not shown), which is kept so the grant survives."
      : " The stored grant was not changed."
    return `The token endpoint answered HTTP ${this.status} but not with a valid token response: ${this.detail}.${excerpt} This is a server or proxy problem.${kept}`
  }
}
