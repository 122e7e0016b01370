/**
 * Checks and encodings of the token endpoint's configuration: URLs (https unless loopback, no embedded credentials),
 * the RFC 6749 §2.3.1 Basic credential, and RFC 7662 introspection answers.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Errors from "../RefreshError.js"
import { toEpochMillis } from "../Token.js"
import type { Introspection } from "../TokenEndpoint.js"

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i

/** @internal */
export const validateUrl = (option: string, value: string): Either.Either<URL, Errors.ConfigurationError> => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return Either.left(new Errors.ConfigurationError({ option, detail: `${JSON.stringify(value)} is not a valid URL` }))
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.test(url.hostname))) {
    return Either.left(
      new Errors.ConfigurationError({
        option,
        detail: `must use https (got ${url.protocol}//${url.host}); plain http is only allowed on loopback hosts`
      })
    )
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left(
      new Errors.ConfigurationError({
        option,
        detail: "must not embed credentials; pass clientId and clientSecret instead"
      })
    )
  }
  return Either.right(url)
}

/**
 * The OpenTelemetry HTTP client attributes of a request to `url` (method, host, port, and the URL with every query
 * value replaced by `REDACTED`: a token endpoint URL may carry a key in its query).
 *
 * @internal
 */
export const httpClientAttributes = (method: string, url: URL): Record<string, string | number> => {
  const full = new URL(url.href)
  full.hash = ""
  for (const name of new Set(full.searchParams.keys())) full.searchParams.set(name, "REDACTED")
  return {
    "http.request.method": method,
    "server.address": url.hostname,
    "server.port": url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80,
    "url.full": full.href
  }
}

// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded.
const formEncode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2)

/** @internal */
export const basicCredentials = (clientId: string, secret: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(
    `Basic ${btoa(`${formEncode(clientId)}:${formEncode(Redacted.value(secret))}`)}`
  )

/**
 * RFC 7662: `active` must be a boolean; `exp` (seconds) is used when it is a non-negative finite number, as a whole
 * millisecond within the range a grant can hold.
 */
export const parseIntrospection = ({ body, truncated }: { readonly body: string; readonly truncated: boolean }) => {
  if (truncated) return Option.none<Introspection>()
  let json: unknown
  try {
    json = JSON.parse(body)
  } catch {
    return Option.none<Introspection>()
  }
  if (typeof json !== "object" || json === null) return Option.none<Introspection>()
  const { active, exp } = json as { readonly active?: unknown; readonly exp?: unknown }
  if (typeof active !== "boolean") return Option.none<Introspection>()
  const expiresAt = typeof exp === "number" && Number.isFinite(exp) && exp >= 0 ? toEpochMillis(exp * 1000) : undefined
  return Option.some<Introspection>({ active, ...(expiresAt !== undefined ? { expiresAt } : {}) })
}
