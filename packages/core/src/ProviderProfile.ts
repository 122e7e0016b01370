/**
 * Provider profiles: what one OAuth provider does, as data with a public source next to every fact. A profile is
 * selected by name (`Providers.byName`) and applied to one token endpoint (one OAuth client): it fills in the URLs
 * (with tenant, domain or instance templates), the auth method and token types the provider expects, the lifetime
 * to assume when an answer has no `expires_in`, and it teaches the endpoint the provider's dialect: errors in 200
 * bodies, error codes outside RFC 6749, and the codes or descriptions that tell why a refresh token died
 * (`InvalidGrant.reason`, `providerCode`, `remedy`) without asking the server again.
 *
 * A behaviour without a public source is not in a profile: the engine's RFC 6749 defaults apply instead.
 *
 * @since 0.3.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Errors from "./RefreshError.js"
import * as TokenEndpoint from "./TokenEndpoint.js"

/**
 * A fact and the public page that says it (the provider's documentation, its client library, or a well-known issue
 * thread), as an https URL.
 *
 * @since 0.3.0
 * @category models
 */
export interface Sourced<A> {
  readonly value: A
  readonly source: string
  /** A short qualification, shown in the README table. */
  readonly note?: string | undefined
}

/**
 * Whether a refresh returns a new refresh token that replaces the old one: `always`, `never`, `optional` (a setting
 * of the app or tenant), or `undocumented` (no public source: Renew assumes it may).
 *
 * @since 0.3.0
 * @category models
 */
export type Rotation = "always" | "never" | "optional" | "undocumented"

/**
 * The tagged error an error code stands for.
 *
 * @since 0.3.0
 * @category models
 */
export type ErrorFamily =
  | "InvalidGrant"
  | "InvalidClient"
  | "UnauthorizedClient"
  | "InvalidScope"
  | "InvalidRequest"
  | "UnsupportedGrantType"
  | "RateLimited"
  | "ServerError"

/**
 * An `error` code outside RFC 6749 §5.2, and what it means.
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorCode {
  readonly code: string
  readonly means: ErrorFamily
  readonly source: string
}

/**
 * How to tell why a refresh token was refused. A rule matches an `InvalidGrant` whose `error` is `error` (any, when
 * absent) and whose description contains `descriptionIncludes` (any, when absent); the first matching rule wins.
 *
 * @since 0.3.0
 * @category models
 */
export interface GrantRule {
  readonly error?: string | undefined
  readonly descriptionIncludes?: string | undefined
  /** The provider's own code for the cause, carried on the error as `providerCode`. */
  readonly code?: string | undefined
  /** Left out when the provider's answer does not tell the cause (the remedy still helps). */
  readonly reason?: Errors.InvalidGrantReason | undefined
  /** What to do, in the provider's terms. */
  readonly remedy?: string | undefined
  readonly source: string
}

/**
 * A parameter of the URL templates (`{tenant}`, `{domain}`, ...).
 *
 * @since 0.3.0
 * @category models
 */
export interface TemplateParam {
  readonly description: string
  /** Used when the client config gives no value. */
  readonly default?: string | undefined
}

/**
 * Where a provider puts errors when they are not RFC 6749 §5.2 JSON on a 4xx.
 *
 * @since 0.3.0
 * @category models
 */
export interface ErrorBody {
  /** Errors come with HTTP 200. */
  readonly status200: boolean
  /** A member whose value `false` marks an error body whatever its code (Slack's `ok`). */
  readonly okMember?: string | undefined
  /** The member holding the error code when there is no `error` (HubSpot's `status`). */
  readonly errorMember?: string | undefined
  /** The member holding the description when there is no `error_description` (HubSpot's `message`). */
  readonly descriptionMember?: string | undefined
  readonly source: string
}

/**
 * @since 0.3.0
 * @category models
 */
export interface ProviderProfile {
  /** Selects the profile: `Providers.byName(name)`. Lower case, digits and dashes. */
  readonly name: string
  /** For people: messages, the README table. */
  readonly title: string
  /** The token endpoint; `{param}` placeholders are filled from the client config (`params`). */
  readonly tokenUrl: Sourced<string>
  /** RFC 7662 introspection, when the provider offers it to clients. */
  readonly introspectionUrl?: Sourced<string> | undefined
  /** RFC 7009 (or the provider's) revocation endpoint. */
  readonly revocationUrl?: Sourced<string> | undefined
  readonly params?: Readonly<Record<string, TemplateParam>> | undefined
  /** The client authentication the provider documents for the token endpoint (absent: RFC 6749's Basic). */
  readonly authMethod?: Sourced<TokenEndpoint.AuthMethod> | undefined
  /** `token_type` values the provider answers with, when not only `Bearer`. */
  readonly tokenTypes?: Sourced<ReadonlyArray<string>> | undefined
  /** Refresh-token rotation, and for how long a rotated token is still accepted (seconds), when documented. */
  readonly rotation: Sourced<Rotation> & { readonly reuseIntervalSeconds?: number | undefined }
  /**
   * The access token's lifetime: `seconds` is assumed when an answer has no `expires_in`; `sentAsExpiresIn` says
   * whether the provider sends `expires_in` at all.
   */
  readonly accessTokenLifetime?:
    | {
      readonly seconds?: number | undefined
      readonly sentAsExpiresIn: boolean
      readonly source: string
      readonly note?: string | undefined
    }
    | undefined
  /** The refresh token's lifetimes in seconds, and the answer member that states it, when there is one. */
  readonly refreshTokenLifetime?:
    | {
      readonly maxSeconds?: number | undefined
      /** Unused for this long, it expires: keep-alive refreshes must come sooner (`ProviderProfile.keepAlive`). */
      readonly idleSeconds?: number | undefined
      /** The answer member with the refresh token's lifetime in seconds (e.g. `refresh_token_expires_in`). */
      readonly member?: string | undefined
      readonly source: string
      readonly note?: string | undefined
    }
    | undefined
  readonly errorBody?: ErrorBody | undefined
  readonly errorCodes?: ReadonlyArray<ErrorCode> | undefined
  readonly grantRules?: ReadonlyArray<GrantRule> | undefined
  /** Other behaviour worth knowing (shown in the README table). */
  readonly notes?: ReadonlyArray<Sourced<string>> | undefined
}

/**
 * Declares a profile (an identity function that checks the shape at compile time).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (profile: ProviderProfile): ProviderProfile => profile

const HTTPS = /^https:\/\/[^\s]+$/
const PLACEHOLDER = /\{([a-zA-Z][a-zA-Z0-9_]*)\}/g

/**
 * What is wrong with a profile (empty when nothing): every source an https URL, every template placeholder
 * declared, a name that selects it.
 *
 * @since 0.3.0
 * @category validation
 */
export const problems = (profile: ProviderProfile): ReadonlyArray<string> => {
  const found: Array<string> = []
  if (!/^[a-z0-9-]+$/.test(profile.name)) found.push(`name ${JSON.stringify(profile.name)} is not lower-case-with-dashes`)
  const sources: Array<[string, string | undefined]> = [
    ["tokenUrl", profile.tokenUrl.source],
    ["introspectionUrl", profile.introspectionUrl?.source],
    ["revocationUrl", profile.revocationUrl?.source],
    ["authMethod", profile.authMethod?.source],
    ["tokenTypes", profile.tokenTypes?.source],
    ["rotation", profile.rotation.source],
    ["accessTokenLifetime", profile.accessTokenLifetime?.source],
    ["refreshTokenLifetime", profile.refreshTokenLifetime?.source],
    ["errorBody", profile.errorBody?.source],
    ...(profile.errorCodes ?? []).map((c): [string, string] => [`errorCodes ${c.code}`, c.source]),
    ...(profile.grantRules ?? []).map((r, i): [string, string] => [`grantRules[${i}]`, r.source]),
    ...(profile.notes ?? []).map((n, i): [string, string] => [`notes[${i}]`, n.source])
  ]
  for (const [what, source] of sources) {
    if (what === "rotation" && profile.rotation.value === "undocumented") continue
    if (source !== undefined && !HTTPS.test(source)) found.push(`${what}: source ${JSON.stringify(source)} is not an https URL`)
  }
  if (profile.rotation.value !== "undocumented" && !HTTPS.test(profile.rotation.source)) {
    found.push("rotation: a documented rotation needs a source")
  }
  for (const url of [profile.tokenUrl, profile.introspectionUrl, profile.revocationUrl]) {
    if (url === undefined) continue
    for (const match of url.value.matchAll(PLACEHOLDER)) {
      if (profile.params?.[match[1]!] === undefined) found.push(`${url.value}: {${match[1]}} is not declared in params`)
    }
  }
  for (const rule of profile.grantRules ?? []) {
    if (rule.reason === undefined && rule.remedy === undefined) found.push(`grant rule ${rule.code ?? ""}: no reason and no remedy`)
  }
  return found
}

/**
 * Fills a URL template's `{param}` placeholders from `params` or the profile's defaults. Values go in as given (a
 * host parameter may carry a port or a path prefix), but never one that could move the URL elsewhere: whitespace,
 * `?`, `#` and `@` are refused, except for a placeholder that is the whole URL.
 *
 * @since 0.3.0
 * @category utils
 */
export const resolveUrl = (
  profile: ProviderProfile,
  template: string,
  params: Readonly<Record<string, string>> = {}
): Errors.ConfigurationError | string => {
  const missing: Array<string> = []
  const url = template.replace(PLACEHOLDER, (_, name: string) => {
    const value = params[name] ?? profile.params?.[name]?.default
    if (value === undefined || value === "" || (template !== `{${name}}` && /[\s?#@]/.test(value))) {
      missing.push(name)
      return ""
    }
    return value
  })
  if (missing.length > 0) {
    return new Errors.ConfigurationError({
      option: "params",
      detail: `the ${profile.title} profile needs a usable ${missing.map((name) => `${name} (${profile.params?.[name]?.description ?? ""})`).join(", ")}`
    })
  }
  return url
}

/**
 * A client of a provider: its credentials, the values of the profile's URL templates, and any `TokenEndpointOptions`
 * to set over the profile's.
 *
 * @since 0.3.0
 * @category models
 */
export interface ClientConfig extends Partial<Omit<TokenEndpoint.TokenEndpointOptions, "clientId" | "profile">> {
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Values for the URL templates, e.g. `{ tenant: "contoso.onmicrosoft.com" }`. */
  readonly params?: Readonly<Record<string, string>> | undefined
  /**
   * Use the provider's introspection endpoint (when its profile has one) to learn each refresh token's expiry and
   * tell expired from revoked. Off by default: it costs one request per new refresh token, and the provider may not
   * let every client introspect.
   */
  readonly introspect?: boolean | undefined
}

/**
 * The `TokenEndpointOptions` of one client of `profile`. Fails with a `ConfigurationError` when a URL template needs a
 * parameter the config does not give.
 *
 * @since 0.3.0
 * @category combinators
 */
export const endpointOptions = (
  profile: ProviderProfile,
  config: ClientConfig
): Effect.Effect<TokenEndpoint.TokenEndpointOptions, Errors.ConfigurationError> =>
  Effect.suspend(() => {
    const { introspect, params, ...rest } = config
    const url = rest.url ?? resolveUrl(profile, profile.tokenUrl.value, params)
    if (typeof url !== "string") return Effect.fail(url)
    const introspectionUrl = rest.introspectionUrl ??
      (introspect === true && profile.introspectionUrl !== undefined ? resolveUrl(profile, profile.introspectionUrl.value, params) : undefined)
    if (introspectionUrl !== undefined && typeof introspectionUrl !== "string") return Effect.fail(introspectionUrl)
    return Effect.succeed({
      ...rest,
      url,
      ...(introspectionUrl !== undefined ? { introspectionUrl } : {}),
      profile
    })
  })

/**
 * A `TokenEndpoint` layer for one client of `profile`.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (
  profile: ProviderProfile,
  config: ClientConfig
): Layer.Layer<TokenEndpoint.TokenEndpoint, Errors.ConfigurationError, HttpClient.HttpClient> =>
  Layer.effect(TokenEndpoint.TokenEndpoint, Effect.flatMap(endpointOptions(profile, config), TokenEndpoint.make))

/**
 * The Promise facade's options for one client of `profile` (`TokenManager.make({ ...managerOptions(...), clientId,
 * clientSecret })`). Throws a `ConfigurationError` when a URL template needs a parameter that `params` does not give.
 *
 * @since 0.3.0
 * @category combinators
 */
export const managerOptions = (
  profile: ProviderProfile,
  config: { readonly params?: Readonly<Record<string, string>> | undefined } = {}
): { readonly tokenEndpoint: string; readonly profile: ProviderProfile } => {
  const url = resolveUrl(profile, profile.tokenUrl.value, config.params)
  if (typeof url !== "string") throw url
  return { tokenEndpoint: url, profile }
}

/**
 * A keep-alive interval for the provider's idle expiry: half its idle window (so one missed sweep still leaves time),
 * or `undefined` when the provider documents none.
 *
 * @since 0.3.0
 * @category utils
 */
export const keepAlive = (profile: ProviderProfile): Duration.Duration | undefined => {
  const idle = profile.refreshTokenLifetime?.idleSeconds
  return idle === undefined ? undefined : Duration.seconds(idle / 2)
}

/**
 * The provider's documented reuse interval for a rotated refresh token (the Refresher's `reuseGracePeriod`), or
 * `undefined` when it documents none (or leaves it to a setting you know better).
 *
 * @since 0.3.0
 * @category utils
 */
export const reuseGracePeriod = (profile: ProviderProfile): Duration.Duration | undefined =>
  profile.rotation.reuseIntervalSeconds === undefined ? undefined : Duration.seconds(profile.rotation.reuseIntervalSeconds)
