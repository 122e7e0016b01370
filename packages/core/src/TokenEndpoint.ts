/**
 * The RFC 6749 §6 refresh request over `@effect/platform`'s HttpClient (Fetch, Node or Undici: whichever layer the
 * application provides). One call is one HTTP attempt, classified into a token response or one tagged error; retries
 * are the Refresher's job.
 *
 * @since 0.1.0
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { classifyAnswer, describeTransportFailure, redirectOf } from "./internal/classify.js"
import { basicCredentials, httpClientAttributes, parseIntrospection, validateUrl } from "./internal/endpointConfig.js"
import { readCapped, withoutRedirects } from "./internal/httpExchange.js"
import { makeRedactor } from "./internal/redact.js"
import type { ProviderProfile } from "./ProviderProfile.js"
import * as Errors from "./RefreshError.js"
import * as Telemetry from "./Telemetry.js"
import type { TokenResponse } from "./Token.js"

/**
 * How the client authenticates at the token endpoint (RFC 6749 §2.3.1; OpenID Connect Core §9).
 *
 * @since 0.1.0
 * @category models
 */
export type AuthMethod = "client_secret_basic" | "client_secret_post" | "none"

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenEndpointOptions {
  /**
   * The token endpoint. Must be https, except on a loopback host (127.0.0.0/8, ::1, localhost). It must answer
   * directly: a redirect is never followed (it would resend the refresh token and the client credentials), it is an
   * `InvalidRequest` naming the host the `Location` points to. At most 64 KiB of any answer is read.
   */
  readonly url: string
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** Default: `client_secret_basic` when a secret is given, `none` otherwise. */
  readonly authMethod?: AuthMethod | undefined
  /** Scope to request on every refresh. Default: none, which keeps the granted scope (RFC 6749 §6). */
  readonly scope?: string | undefined
  /** Extra form parameters sent with every refresh (e.g. `resource`, `audience`). */
  readonly extraParams?: Readonly<Record<string, string>> | undefined
  /** Budget of one HTTP attempt, from sending to the last body byte. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Accepted `token_type` values (compared case-insensitively). Default `["Bearer"]`. */
  readonly acceptedTokenTypes?: ReadonlyArray<string> | undefined
  /**
   * Send W3C trace context (`traceparent`) to the token endpoint. Off by default: the authorization server is
   * usually a third party.
   */
  readonly propagateTraceContext?: boolean | undefined
  /**
   * The server's RFC 7662 introspection endpoint, authenticated like the token endpoint. When set, Renew learns each
   * refresh token's expiry and, when a refresh fails with `invalid_grant`, asks the server whether the token is
   * still active, to tell an expired refresh token from a revoked one (`InvalidGrant.reason`). Costs one extra
   * request per stored refresh token. Same https rule as `url`.
   */
  readonly introspectionUrl?: string | undefined
  /**
   * The provider this endpoint belongs to (see `ProviderProfile`, `Providers`): its dialect (errors in 200 bodies,
   * error codes outside RFC 6749, the codes that tell why a refresh token died) and its defaults for `authMethod`,
   * `acceptedTokenTypes` and `defaultLifetime`. Default: plain RFC 6749.
   */
  readonly profile?: ProviderProfile | undefined
  /**
   * Lifetime assumed for this endpoint's access tokens when an answer has no `expires_in`; wins over the Refresher's
   * `defaultLifetime`. Default: the profile's documented lifetime, if any.
   */
  readonly defaultLifetime?: Duration.DurationInput | undefined
}

/**
 * What RFC 7662 introspection says about a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Introspection {
  readonly active: boolean
  /** Expiry, epoch millis, when the server says. */
  readonly expiresAt?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RefreshRequest {
  readonly refreshToken: Redacted.Redacted<string>
  /** Overrides the endpoint's configured scope for this request. */
  readonly scope?: string | undefined
  /** Attempt number within one refresh (1-based), for the attempt span. */
  readonly attempt?: number | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TokenEndpoint extends Context.Tag("@renew/core/TokenEndpoint")<TokenEndpoint, {
  readonly url: string
  /** Host (and port) of the token endpoint, for messages and spans. */
  readonly host: string
  readonly clientId: string
  readonly authMethod: AuthMethod
  /** The provider profile the endpoint reads answers with, if any. */
  readonly profile?: ProviderProfile | undefined
  /** Lifetime (millis) assumed for an access token whose answer has no `expires_in`, when this endpoint knows one. */
  readonly defaultLifetimeMillis?: number | undefined
  /** Budget of one attempt. */
  readonly timeoutMillis: number
  /** One refresh attempt: one HTTP request, classified. */
  readonly refresh: (request: RefreshRequest) => Effect.Effect<TokenResponse, Errors.RefreshError>
  /**
   * Best-effort RFC 7662 introspection of a token (`None` when not configured or when the server did not give a
   * usable answer). Never fails: it only ever refines a diagnosis.
   */
  readonly introspect: (token: Redacted.Redacted<string>) => Effect.Effect<Option.Option<Introspection>>
  /**
   * The grant-key label for spans and logs, keyed by a value derived from the client secret (the client id for a
   * public client): see `Telemetry.grantKeyHasher`.
   */
  readonly grantKeyLabel?: ((key: string) => string) | undefined
}>() {}

/**
 * Validates the endpoint configuration. Refuses a malformed URL, a non-https URL on a non-loopback host, a URL with
 * credentials, and an auth method that needs a secret without one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validateOptions = (options: TokenEndpointOptions): Either.Either<URL, Errors.ConfigurationError> => {
  const url = validateUrl("url", options.url)
  if (Either.isLeft(url)) return url
  if (options.introspectionUrl !== undefined) {
    const introspection = validateUrl("introspectionUrl", options.introspectionUrl)
    if (Either.isLeft(introspection)) return Either.left(introspection.left)
  }
  if (options.clientId === "") {
    return Either.left(new Errors.ConfigurationError({ option: "clientId", detail: "must not be empty" }))
  }
  const method = authMethodOf(options)
  if (method !== "none" && options.clientSecret === undefined) {
    return Either.left(
      new Errors.ConfigurationError({ option: "clientSecret", detail: `auth method ${method} needs a client secret` })
    )
  }
  if (options.timeout !== undefined && Duration.toMillis(options.timeout) <= 0) {
    return Either.left(new Errors.ConfigurationError({ option: "timeout", detail: "must be positive" }))
  }
  if (options.defaultLifetime !== undefined && !(Duration.toMillis(options.defaultLifetime) > 0)) {
    return Either.left(new Errors.ConfigurationError({ option: "defaultLifetime", detail: "must be positive" }))
  }
  return url
}

// Without a secret there is nothing to authenticate with; with one, the profile's documented method, else Basic.
const authMethodOf = (options: TokenEndpointOptions): AuthMethod =>
  options.authMethod ??
    (options.clientSecret === undefined
      ? "none"
      : options.profile?.authMethod !== undefined && options.profile.authMethod.value !== "none"
      ? options.profile.authMethod.value
      : "client_secret_basic")

const defaultLifetimeOf = (options: TokenEndpointOptions): number | undefined =>
  options.defaultLifetime !== undefined
    ? Duration.toMillis(options.defaultLifetime)
    : options.profile?.accessTokenLifetime?.seconds !== undefined
    ? options.profile.accessTokenLifetime.seconds * 1000
    : undefined

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: TokenEndpointOptions
): Effect.Effect<TokenEndpoint["Type"], Errors.ConfigurationError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const url = yield* validateOptions(options)
    // The attempt span is the request's one CLIENT span: the HTTP client's own span would be a second, with other
    // attributes (`server.address` with scheme and port, status OK on a 503).
    const client = HttpClient.withTracerDisabledWhen(yield* HttpClient.HttpClient, () => true)
    const propagate = options.propagateTraceContext === true
    const authMethod = authMethodOf(options)
    const timeoutMillis = Duration.toMillis(options.timeout ?? Duration.seconds(10))
    const acceptedTokenTypes = (options.acceptedTokenTypes ?? options.profile?.tokenTypes?.value ?? ["Bearer"])
      .map((t) => t.toLowerCase())
    const defaultLifetimeMillis = defaultLifetimeOf(options)
    const host = url.host
    const authorization = authMethod === "client_secret_basic"
      ? basicCredentials(options.clientId, options.clientSecret!)
      : undefined
    // Never to be quoted back, in any encoding: the client secret and the Basic credential it travels in.
    const clientSecrets = [
      ...(options.clientSecret !== undefined ? [Redacted.value(options.clientSecret)] : []),
      ...(authorization !== undefined ? [Redacted.value(authorization).slice("Basic ".length)] : [])
    ]

    const httpAttributes = httpClientAttributes("POST", url)
    /** W3C trace context of the current (attempt) span, when asked for: the authorization server is often a third party. */
    const withTraceContext = (
      request: HttpClientRequest.HttpClientRequest
    ): Effect.Effect<HttpClientRequest.HttpClientRequest> =>
      propagate
        ? Effect.map(
          Effect.option(Effect.currentSpan),
          Option.match({
            onNone: () => request,
            onSome: (span) =>
              HttpClientRequest.setHeader(
                request,
                "traceparent",
                `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
              )
          })
        )
        : Effect.succeed(request)

    const buildRequest = (request: RefreshRequest, scope: string | undefined) => {
      const params: Record<string, string> = {
        ...options.extraParams,
        grant_type: "refresh_token",
        refresh_token: Redacted.value(request.refreshToken)
      }
      if (scope !== undefined) params.scope = scope
      if (authMethod === "client_secret_post") {
        params.client_id = options.clientId
        params.client_secret = Redacted.value(options.clientSecret!)
      } else if (authMethod === "none") {
        params.client_id = options.clientId
      }
      // A form body keeps the refresh token out of the URL, and so out of the attempt span.
      let http = HttpClientRequest.post(url.href).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams(params)
      )
      if (authorization !== undefined) {
        http = HttpClientRequest.setHeader(http, "authorization", Redacted.value(authorization))
      }
      return http
    }

    const refresh = (request: RefreshRequest): Effect.Effect<TokenResponse, Errors.RefreshError> => {
      const scope = request.scope ?? options.scope
      const secrets = [Redacted.value(request.refreshToken), ...clientSecrets]
      return Effect.gen(function*() {
        const answer = yield* Effect.flatMap(withTraceContext(buildRequest(request, scope)), client.execute).pipe(
          Effect.flatMap((response) =>
            Effect.map(readCapped(response), ({ body, truncated }) => ({
              status: response.status,
              headers: response.headers,
              body,
              truncated
            }))
          ),
          Effect.scoped,
          withoutRedirects,
          Effect.timeoutFail({
            duration: timeoutMillis,
            onTimeout: () => new Errors.Timeout({ host, timeoutMillis })
          }),
          Effect.catchTags({
            RequestError: (error) =>
              Effect.fail(
                error.reason === "Transport"
                  ? new Errors.NetworkError({ host, detail: describeTransportFailure(error.cause) })
                  : new Errors.NetworkError({ host, detail: `the request could not be built (${error.reason})` })
              ),
            // The status line arrived but the body did not: the connection broke mid-answer.
            ResponseError: (error) =>
              Effect.fail(
                new Errors.NetworkError({
                  host,
                  detail: `the connection failed while reading the answer (${describeTransportFailure(error.cause)})`
                })
              )
          })
        )
        yield* Effect.annotateCurrentSpan(Telemetry.Attributes.httpStatus, answer.status)
        const now = yield* Clock.currentTimeMillis
        const classified = classifyAnswer(answer, {
          now,
          secrets,
          requestedScope: scope,
          acceptedTokenTypes,
          url: url.href,
          profile: options.profile
        })
        return yield* classified
      }).pipe(
        Effect.tapError((error) =>
          Effect.annotateCurrentSpan({
            [Telemetry.Attributes.errorType]: error._tag,
            ...("oauthError" in error && error.oauthError !== undefined
              ? { [Telemetry.Attributes.oauthError]: error.oauthError }
              : {})
          })
        ),
        // Every attempt, failed ones included (Metric.trackDuration records successes only).
        (attempt) =>
          Effect.flatMap(Clock.currentTimeNanos, (start) =>
            Effect.onExit(attempt, () =>
              Effect.flatMap(Clock.currentTimeNanos, (end) =>
                Metric.update(Telemetry.attemptDuration, Number(end - start) / 1e9)))),
        Effect.withSpan(Telemetry.SpanNames.attempt, {
          kind: "client",
          captureStackTrace: false,
          attributes: {
            ...httpAttributes,
            [Telemetry.Attributes.attempt]: request.attempt ?? 1,
            [Telemetry.Attributes.clientId]: options.clientId
          }
        })
      )
    }

    const introspectionUrl = options.introspectionUrl
    const introspectionAttributes = introspectionUrl === undefined
      ? {}
      : { ...httpClientAttributes("POST", new URL(introspectionUrl)), [Telemetry.Attributes.clientId]: options.clientId }
    const introspect = (token: Redacted.Redacted<string>): Effect.Effect<Option.Option<Introspection>> => {
      if (introspectionUrl === undefined) return Effect.succeedNone
      const params: Record<string, string> = { token: Redacted.value(token) }
      if (authMethod === "client_secret_post") {
        params.client_id = options.clientId
        params.client_secret = Redacted.value(options.clientSecret!)
      } else if (authMethod === "none") {
        params.client_id = options.clientId
      }
      let http = HttpClientRequest.post(introspectionUrl).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyUrlParams(params)
      )
      if (authorization !== undefined) {
        http = HttpClientRequest.setHeader(http, "authorization", Redacted.value(authorization))
      }
      return Effect.flatMap(withTraceContext(http), client.execute).pipe(
        Effect.tap((response) => Effect.annotateCurrentSpan(Telemetry.Attributes.httpStatus, response.status)),
        Effect.flatMap((response) => {
          const redirect = redirectOf(response, {
            url: introspectionUrl,
            redactor: makeRedactor([Redacted.value(token), ...clientSecrets])
          })
          // Never followed. Introspection only refines a diagnosis and cannot fail, so the log says it.
          if (redirect !== undefined) {
            return Effect.as(
              Effect.logWarning(`renew: introspection not used: ${redirect.message}`),
              Option.none<Introspection>()
            )
          }
          return response.status === 200 ? Effect.map(readCapped(response), parseIntrospection) : Effect.succeedNone
        }),
        Effect.scoped,
        withoutRedirects,
        Effect.timeout(timeoutMillis),
        Effect.orElseSucceed(() => Option.none<Introspection>()),
        Effect.withSpan("renew.introspect", {
          kind: "client",
          captureStackTrace: false,
          attributes: introspectionAttributes
        })
      )
    }

    return TokenEndpoint.of({
      url: url.href,
      host,
      clientId: options.clientId,
      authMethod,
      ...(options.profile !== undefined ? { profile: options.profile } : {}),
      ...(defaultLifetimeMillis !== undefined ? { defaultLifetimeMillis } : {}),
      timeoutMillis,
      refresh,
      introspect,
      grantKeyLabel: Telemetry.grantKeyHasher(options.clientSecret ?? Redacted.make(`public-client:${options.clientId}`))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: TokenEndpointOptions
): Layer.Layer<TokenEndpoint, Errors.ConfigurationError, HttpClient.HttpClient> =>
  Layer.effect(TokenEndpoint, make(options))
