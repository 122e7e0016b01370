/**
 * Every `invalid_grant` looks the same on the wire. A known expiry, or the server's RFC 7662 introspection, tells the
 * reason, and whether the refresh token is in fact still alive (refused for another reason: another client's token,
 * a policy). Best effort throughout: no answer leaves the verdict unknown.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { Grant } from "../Token.js"
import type { TokenEndpoint } from "../TokenEndpoint.js"
import type { Verdict } from "./failurePolicy.js"

/** What the server says of a refresh token that it refused (`undefined`: nobody can tell). @internal */
export const verdictOn = (
  endpoint: TokenEndpoint["Type"],
  grant: Grant,
  now: number
): Effect.Effect<Verdict | undefined> => {
  if (grant.refreshToken === undefined) return Effect.succeed(undefined)
  const knownExpiry = grant.refreshTokenExpiresAt
  if (knownExpiry !== undefined && knownExpiry <= now) return Effect.succeed({ alive: false, reason: "expired" })
  return Effect.map(
    endpoint.introspect(grant.refreshToken),
    Option.match({
      onNone: () => undefined,
      onSome: (verdict): Verdict =>
        verdict.active
          ? { alive: true, reason: "unknown" }
          // Inactive before its known expiry: revoked (or consumed by a rotation elsewhere).
          : { alive: false, reason: knownExpiry !== undefined ? "revoked" : "unknown" }
    })
  )
}

/** Whether the server says the refresh token is still active (`false` when it cannot be asked). @internal */
export const isActive = (endpoint: TokenEndpoint["Type"], refreshToken: Redacted.Redacted<string>) =>
  Effect.map(endpoint.introspect(refreshToken), Option.match({ onNone: () => false, onSome: (v) => v.active }))

/**
 * With introspection configured, records when a new refresh token expires, so a later `invalid_grant` can be told
 * apart: expired or revoked.
 *
 * @internal
 */
export const learnRefreshTokenExpiry = (endpoint: TokenEndpoint["Type"], grant: Grant): Effect.Effect<Grant> =>
  grant.refreshToken === undefined || grant.refreshTokenExpiresAt !== undefined
    ? Effect.succeed(grant)
    : Effect.map(
      endpoint.introspect(grant.refreshToken),
      Option.match({
        onNone: () => grant,
        onSome: (verdict) =>
          verdict.active && verdict.expiresAt !== undefined
            ? new Grant({ ...grant, refreshTokenExpiresAt: verdict.expiresAt })
            : grant
      })
    )
