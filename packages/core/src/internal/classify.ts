/**
 * The mapping from a token endpoint's answer (status, headers, body) or transport outcome to either a token response
 * or exactly one tagged error. It is a table on purpose: each row is tested on its own.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type { ErrorFamily, ProviderProfile } from "../ProviderProfile.js"
import * as Errors from "../RefreshError.js"
import { TokenResponse } from "../Token.js"
import { explainGrant, familyOf } from "./dialect.js"
import { elide, makeRedactor, type Redactor, scrub } from "./redact.js"

/**
 * The most Renew reads of any answer: 64 KiB. A token response is a few KiB even with large JWTs; anything longer is
 * cut there (and reported as truncated), so a broken or hostile server cannot make Renew buffer without limit.
 *
 * @internal
 */
export const MAX_BODY_BYTES = 64 * 1024

/** @internal */
export interface Answer {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  /** The body was longer than `MAX_BODY_BYTES`; `body` is its beginning. */
  readonly truncated?: boolean | undefined
}

/** @internal */
export interface ClassifyContext {
  /** Now, in epoch millis (from `Clock`), to turn an HTTP-date `Retry-After` into a delay. */
  readonly now: number
  /**
   * Values that must never be quoted back: the refresh token sent, the client secret, the Basic credential. Every
   * encoding of each is redacted too (see ./redact.ts).
   */
  readonly secrets: ReadonlyArray<string>
  readonly requestedScope?: string | undefined
  /** Accepted `token_type` values, lower case. */
  readonly acceptedTokenTypes: ReadonlyArray<string>
  /** The URL the request went to, to resolve a relative `Location`. */
  readonly url?: string | undefined
  /** The provider's dialect (see ProviderProfile); absent: plain RFC 6749. */
  readonly profile?: ProviderProfile | undefined
}

/** What the classifier works with: the answer, cut to the cap, and the redactor for the request's secrets. */
interface Seen {
  readonly answer: Answer
  readonly ctx: ClassifyContext
  readonly redactor: Redactor
}

interface OAuthFields {
  readonly status: number
  readonly oauthError?: string
  readonly errorDescription?: string
  readonly errorUri?: string
}

type Classified = Errors.RefreshError

/**
 * The wordings servers use for "this client may not use the refresh_token grant". Under `unauthorized_client` the
 * code says it already; under `invalid_request` (oidc-provider's choice) only the description does, so it is matched
 * there. Each wording is sourced:
 * - oidc-provider 9.13 (lib/actions/token.js): `invalid_request` "requested grant type is not allowed for this client"
 * - Ory fosite / Hydra: "The OAuth 2.0 Client is not allowed to use authorization grant 'refresh_token'." (and, in a
 *   fork, the same under `invalid_request`: "... the refresh token was issued to is not allowed to use authorization
 *   grant 'refresh_token'.")
 * - Okta: "The client is not authorized to use the provided grant type. Configured grant types: [...]"
 * - Auth0: "Grant type 'refresh_token' not allowed for the client."
 * - RingCentral: "Unauthorized for this grant type"
 * Gaps are bounded (`{0,80}`) so a long description cannot make the match slow.
 */
const GRANT_TYPE_NOT_ALLOWED = [
  /grant[ _-]?type\b[^.]{0,80}?\bnot (?:allowed|authori[sz]ed|permitted|enabled)\b/i,
  /\bnot (?:allowed|authori[sz]ed|permitted) to (?:use|request)\b[^.]{0,80}?\bgrant\b/i,
  /\bunauthori[sz]ed for (?:this |the )?grant[ _-]?type\b/i
]

/** Whether a server's description says the client may not use the grant (see `GRANT_TYPE_NOT_ALLOWED`). @internal */
export const saysGrantTypeNotAllowed = (description: string | undefined): boolean =>
  description !== undefined && GRANT_TYPE_NOT_ALLOWED.some((pattern) => pattern.test(description))

/** RFC 6749 §5.2 error codes (plus the ones servers send in practice), one constructor each. */
const byErrorCode: Readonly<Record<string, (fields: OAuthFields, seen: Seen) => Classified>> = {
  invalid_grant: (f) => new Errors.InvalidGrant(f),
  // GitHub answers an expired or revoked refresh token with 200 and this code.
  bad_refresh_token: (f) => new Errors.InvalidGrant(f),
  invalid_client: (f) => new Errors.InvalidClient(f),
  unauthorized_client: (f) => new Errors.UnauthorizedClient(f),
  invalid_scope: (f, { ctx }) =>
    new Errors.InvalidScope({ ...f, ...(ctx.requestedScope !== undefined ? { requestedScope: ctx.requestedScope } : {}) }),
  // oidc-provider (and others) say "this client may not use this grant" with invalid_request: the cause, and its
  // remedy, are unauthorized_client's.
  invalid_request: (f) =>
    saysGrantTypeNotAllowed(f.errorDescription) ? new Errors.UnauthorizedClient(f) : new Errors.InvalidRequest(f),
  unsupported_grant_type: (f) => new Errors.UnsupportedGrantType(f),
  server_error: (f, seen) => new Errors.ServerError({ ...f, ...retryAfter(seen) }),
  temporarily_unavailable: (f, seen) => new Errors.ServerError({ ...f, ...retryAfter(seen) }),
  slow_down: (f, seen) => new Errors.RateLimited({ ...f, ...retryAfter(seen) })
}

/** What a provider's own error code stands for (its profile's `errorCodes`), one constructor per family. */
const byFamily: Readonly<Record<ErrorFamily, (fields: OAuthFields, seen: Seen) => Classified>> = {
  InvalidGrant: (f) => new Errors.InvalidGrant(f),
  InvalidClient: (f) => new Errors.InvalidClient(f),
  UnauthorizedClient: (f) => new Errors.UnauthorizedClient(f),
  InvalidScope: byErrorCode.invalid_scope!,
  InvalidRequest: (f) => new Errors.InvalidRequest(f),
  UnsupportedGrantType: (f) => new Errors.UnsupportedGrantType(f),
  RateLimited: (f, seen) => new Errors.RateLimited({ ...f, ...retryAfter(seen) }),
  ServerError: (f, seen) => new Errors.ServerError({ ...f, ...retryAfter(seen) })
}

/** When the body carries no OAuth error we recognise, the status decides. First match wins. */
const byStatus: ReadonlyArray<{
  readonly when: (status: number) => boolean
  readonly to: (fields: OAuthFields, seen: Seen) => Classified
}> = [
  { when: (s) => s === 429, to: (f, seen) => new Errors.RateLimited({ ...f, ...retryAfter(seen) }) },
  // RFC 6749 §5.2: a 401 from the token endpoint means client authentication failed.
  { when: (s) => s === 401, to: (f) => new Errors.InvalidClient(f) },
  // Gateways, WAFs and overloaded servers: worth a bounded retry.
  {
    when: (s) => s >= 500 || s === 408 || s === 425 || s === 403,
    to: (f, seen) => new Errors.ServerError({ ...f, ...retryAfter(seen), ...excerptOf(seen) })
  },
  { when: (s) => s >= 400, to: (f) => new Errors.InvalidRequest(f) }
]

/**
 * `Retry-After` as delay-seconds or as an HTTP-date (RFC 9110 §10.2.3), in millis from `now`.
 *
 * @internal
 */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const retryAfter = ({ answer, ctx }: Seen): { retryAfterMillis?: number } => {
  const millis = parseRetryAfter(answer.headers["retry-after"], ctx.now)
  return millis === undefined ? {} : { retryAfterMillis: millis }
}

const TRUNCATED_NOTE = `(body truncated at ${MAX_BODY_BYTES / 1024} KiB)`

const excerptOf = ({ answer, redactor }: Seen): { bodyExcerpt?: string } => {
  const excerpt = elide(answer.body, redactor)
  if (answer.truncated === true) return { bodyExcerpt: excerpt === "" ? TRUNCATED_NOTE : `${excerpt} ${TRUNCATED_NOTE}` }
  return excerpt === "" ? {} : { bodyExcerpt: excerpt }
}

/** The host (and port) of a redirect's `Location`, resolved against the request URL; nothing else of it. */
const locationHost = (
  location: string | undefined,
  base: string | undefined,
  redactor: Redactor
): string | undefined => {
  if (location === undefined || location.trim() === "") return undefined
  try {
    const host = new URL(location.trim(), base).host
    return host === "" ? undefined : scrub(host, redactor, 255)
  } catch {
    return undefined
  }
}

/** A 3xx (or the status 0 of an opaque redirect): never followed, never an OAuth answer. */
const isRedirect = (status: number): boolean => status === 0 || (status >= 300 && status < 400)

/**
 * The `InvalidRequest` for an answer that is a redirect (naming only the `Location` host), `undefined` otherwise.
 *
 * @internal
 */
export const redirectOf = (
  answer: Pick<Answer, "status" | "headers">,
  ctx: Pick<ClassifyContext, "url"> & { readonly redactor: Redactor }
): Errors.InvalidRequest | undefined => {
  if (!isRedirect(answer.status)) return undefined
  const host = locationHost(answer.headers["location"], ctx.url, ctx.redactor)
  return new Errors.InvalidRequest({ status: answer.status, ...(host !== undefined ? { redirectTo: host } : {}) })
}

/**
 * `WWW-Authenticate: Basic realm="x", error="invalid_client", error_description="..."` → its auth-params. Only the
 * first 4 KiB are read: the OAuth params come first, and the cost stays bounded whatever the header holds.
 */
const parseWwwAuthenticate = (value: string | undefined): Record<string, string> => {
  const params: Record<string, string> = Object.create(null)
  if (value === undefined) return params
  for (const match of value.slice(0, 4096).matchAll(/(?<![a-zA-Z_])([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) {
    params[match[1]!.toLowerCase()] = match[2]!.replace(/\\(.)/g, "$1")
  }
  return params
}

const parseJson = (answer: Answer): Either.Either<unknown, string> => {
  if (answer.truncated === true) {
    return Either.left(`the body is longer than ${MAX_BODY_BYTES / 1024} KiB (body truncated; read no further)`)
  }
  try {
    return Either.right(JSON.parse(answer.body))
  } catch {
    // Deep nesting ends here too (a RangeError): any failure to parse is "not JSON".
    return Either.left(answer.body.trim() === "" ? "the body is empty" : "the body is not JSON (or is truncated)")
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const str = (u: unknown): string | undefined => typeof u === "string" ? u : undefined

const oauthFields = (json: Record<string, unknown>, { answer, ctx, redactor }: Seen): OAuthFields => {
  const www = parseWwwAuthenticate(answer.headers["www-authenticate"])
  // A provider that names its members otherwise (HubSpot: `status`, `message`) says so in its profile.
  const body = ctx.profile?.errorBody
  const error = str(json.error) ?? (body?.errorMember !== undefined ? str(json[body.errorMember]) : undefined) ??
    www.error
  const description = str(json.error_description) ??
    (body?.descriptionMember !== undefined ? str(json[body.descriptionMember]) : undefined) ?? www.error_description
  const uri = str(json.error_uri) ?? www.error_uri
  return {
    status: answer.status,
    ...(error !== undefined ? { oauthError: scrub(error, redactor, 100) } : {}),
    ...(description !== undefined ? { errorDescription: scrub(description, redactor) } : {}),
    ...(uri !== undefined ? { errorUri: scrub(uri, redactor) } : {})
  }
}

/** A lifetime in seconds: a non-negative finite number, or a numeric string (some servers quote it). */
const seconds = (value: unknown): number | undefined => {
  const n = typeof value === "number"
    ? value
    : typeof value === "string" && /^\s*\d{1,20}(?:\.\d{1,20})?\s*$/.test(value)
    ? Number(value)
    : Number.NaN
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

/**
 * RFC 6749 §5.1, read member by member so that a problem in one optional member never costs the others:
 * - `access_token` (a non-empty string) and `token_type` (a string, one of the accepted types) are required; without
 *   them the answer cannot be used as a token response.
 * - `expires_in`, `refresh_expires_in` (seconds: a non-negative number or numeric string), `refresh_token` (a
 *   non-empty string) and `scope` (a string) are optional: `null` is absent, and a value of the wrong type is treated
 *   as absent and named in `ignored` (the engine then uses its default lifetime, keeps the previous refresh token or
 *   scope).
 * Any other member is not looked at.
 */
const decodeTokenResponse = (json: Record<string, unknown>, { ctx, redactor }: Seen): Either.Either<TokenResponse, string> => {
  const accessToken = json.access_token
  if (typeof accessToken !== "string" || accessToken === "") {
    return Either.left(
      accessToken === undefined || accessToken === null ? "missing access_token" : "invalid access_token (not a non-empty string)"
    )
  }
  const tokenType = json.token_type
  if (typeof tokenType !== "string") {
    return Either.left(tokenType === undefined || tokenType === null ? "missing token_type" : "invalid token_type (not a string)")
  }
  if (!ctx.acceptedTokenTypes.includes(tokenType.toLowerCase())) {
    return Either.left(
      `unexpected token_type ${JSON.stringify(scrub(tokenType, redactor, 40))} (accepted: ${ctx.acceptedTokenTypes.join(", ")})`
    )
  }
  const ignored: Array<string> = []
  const optional = <A>(name: string, read: (value: unknown) => A | undefined): A | undefined => {
    const value = json[name]
    if (value === undefined || value === null) return undefined
    const read_ = read(value)
    if (read_ === undefined) ignored.push(name)
    return read_
  }
  const expiresIn = optional("expires_in", seconds)
  // Keycloak's name unless the provider's profile names another (GitHub: `refresh_token_expires_in`).
  const refreshExpiresIn = optional(ctx.profile?.refreshTokenLifetime?.member ?? "refresh_expires_in", seconds)
  const refreshToken = optional("refresh_token", (v) => typeof v === "string" && v !== "" ? v : undefined)
  const scope = optional("scope", (v) => typeof v === "string" ? v : undefined)
  return Either.right(
    new TokenResponse({
      access_token: Redacted.make(accessToken),
      token_type: tokenType,
      ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
      ...(refreshToken !== undefined ? { refresh_token: Redacted.make(refreshToken) } : {}),
      ...(refreshExpiresIn !== undefined ? { refresh_expires_in: refreshExpiresIn } : {}),
      ...(scope !== undefined ? { scope } : {}),
      ...(ignored.length > 0 ? { ignored } : {})
    })
  )
}

/** A usable `refresh_token` member of a 2xx JSON object, to keep even when the rest of the answer is unusable. */
const rotatedRefreshTokenOf = (json: Record<string, unknown>): Redacted.Redacted<string> | undefined =>
  typeof json.refresh_token === "string" && json.refresh_token !== "" ? Redacted.make(json.refresh_token) : undefined

/**
 * Classifies one answer of the token endpoint. Total: any status, headers and body give a token response or one
 * tagged error, never a defect. A body longer than `MAX_BODY_BYTES` is looked at only up to there.
 *
 * @internal
 */
export const classifyAnswer = (raw: Answer, ctx: ClassifyContext): Either.Either<TokenResponse, Classified> => {
  const answer: Answer = raw.body.length > MAX_BODY_BYTES
    ? { ...raw, body: raw.body.slice(0, MAX_BODY_BYTES), truncated: true }
    : raw
  const seen: Seen = { answer, ctx, redactor: makeRedactor(ctx.secrets) }

  const redirect = redirectOf(answer, { url: ctx.url, redactor: seen.redactor })
  if (redirect !== undefined) return Either.left(redirect)

  const parsed = parseJson(answer)
  const json = Either.isRight(parsed) && isRecord(parsed.right) ? parsed.right : {}
  const fields = oauthFields(json, seen)

  // An error code wins over the status: GitHub answers 200 with an error body. The provider's own codes first.
  const family = fields.oauthError !== undefined ? familyOf(ctx.profile, fields.oauthError) : undefined
  const byCode = family !== undefined
    ? byFamily[family]
    : fields.oauthError !== undefined && Object.hasOwn(byErrorCode, fields.oauthError)
    ? byErrorCode[fields.oauthError]
    : undefined
  if (byCode !== undefined) {
    const error = byCode(fields, seen)
    return Either.left(error._tag === "InvalidGrant" ? explainGrant(ctx.profile, error) : error)
  }
  // A provider that marks its error bodies (Slack: `"ok": false`) said this is an error, whatever its code: the
  // server's own refusal, not a broken answer.
  const okMember = ctx.profile?.errorBody?.okMember
  if (okMember !== undefined && json[okMember] === false) return Either.left(new Errors.InvalidRequest(fields))

  if (answer.status >= 200 && answer.status < 300) {
    if (Either.isLeft(parsed)) return Either.left(malformed(seen, parsed.left))
    if (!isRecord(parsed.right)) return Either.left(malformed(seen, "the body is not a JSON object"))
    const rotated = rotatedRefreshTokenOf(parsed.right)
    if (fields.oauthError !== undefined) {
      return Either.left(
        malformed(seen, `the body carries an unknown error code ${JSON.stringify(fields.oauthError)}`, parsed.right, rotated)
      )
    }
    const decoded = decodeTokenResponse(parsed.right, seen)
    if (Either.isLeft(decoded)) return Either.left(malformed(seen, decoded.left, parsed.right, rotated))
    return Either.right(decoded.right)
  }

  for (const row of byStatus) {
    if (row.when(answer.status)) return Either.left(row.to(fields, seen))
  }
  // 1xx or anything else no rule covers.
  return Either.left(malformed(seen, `unexpected status ${answer.status}`))
}

// A 2xx JSON object that is not a token response may still carry fresh tokens under names we do not know: quote
// only its member names, never its values.
const malformed = (
  seen: Seen,
  detail: string,
  json?: Record<string, unknown>,
  rotatedRefreshToken?: Redacted.Redacted<string>
): Errors.MalformedResponse => {
  const { answer, redactor } = seen
  const kept = rotatedRefreshToken !== undefined ? { rotatedRefreshToken } : {}
  if (json !== undefined) {
    const names = Object.keys(json)
    const members = names.slice(0, 12).map((name) => JSON.stringify(scrub(name, redactor, 64)))
    const more = names.length > 12 ? ` and ${names.length - 12} more` : ""
    return new Errors.MalformedResponse({
      status: answer.status,
      detail,
      bodyExcerpt: `a JSON object with members ${members.join(", ") || "(none)"}${more}`,
      ...kept
    })
  }
  return new Errors.MalformedResponse({ status: answer.status, detail, ...excerptOf(seen), ...kept })
}

/**
 * A short, human description of a transport failure, from the error codes in its cause chain. Never the request.
 *
 * @internal
 */
export const describeTransportFailure = (cause: unknown): string => {
  const seen: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (typeof current === "object") {
      const code = (current as { code?: unknown }).code
      const message = (current as { message?: unknown }).message
      if (typeof code === "string" && !seen.includes(code)) seen.push(code)
      else if (typeof message === "string" && seen.length === 0 && message !== "fetch failed") seen.push(message)
      current = (current as { cause?: unknown }).cause
    } else {
      break
    }
  }
  return seen.length === 0 ? "connection failed" : seen.join(": ")
}
