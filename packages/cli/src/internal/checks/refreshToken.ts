/**
 * refresh-token: the token's state without using it, from what the store recorded and RFC 7662 introspection. The
 * scope it was granted (from introspection) is what the scope check compares against.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { RefreshError, Telemetry } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type { ClientCredentials } from "../http.js"
import { introspect } from "../introspection.js"
import { formatAgo, formatIn } from "../text.js"
import type { Stored } from "./config.js"
import { Remedies, remedyFor } from "./remedies.js"
import { fail, type Outcome, pass, skip, type Verdict } from "./verdict.js"

/** A granted scope and where it is known from. @internal */
export interface GrantedScope {
  readonly scope: string
  readonly from: string
}

/** @internal */
export interface RefreshTokenContext {
  readonly stored: Pick<Stored, "key" | "grant"> | undefined
  readonly refreshToken: Redacted.Redacted<string> | undefined
  readonly introspectionUrl: string | undefined
  readonly credentials: ClientCredentials
  readonly timeoutMillis: number
}

const reauthReasons = {
  invalid_grant: "the server answered invalid_grant",
  expired: "the refresh token expired",
  idle_timeout: "the refresh token expired after a period without use",
  revoked: "the refresh token was revoked",
  password_changed: "the user's password changed or expired",
  consent_revoked: "the user's consent for this client was withdrawn",
  session_ended: "the user's session at the provider ended",
  interaction_required: "the provider requires the user to sign in interactively",
  user_inactive: "the user's account at the provider is disabled, locked or deleted",
  reused: "the provider saw the refresh token reused after rotation",
  unknown: "the server rejected the refresh token",
  rotation_lost: "a rotated refresh token was lost (a process died after the server rotated it, before storing it)"
} as const

/** @internal */
export const check = (
  context: RefreshTokenContext
): Effect.Effect<Outcome<GrantedScope | undefined>, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const scopeUnknown = (verdict: Verdict): Outcome<undefined> => ({ verdict, found: undefined })
    const now = Date.now()
    const { refreshToken, stored } = context
    const grant = stored?.grant
    if (stored !== undefined && stored.grant.reauthRequired !== undefined) {
      const reason = stored.grant.reauthRequired
      return scopeUnknown(fail(
        `the store marks grant ${JSON.stringify(stored.key)} as needing re-authorization (${reason}: ${reauthReasons[reason]})`,
        Remedies.reauthorize
      ))
    }
    if (stored !== undefined && stored.grant.refreshToken === undefined) {
      return scopeUnknown(fail(
        `grant ${JSON.stringify(stored.key)} has no refresh token`,
        remedyFor(new RefreshError.NoRefreshToken())
      ))
    }
    if (refreshToken === undefined) {
      return scopeUnknown(skip(
        "no refresh token given",
        "Pass it with --refresh-token-stdin, RENEW_REFRESH_TOKEN or --refresh-token, or --store <file> --key <key>, to check its state."
      ))
    }
    const label = `refresh token #${Telemetry.hashKey(Redacted.value(refreshToken))}`
    const knownExpiry = grant?.refreshTokenExpiresAt
    const expiredByRecord = knownExpiry !== undefined && knownExpiry <= now
      ? fail(
        `${label} expired ${formatAgo(now - knownExpiry)} (at ${new Date(knownExpiry).toISOString()}, as recorded in the store)`,
        Remedies.reauthorize
      )
      : undefined
    if (context.introspectionUrl === undefined) {
      return scopeUnknown(
        expiredByRecord ?? skip(
          `${label}: no introspection endpoint, so its state is unknown until a refresh${
            knownExpiry !== undefined ? ` (the store records its expiry ${formatIn(knownExpiry - now)})` : ""
          }`,
          "Pass --introspection-endpoint (or --issuer, if the metadata lists one) to check it without using it, or --refresh to try it."
        )
      )
    }
    const result = yield* introspect(
      context.introspectionUrl,
      Redacted.value(refreshToken),
      context.credentials,
      context.timeoutMillis
    )
    if (Either.isLeft(result)) {
      return scopeUnknown(expiredByRecord ?? skip(`${label}: the introspection endpoint did not answer: ${result.left.detail}`))
    }
    const answer = result.right
    if (answer._tag === "NoVerdict") {
      return scopeUnknown(
        expiredByRecord ?? skip(
          `${label}: the introspection endpoint gave no verdict (HTTP ${answer.status}${
            answer.error !== undefined ? ` ${answer.error}` : ""
          })`,
          "The client may not be allowed to introspect; --refresh tells the token's state by using it."
        )
      )
    }
    const claims = answer.claims
    const exp = typeof claims.exp === "number" ? claims.exp * 1000 : undefined
    if (!answer.active) {
      const expiry = exp ?? knownExpiry
      const startedAt = grant?.refreshStartedAt
      const reason = startedAt !== undefined
        ? `probably rotated by a refresh that never stored its result: the store records a refresh started ${
          formatAgo(now - startedAt)
        } that did not finish (a process died mid-refresh; Renew's recovery marks such a grant rotation_lost)`
        : expiry !== undefined && expiry <= now
        ? `expired ${formatAgo(now - expiry)} (at ${new Date(expiry).toISOString()}${
          exp === undefined ? ", as recorded in the store" : ""
        })`
        : expiry !== undefined
        ? `revoked (or already used after a rotation): its expiry ${new Date(expiry).toISOString()} is still ahead`
        : "expired or revoked (or already used after a rotation); the server does not say which, and its expiry is not known"
      return scopeUnknown(fail(`${label} is inactive: ${reason}`, Remedies.reauthorize))
    }
    const clientId = typeof claims.client_id === "string" ? claims.client_id : undefined
    if (clientId !== undefined && clientId !== context.credentials.clientId) {
      return scopeUnknown(fail(
        `${label} is active but was issued to client ${JSON.stringify(clientId)}, not ${
          JSON.stringify(context.credentials.clientId)
        }`,
        `A refresh token only works for the client it was issued to: use --client-id ${clientId} (and its secret), or have the user authorize this client.`
      ))
    }
    const tokenType = typeof claims.token_type === "string" ? claims.token_type : undefined
    if (tokenType !== undefined && tokenType.toLowerCase() !== "refresh_token") {
      return scopeUnknown(fail(
        `${label} is an active ${tokenType} token, not a refresh token`,
        "An access token was given where the refresh token belongs: store the token response's refresh_token."
      ))
    }
    const scope = typeof claims.scope === "string" ? claims.scope : undefined
    return {
      verdict: pass(
        `${label} is active${exp !== undefined ? `, expires ${formatIn(exp - now)} (${new Date(exp).toISOString()})` : ""}${
          clientId !== undefined ? `, client ${JSON.stringify(clientId)}` : ""
        }${scope !== undefined ? `, scope ${JSON.stringify(scope)}` : ""}`
      ),
      found: scope !== undefined ? { scope, from: "introspection" } : undefined
    }
  })
