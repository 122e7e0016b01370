/**
 * RFC 7662 token introspection of a refresh token, authenticated like the token endpoint, with the raw answer kept:
 * the doctor asks both "does the server accept this client?" (client-auth) and "is this token alive?" (refresh-token).
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { authenticatedPost, type ClientCredentials, exchange, jsonObject, type TransportFailure } from "./http.js"

/** @internal */
export type Introspection =
  /** HTTP 200 with a boolean `active`: the server's verdict on the token, with the other claims. */
  | { readonly _tag: "Verdict"; readonly active: boolean; readonly claims: Record<string, unknown> }
  /** Any other answer: the status and the OAuth error fields, when present. */
  | {
    readonly _tag: "NoVerdict"
    readonly status: number
    readonly error: string | undefined
    readonly errorDescription: string | undefined
  }

/** @internal */
export const introspect = (
  url: string,
  token: string,
  credentials: ClientCredentials,
  timeoutMillis: number
): Effect.Effect<Either.Either<Introspection, TransportFailure>, never, HttpClient.HttpClient> =>
  Effect.map(
    exchange(authenticatedPost(url, { token, token_type_hint: "refresh_token" }, credentials), timeoutMillis),
    Either.map((answer): Introspection => {
      const json = jsonObject(answer.body)
      if (answer.status === 200 && typeof json?.active === "boolean") {
        return { _tag: "Verdict", active: json.active, claims: json }
      }
      return {
        _tag: "NoVerdict",
        status: answer.status,
        error: typeof json?.error === "string" ? json.error : undefined,
        errorDescription: typeof json?.error_description === "string" ? json.error_description : undefined
      }
    })
  )
