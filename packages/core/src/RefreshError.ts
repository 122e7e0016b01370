/**
 * The tagged error family: one `_tag` per cause a user must act on differently. Every error says what happened and
 * what to do (`message`), whether retrying can help (`retryable`), and carries the server's OAuth fields when it sent
 * them. No error ever holds a token, a secret, or an object that could contain one.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@renew/core/RefreshError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/** What the authorization server said, when it said anything (RFC 6749 §5.2). */
const ServerAnswer = {
  /** HTTP status of the token endpoint's answer. */
  status: Schema.optional(Schema.Number),
  /** RFC 6749 §5.2 `error`. */
  oauthError: Schema.optional(Schema.String),
  /** RFC 6749 §5.2 `error_description`. */
  errorDescription: Schema.optional(Schema.String),
  /** RFC 6749 §5.2 `error_uri`. */
  errorUri: Schema.optional(Schema.String)
}

interface ServerAnswerFields {
  readonly status?: number | undefined
  readonly oauthError?: string | undefined
  readonly errorDescription?: string | undefined
  readonly errorUri?: string | undefined
}

const quoteServer = (self: ServerAnswerFields): string => {
  const parts: Array<string> = []
  if (self.status !== undefined) parts.push(`HTTP ${self.status}`)
  if (self.oauthError !== undefined) parts.push(self.oauthError)
  if (self.errorDescription !== undefined) parts.push(JSON.stringify(self.errorDescription))
  if (self.errorUri !== undefined) parts.push(`(see ${self.errorUri})`)
  return parts.length === 0 ? "" : ` Server answered: ${parts.join(" ")}.`
}

const render = (what: string, self: ServerAnswerFields, remedy: string): string =>
  `${what}.${quoteServer(self)} ${remedy}`

const seconds = (millis: number): string => `${Math.round(millis / 100) / 10}s`

/**
 * Why a refresh token was rejected, when it can be known (through introspection, or from a known expiry).
 *
 * @since 0.1.0
 * @category models
 */
export const InvalidGrantReason = Schema.Literal("expired", "revoked", "unknown", "rotation_lost")

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

/**
 * The refresh token is expired, revoked, was already used after a rotation, or belongs to another client.
 * Terminal: the user must authorize again.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidGrant extends Schema.TaggedError<InvalidGrant>("@renew/core/InvalidGrant")("InvalidGrant", {
  ...ServerAnswer,
  reason: Schema.optional(InvalidGrantReason),
  /** With `rotation_lost`: what left the earlier refresh without a known outcome. */
  lostAfter: Schema.optional(LostRotationCause)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const why = this.reason === "expired"
      ? "the refresh token has expired"
      : this.reason === "revoked"
      ? "the refresh token was revoked or is no longer known to the server"
      : this.reason === "rotation_lost"
      ? `a rotated refresh token was lost (${lostRotationWhy[this.lostAfter ?? "unrecorded"]})`
      : "the refresh token is expired, revoked, already used after a rotation, or issued to another client"
    return render(
      `The authorization server rejected the refresh token: ${why}`,
      this,
      "The user must authorize again; the grant is marked as needing re-authorization and will not be retried."
    )
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
 * The token endpoint did not answer within the per-attempt timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>("@renew/core/Timeout")("Timeout", {
  host: Schema.String,
  timeoutMillis: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
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

/**
 * The grant has no refresh token.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoRefreshToken extends Schema.TaggedError<NoRefreshToken>("@renew/core/NoRefreshToken")(
  "NoRefreshToken",
  {}
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return "The access token is due but the grant has no refresh token. Authorize again, asking for offline access (e.g. the offline_access scope) so the server issues a refresh token."
  }
}

/**
 * No grant is stored under the key.
 *
 * @since 0.1.0
 * @category errors
 */
export class GrantNotFound extends Schema.TaggedError<GrantNotFound>("@renew/core/GrantNotFound")("GrantNotFound", {}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return "No grant is stored under this key. Authorize first and store the grant (Refresher.setGrant / TokenManager.setGrant)."
  }
}

/**
 * The token store failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("@renew/core/StoreError")("StoreError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `The token store failed during ${this.operation}: ${this.detail}. Check the store's health and configuration; no grant was overwritten.`
  }
}

/**
 * Another holder kept the grant's refresh lock longer than we were willing to wait.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>("@renew/core/LockTimeout")("LockTimeout", {
  waitedMillis: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Waited ${
      seconds(this.waitedMillis)
    } for another process to finish refreshing this grant. Retry later; if it persists, look for a stuck holder of the lease.`
  }
}

/**
 * A compare-and-set write lost: the grant changed since it was read. Nothing was overwritten.
 *
 * @since 0.1.0
 * @category errors
 */
export class StaleWrite extends Schema.TaggedError<StaleWrite>("@renew/core/StaleWrite")("StaleWrite", {
  expectedVersion: Schema.optional(Schema.Number),
  actualVersion: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const found = this.actualVersion === undefined ? "it was deleted" : `found version ${this.actualVersion}`
    return `Another writer changed this grant first (expected version ${
      this.expectedVersion ?? "none"
    }, ${found}); nothing was overwritten. Read the grant again.`
  }
}

/**
 * The engine is shutting down or has shut down (`dispose()`, or the Refresher layer's scope closed): no new refresh
 * is started. Refreshes already sent were allowed to finish and were stored.
 *
 * @since 0.2.0
 * @category errors
 */
export class EngineClosed extends Schema.TaggedError<EngineClosed>("@renew/core/EngineClosed")("EngineClosed", {}) {
  /** @since 0.2.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.2.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.2.0 */
  override get message(): string {
    return "The token engine has been shut down (dispose() or its scope closed); no new refresh is started. Create a new engine to continue."
  }
}

/**
 * Configuration refused before any request was made (a malformed or non-https token endpoint, a bad option).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError
  extends Schema.TaggedError<ConfigurationError>("@renew/core/ConfigurationError")("ConfigurationError", {
    option: Schema.String,
    detail: Schema.String
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
    return `Invalid configuration for ${this.option}: ${this.detail}.`
  }
}

/**
 * Everything a refresh can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type RefreshError =
  | InvalidGrant
  | InvalidClient
  | UnauthorizedClient
  | InvalidScope
  | InvalidRequest
  | UnsupportedGrantType
  | RateLimited
  | ServerError
  | NetworkError
  | Timeout
  | MalformedResponse
  | NoRefreshToken
  | GrantNotFound
  | StoreError
  | LockTimeout
  | StaleWrite
  | EngineClosed

/**
 * A schema for the whole family, to encode and decode failures (the CLI prints them as JSON, stores may persist the
 * last failure).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RefreshError: Schema.Union<[
  typeof InvalidGrant,
  typeof InvalidClient,
  typeof UnauthorizedClient,
  typeof InvalidScope,
  typeof InvalidRequest,
  typeof UnsupportedGrantType,
  typeof RateLimited,
  typeof ServerError,
  typeof NetworkError,
  typeof Timeout,
  typeof MalformedResponse,
  typeof NoRefreshToken,
  typeof GrantNotFound,
  typeof StoreError,
  typeof LockTimeout,
  typeof StaleWrite,
  typeof EngineClosed
]> = Schema.Union(
  InvalidGrant,
  InvalidClient,
  UnauthorizedClient,
  InvalidScope,
  InvalidRequest,
  UnsupportedGrantType,
  RateLimited,
  ServerError,
  NetworkError,
  Timeout,
  MalformedResponse,
  NoRefreshToken,
  GrantNotFound,
  StoreError,
  LockTimeout,
  StaleWrite,
  EngineClosed
)

/**
 * @since 0.1.0
 * @category guards
 */
export const isRefreshError = (u: unknown): u is RefreshError | ConfigurationError => Predicate.hasProperty(u, TypeId)

/**
 * Whether retrying the same request could succeed.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (error: RefreshError): boolean => error.retryable
