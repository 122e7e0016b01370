/**
 * The mapping from a token endpoint's answer (status, headers, body) or transport outcome to either a token response
 * or exactly one tagged error. It is a table on purpose: each row is tested on its own.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Errors from "../RefreshError.js"
import { TokenResponse } from "../Token.js"
import { elide, scrub } from "./redact.js"

/** @internal */
export interface Answer {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
}

/** @internal */
export interface ClassifyContext {
  /** Now, in epoch millis (from `Clock`), to turn an HTTP-date `Retry-After` into a delay. */
  readonly now: number
  /** Values that must never be quoted back: the refresh token sent, the client secret. */
  readonly secrets: ReadonlyArray<string>
  readonly requestedScope?: string | undefined
  /** Accepted `token_type` values, lower case. */
  readonly acceptedTokenTypes: ReadonlyArray<string>
}

interface OAuthFields {
  readonly status: number
  readonly oauthError?: string
  readonly errorDescription?: string
  readonly errorUri?: string
}

type Classified = Errors.RefreshError

/** RFC 6749 §5.2 error codes (plus the ones servers send in practice), one constructor each. */
const byErrorCode: Readonly<
  Record<string, (fields: OAuthFields, answer: Answer, ctx: ClassifyContext) => Classified>
> = {
  invalid_grant: (f) => new Errors.InvalidGrant(f),
  // GitHub answers an expired or revoked refresh token with 200 and this code.
  bad_refresh_token: (f) => new Errors.InvalidGrant(f),
  invalid_client: (f) => new Errors.InvalidClient(f),
  unauthorized_client: (f) => new Errors.UnauthorizedClient(f),
  invalid_scope: (f, _, ctx) =>
    new Errors.InvalidScope({ ...f, ...(ctx.requestedScope !== undefined ? { requestedScope: ctx.requestedScope } : {}) }),
  invalid_request: (f) => new Errors.InvalidRequest(f),
  unsupported_grant_type: (f) => new Errors.UnsupportedGrantType(f),
  server_error: (f, answer, ctx) => new Errors.ServerError({ ...f, ...retryAfter(answer, ctx) }),
  temporarily_unavailable: (f, answer, ctx) => new Errors.ServerError({ ...f, ...retryAfter(answer, ctx) }),
  slow_down: (f, answer, ctx) => new Errors.RateLimited({ ...f, ...retryAfter(answer, ctx) })
}

/** When the body carries no OAuth error we recognise, the status decides. First match wins. */
const byStatus: ReadonlyArray<{
  readonly when: (status: number) => boolean
  readonly to: (fields: OAuthFields, answer: Answer, ctx: ClassifyContext) => Classified
}> = [
  { when: (s) => s === 429, to: (f, a, ctx) => new Errors.RateLimited({ ...f, ...retryAfter(a, ctx) }) },
  // RFC 6749 §5.2: a 401 from the token endpoint means client authentication failed.
  { when: (s) => s === 401, to: (f) => new Errors.InvalidClient(f) },
  // Gateways, WAFs and overloaded servers: worth a bounded retry.
  {
    when: (s) => s >= 500 || s === 408 || s === 425 || s === 403,
    to: (f, a, ctx) => new Errors.ServerError({ ...f, ...retryAfter(a, ctx), ...excerptOf(a, ctx) })
  },
  { when: (s) => s >= 300, to: (f) => new Errors.InvalidRequest(f) }
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

const retryAfter = (answer: Answer, ctx: ClassifyContext): { retryAfterMillis?: number } => {
  const millis = parseRetryAfter(answer.headers["retry-after"], ctx.now)
  return millis === undefined ? {} : { retryAfterMillis: millis }
}

const excerptOf = (answer: Answer, ctx: ClassifyContext): { bodyExcerpt?: string } => {
  const excerpt = elide(answer.body, ctx.secrets)
  return excerpt === "" ? {} : { bodyExcerpt: excerpt }
}

/** `WWW-Authenticate: Basic realm="x", error="invalid_client", error_description="..."` → its auth-params. */
const parseWwwAuthenticate = (value: string | undefined): Record<string, string> => {
  const params: Record<string, string> = {}
  if (value === undefined) return params
  for (const match of value.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) {
    params[match[1]!.toLowerCase()] = match[2]!.replace(/\\(.)/g, "$1")
  }
  return params
}

const parseJson = (body: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(body))
  } catch {
    return Either.left(body.trim() === "" ? "the body is empty" : "the body is not JSON (or is truncated)")
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const str = (u: unknown): string | undefined => typeof u === "string" ? u : undefined

const oauthFields = (answer: Answer, json: Record<string, unknown>, ctx: ClassifyContext): OAuthFields => {
  const www = parseWwwAuthenticate(answer.headers["www-authenticate"])
  const error = str(json.error) ?? www.error
  const description = str(json.error_description) ?? www.error_description
  const uri = str(json.error_uri) ?? www.error_uri
  return {
    status: answer.status,
    ...(error !== undefined ? { oauthError: scrub(error, ctx.secrets) } : {}),
    ...(description !== undefined ? { errorDescription: scrub(description, ctx.secrets) } : {}),
    ...(uri !== undefined ? { errorUri: scrub(uri, ctx.secrets) } : {})
  }
}

const decodeTokenResponse = Schema.decodeUnknownEither(TokenResponse)

/** Names the fields that failed, never their values (a value may be a token). */
const describeParseError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  const fields = [...new Set(issues.map((issue) => issue.path.join(".") || "(body)"))]
  const missing = issues.filter((issue) => issue._tag === "Missing").map((issue) => issue.path.join("."))
  if (missing.length > 0) return `missing ${missing.join(", ")}`
  return `invalid ${fields.join(", ")}`
}

/**
 * Classifies one answer of the token endpoint.
 *
 * @internal
 */
export const classifyAnswer = (answer: Answer, ctx: ClassifyContext): Either.Either<TokenResponse, Classified> => {
  const parsed = parseJson(answer.body)
  const json = Either.isRight(parsed) && isRecord(parsed.right) ? parsed.right : {}
  const fields = oauthFields(answer, json, ctx)

  // An error code wins over the status: GitHub answers 200 with an error body.
  const byCode = fields.oauthError !== undefined ? byErrorCode[fields.oauthError] : undefined
  if (byCode !== undefined) return Either.left(byCode(fields, answer, ctx))

  if (answer.status >= 200 && answer.status < 300) {
    if (Either.isLeft(parsed)) return Either.left(malformed(answer, ctx, parsed.left))
    if (!isRecord(parsed.right)) return Either.left(malformed(answer, ctx, "the body is not a JSON object"))
    if (fields.oauthError !== undefined) {
      return Either.left(malformed(answer, ctx, `the body carries an unknown error code ${JSON.stringify(fields.oauthError)}`))
    }
    const decoded = decodeTokenResponse(parsed.right)
    if (Either.isLeft(decoded)) return Either.left(malformed(answer, ctx, describeParseError(decoded.left)))
    const tokenType = decoded.right.token_type.toLowerCase()
    if (!ctx.acceptedTokenTypes.includes(tokenType)) {
      return Either.left(
        malformed(
          answer,
          ctx,
          `unexpected token_type ${JSON.stringify(scrub(decoded.right.token_type, ctx.secrets))} (accepted: ${
            ctx.acceptedTokenTypes.join(", ")
          })`
        )
      )
    }
    return Either.right(decoded.right)
  }

  for (const row of byStatus) {
    if (row.when(answer.status)) return Either.left(row.to(fields, answer, ctx))
  }
  // 1xx or anything else no rule covers.
  return Either.left(malformed(answer, ctx, "unexpected status"))
}

// A 2xx JSON object that is not a token response may still carry fresh tokens under names we do not know: quote
// only its member names, never its values.
const malformed = (answer: Answer, ctx: ClassifyContext, detail: string): Errors.MalformedResponse => {
  const parsed = parseJson(answer.body)
  if (Either.isRight(parsed) && isRecord(parsed.right)) {
    const members = Object.keys(parsed.right).slice(0, 12).map((name) => JSON.stringify(scrub(name, ctx.secrets)))
    return new Errors.MalformedResponse({
      status: answer.status,
      detail,
      bodyExcerpt: `a JSON object with members ${members.join(", ") || "(none)"}`
    })
  }
  return new Errors.MalformedResponse({ status: answer.status, detail, ...excerptOf(answer, ctx) })
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
