/**
 * Authorization server metadata: RFC 8414 (`/.well-known/oauth-authorization-server`) first, then OpenID Connect
 * Discovery (`/.well-known/openid-configuration`).
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { type Answer, exchange, jsonObject } from "./http.js"

/** @internal */
export interface Metadata {
  readonly issuer: string | undefined
  readonly tokenEndpoint: string | undefined
  readonly introspectionEndpoint: string | undefined
  readonly grantTypesSupported: ReadonlyArray<string> | undefined
  readonly authMethodsSupported: ReadonlyArray<string> | undefined
}

/** @internal */
export interface DiscoveryAttempt {
  readonly url: string
  /** `HTTP 404`, `not JSON`, `ECONNREFUSED`, … */
  readonly outcome: string
}

/** @internal */
export interface Discovery {
  /** The metadata and where it came from, when some well-known URL answered with it. */
  readonly found: { readonly url: string; readonly metadata: Metadata } | undefined
  readonly attempts: ReadonlyArray<DiscoveryAttempt>
  /** The last HTTP answer of the discovery requests, for the server's `Date` header. */
  readonly lastAnswer: Answer | undefined
}

/**
 * RFC 8414 §3.1 inserts the well-known segment between the host and the issuer's path; OpenID Connect Discovery §4
 * appends it to the issuer.
 *
 * @internal
 */
export const wellKnownUrls = (issuer: string): ReadonlyArray<string> => {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, "")
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`
  ]
}

const strings = (value: unknown): ReadonlyArray<string> | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : undefined

const str = (value: unknown): string | undefined => typeof value === "string" ? value : undefined

/** @internal */
export const discover = (
  issuer: string,
  timeoutMillis: number
): Effect.Effect<Discovery, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const attempts: Array<DiscoveryAttempt> = []
    let lastAnswer: Answer | undefined
    for (const url of wellKnownUrls(issuer)) {
      const result = yield* exchange(HttpClientRequest.get(url).pipe(HttpClientRequest.acceptJson), timeoutMillis)
      if (Either.isLeft(result)) {
        attempts.push({ url, outcome: result.left.detail })
        continue
      }
      lastAnswer = result.right
      if (result.right.status !== 200) {
        attempts.push({ url, outcome: `HTTP ${result.right.status}` })
        continue
      }
      const json = jsonObject(result.right.body)
      if (json === undefined) {
        attempts.push({ url, outcome: "HTTP 200 but not a JSON object" })
        continue
      }
      attempts.push({ url, outcome: "HTTP 200" })
      return {
        found: {
          url,
          metadata: {
            issuer: str(json.issuer),
            tokenEndpoint: str(json.token_endpoint),
            introspectionEndpoint: str(json.introspection_endpoint),
            grantTypesSupported: strings(json.grant_types_supported),
            authMethodsSupported: strings(json.token_endpoint_auth_methods_supported)
          }
        },
        attempts,
        lastAnswer
      }
    }
    return { found: undefined, attempts, lastAnswer }
  })
