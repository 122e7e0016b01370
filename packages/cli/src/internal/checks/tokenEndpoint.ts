/**
 * client-auth and token-endpoint: both judge the one probe request to the token endpoint (a refresh_token grant with
 * a made-up token). It consumes nothing; its answer says whether the client authenticates and whether the server
 * answers like a token endpoint. clock-skew reads its Date header, and the refresh check makes its real endpoint
 * from the same options.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { type RefreshError, type Token, TokenEndpoint } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import type { ClientCredentials } from "../http.js"
import { introspect } from "../introspection.js"
import { formatDuration } from "../text.js"
import { Remedies, remedyFor } from "./remedies.js"
import { fail, pass, skip, type Verdict, warn } from "./verdict.js"

/** @internal */
export interface Probe {
  readonly result: Either.Either<Token.TokenResponse, RefreshError.RefreshError>
  /** The raw HTTP answer's status and headers, when one arrived. */
  readonly http: { readonly status: number; readonly headers: Readonly<Record<string, string | undefined>> } | undefined
  readonly sentAt: number
  readonly receivedAt: number
}

/** @internal */
export interface Endpoint {
  readonly url: string
  /** The options a real `TokenEndpoint` is made with (the refresh check). */
  readonly options: TokenEndpoint.TokenEndpointOptions
  /** The made-up refresh token the probe sends; client-auth also introspects it. */
  readonly probeToken: Redacted.Redacted<string>
  /** The probe, sent at most once, by whichever check needs it first. */
  readonly probe: Effect.Effect<Probe, never, HttpClient.HttpClient>
}

/** @internal */
export interface EndpointContext {
  readonly credentials: ClientCredentials
  readonly scope: string | undefined
  readonly timeoutMillis: number
  readonly introspectionUrl: string | undefined
}

/** The token endpoint to probe; `undefined` when none is known (no flag, no usable metadata). @internal */
export const makeEndpoint = (
  url: string | undefined,
  context: EndpointContext
): Effect.Effect<Endpoint | undefined> =>
  Effect.gen(function*() {
    if (url === undefined) return undefined
    const options: TokenEndpoint.TokenEndpointOptions = {
      ...context.credentials,
      url,
      scope: context.scope,
      timeout: context.timeoutMillis,
      introspectionUrl: context.introspectionUrl
    }
    const probeToken = Redacted.make(`renew-doctor-probe-${Crypto.randomBytes(12).toString("hex")}`)
    const probe = Effect.gen(function*() {
      const seen: { http?: Probe["http"] } = {}
      const client = (yield* HttpClient.HttpClient).pipe(
        HttpClient.tap((response) =>
          Effect.sync(() => void (seen.http = { status: response.status, headers: response.headers }))
        )
      )
      const sentAt = Date.now()
      const result = yield* TokenEndpoint.make({ ...options, scope: undefined, introspectionUrl: undefined }).pipe(
        // Validated by config (flags) or discovery (metadata) before any probe runs.
        Effect.orDie,
        Effect.flatMap((endpoint) => endpoint.refresh({ refreshToken: probeToken })),
        Effect.provideService(HttpClient.HttpClient, client),
        Effect.either
      )
      return { result, http: seen.http, sentAt, receivedAt: Date.now() }
    })
    return { url, options, probeToken, probe: yield* Effect.cached(probe) }
  })

const oauthError = (error: RefreshError.RefreshError): string => {
  const parts: Array<string> = []
  if ("status" in error && typeof error.status === "number") parts.push(`HTTP ${error.status}`)
  if ("oauthError" in error && error.oauthError !== undefined) parts.push(error.oauthError)
  if ("errorDescription" in error && error.errorDescription !== undefined) {
    parts.push(JSON.stringify(error.errorDescription))
  }
  return parts.join(" ")
}

const retryAfter = (error: { readonly retryAfterMillis?: number | undefined }): string =>
  error.retryAfterMillis !== undefined ? ` (Retry-After ${formatDuration(error.retryAfterMillis)})` : ""

/** What the introspection endpoint says about the client, when it says anything: a second opinion for client-auth. */
const introspectionOpinion = (
  introspectionUrl: string,
  probeToken: Redacted.Redacted<string>,
  context: EndpointContext
) =>
  Effect.map(
    introspect(introspectionUrl, Redacted.value(probeToken), context.credentials, context.timeoutMillis),
    (result): { readonly accepted: boolean; readonly detail: string } | undefined => {
      if (Either.isLeft(result)) return undefined
      const answer = result.right
      if (answer._tag === "Verdict") {
        return { accepted: true, detail: "the introspection endpoint accepted the client's credentials (HTTP 200)" }
      }
      if (answer.status !== 401 && answer.error !== "invalid_client") return undefined
      const detail = `HTTP ${answer.status}${answer.error !== undefined ? ` ${answer.error}` : ""}${
        answer.errorDescription !== undefined ? ` ${JSON.stringify(answer.errorDescription)}` : ""
      }`
      return { accepted: false, detail: `the introspection endpoint rejected the client's credentials: ${detail}` }
    }
  )

/** client-auth: does the token endpoint (or, failing a verdict there, the introspection endpoint) accept the client? @internal */
export const clientAuth = (
  endpoint: Endpoint,
  context: EndpointContext
): Effect.Effect<Verdict, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const answer = yield* endpoint.probe
    const viaIntrospection = context.introspectionUrl !== undefined
      ? yield* introspectionOpinion(context.introspectionUrl, endpoint.probeToken, context)
      : undefined
    const result = answer.result
    if (Either.isRight(result)) {
      return pass("the token endpoint authenticated the client (and even accepted a made-up refresh token!)")
    }
    const error = result.left
    switch (error._tag) {
      case "InvalidGrant":
      case "InvalidScope":
        return pass(
          `the token endpoint authenticated the client: a made-up refresh token got ${oauthError(error)} (not invalid_client)${
            viaIntrospection !== undefined
              ? `; ${viaIntrospection.detail}${viaIntrospection.accepted ? "" : " (this client may not be allowed to introspect)"}`
              : ""
          }`
        )
      case "InvalidClient":
        return fail(
          `the token endpoint rejected the client credentials: ${oauthError(error)}${
            viaIntrospection !== undefined ? `; ${viaIntrospection.detail}` : ""
          } (client ${JSON.stringify(context.credentials.clientId)}, ${context.credentials.authMethod})`,
          Remedies.clientCredentials
        )
      case "UnauthorizedClient":
        return fail(
          `the client authenticated but may not use the refresh_token grant: ${oauthError(error)}`,
          remedyFor(error)
        )
    }
    // The token endpoint gave no verdict on the client (5xx, timeout, …): introspection may still have one.
    if (viaIntrospection !== undefined) {
      return viaIntrospection.accepted
        ? pass(`${viaIntrospection.detail}; the token endpoint gave no verdict (see token-endpoint)`)
        : fail(viaIntrospection.detail, Remedies.clientCredentials)
    }
    return skip(
      `inconclusive: the token endpoint did not give an OAuth answer about the client (${error._tag}; see token-endpoint)`,
      "Fix token-endpoint first, then run renew doctor again."
    )
  })

/** token-endpoint: does the server answer like a token endpoint (a well-formed OAuth error for a made-up token)? @internal */
export const tokenEndpoint = (endpoint: Endpoint): Effect.Effect<Verdict, never, HttpClient.HttpClient> =>
  Effect.map(endpoint.probe, (answer) => {
    const { url } = endpoint
    const millis = answer.receivedAt - answer.sentAt
    const result = answer.result
    if (Either.isRight(result)) {
      return warn(
        `the token endpoint issued tokens for a made-up refresh token (HTTP ${answer.http?.status ?? 200})`,
        "The server does not validate refresh tokens: report it to the server's operators."
      )
    }
    const error = result.left
    switch (error._tag) {
      case "InvalidGrant":
      case "InvalidClient":
      case "UnauthorizedClient":
      case "InvalidScope":
        return pass(`${url} answered ${oauthError(error)} in ${millis} ms: a well-formed OAuth error`)
      case "ServerError":
        return fail(
          `server error: ${url} answered ${oauthError(error)}${retryAfter(error)}${
            error.bodyExcerpt !== undefined ? `; body ${JSON.stringify(error.bodyExcerpt)}` : ""
          }`,
          remedyFor(error)
        )
      case "RateLimited":
        return warn(`rate limited: ${url} answered ${oauthError(error)}${retryAfter(error)}`, remedyFor(error))
      case "InvalidRequest":
      case "UnsupportedGrantType": {
        const status = "status" in error ? error.status : undefined
        return fail(
          `${url} refused the refresh request: ${oauthError(error)}`,
          status === 404 || status === 405
            ? `HTTP ${status}: this URL is not the token endpoint. Check --token-endpoint (or the issuer's metadata).`
            : remedyFor(error)
        )
      }
      case "NetworkError":
        return fail(`the request to ${url} failed: ${error.detail}`, remedyFor(error))
      case "Timeout":
        return fail(`${url} did not answer within ${formatDuration(error.timeoutMillis)}`, remedyFor(error))
      case "MalformedResponse":
        return fail(`${url} answered HTTP ${error.status} but not as a token endpoint: ${error.detail}`, remedyFor(error))
      default:
        return fail(error.message, remedyFor(error))
    }
  })
