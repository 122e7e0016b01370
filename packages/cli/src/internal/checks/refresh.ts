/**
 * refresh: a real refresh, only on request (it uses up the refresh token on most servers). With a store it goes
 * through a `Refresher`, so the rotated grant is written back exactly as the service would; the tokens it obtains
 * are returned so the report can be scrubbed of them.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Refresher, type RefreshError, type Token, TokenEndpoint, TokenStore } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { formatDuration, formatIn, secretValues } from "../text.js"
import type { Stored } from "./config.js"
import { remedyFor } from "./remedies.js"
import type { Endpoint } from "./tokenEndpoint.js"
import { fail, Findings, type Outcome, skip } from "./verdict.js"

/**
 * Access tokens shorter-lived than this WARN: refresh traffic dominates (published as
 * `Doctor.shortAccessTokenSeconds`).
 *
 * @internal
 */
export const shortAccessTokenSeconds = 60

/** @internal */
export interface RefreshContext {
  /** --refresh. */
  readonly requested: boolean
  readonly refreshToken: Redacted.Redacted<string> | undefined
  readonly endpoint: Endpoint | undefined
  /** With a store, the rotated grant is written back to it. */
  readonly stored: Pick<Stored, "store" | "key" | "filename"> | undefined
}

/** The verdict, and the secret values of the tokens the refresh obtained. @internal */
export const check = (
  context: RefreshContext
): Effect.Effect<Outcome<ReadonlyArray<string>>, never, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { refreshToken, stored } = context
    if (!context.requested) {
      return {
        verdict: skip(
          "not requested",
          "--refresh does a real refresh to show rotation and lifetimes; it uses up the refresh token (with --store/--key the new grant is written back)."
        ),
        found: []
      }
    }
    if (refreshToken === undefined || context.endpoint === undefined) {
      return { verdict: skip("no refresh token to refresh with"), found: [] }
    }
    const endpoint = yield* TokenEndpoint.make(context.endpoint.options).pipe(Effect.orDie)
    const captured: { response?: Token.TokenResponse } = {}
    const capturing = TokenEndpoint.TokenEndpoint.of({
      ...endpoint,
      refresh: (request) =>
        Effect.tap(endpoint.refresh(request), (response) => Effect.sync(() => void (captured.response = response)))
    })
    const started = Date.now()
    let written: Token.Grant | undefined
    let failure: RefreshError.RefreshError | undefined
    if (stored !== undefined) {
      const refresher = yield* Refresher.make({ forcedRefreshCooldown: 0, retry: { maxAttempts: 1 } }).pipe(
        Effect.provideService(TokenStore.TokenStore, stored.store),
        Effect.provideService(TokenEndpoint.TokenEndpoint, capturing),
        Effect.either
      )
      if (Either.isLeft(refresher)) {
        return {
          verdict: fail(
            `the refresh was not attempted: ${refresher.left.message}`,
            "Lower --timeout: one attempt plus persisting must fit in the store's lease."
          ),
          found: []
        }
      }
      const result = yield* Effect.either(refresher.right.refresh(stored.key))
      if (Either.isLeft(result)) failure = result.left
      else written = result.right
    } else {
      const result = yield* Effect.either(capturing.refresh({ refreshToken }))
      if (Either.isLeft(result)) failure = result.left
    }
    const millis = Date.now() - started
    const response = captured.response
    const found = secretValues(
      response?.access_token,
      response?.refresh_token,
      written?.accessToken,
      written?.refreshToken
    )
    if (failure !== undefined || response === undefined) {
      const error = failure!
      return {
        verdict: fail(`the refresh failed after ${millis} ms: ${error._tag}: ${error.message}`, remedyFor(error)),
        found
      }
    }
    const findings = new Findings()
    findings.notes.push(`refreshed in ${millis} ms`)
    const newRefreshToken = response.refresh_token
    const rotated = newRefreshToken !== undefined && Redacted.value(newRefreshToken) !== Redacted.value(refreshToken)
    if (rotated) {
      findings.notes.push("the server ROTATED the refresh token (the one used is now invalid; a reuse would revoke the grant)")
    } else if (newRefreshToken !== undefined) {
      findings.notes.push("the server did not rotate the refresh token (it echoed the same one back)")
    } else {
      findings.notes.push(
        "the server did not rotate the refresh token (no refresh_token in the response: the current one stays valid)"
      )
    }
    if (written !== undefined && stored !== undefined) {
      findings.notes.push(
        `the new grant was stored back as version ${written.version} of ${JSON.stringify(stored.key)} in ${stored.filename}`
      )
    } else if (rotated) {
      findings.warnings.push({
        note: "the refresh token you supplied is now used up, and the new one was NOT saved (renew never prints tokens)",
        remedy:
          "Re-authorize to get a new grant for your service, and next time run --refresh with --store/--key so the rotated grant is written back."
      })
    }
    if (response.ignored !== undefined && response.ignored.length > 0) {
      findings.warnings.push({
        note: `the response's ${response.ignored.join(", ")} ${
          response.ignored.length === 1 ? "was" : "were"
        } not usable (wrong type or value) and ignored: Renew kept the token pair and treated ${
          response.ignored.length === 1 ? "it" : "them"
        } as absent`,
        remedy:
          "Report it to the server's operators: RFC 6749 §5.1 wants expires_in as a number of seconds and scope and refresh_token as strings."
      })
    }
    if (response.expires_in === undefined) {
      findings.warnings.push({
        note: "the response has no expires_in: Renew assumes a 1 hour lifetime (defaultLifetime)",
        remedy: "Set Refresher's defaultLifetime to the server's real access-token lifetime, or configure the server to send expires_in."
      })
    } else {
      findings.notes.push(`access tokens live ${formatDuration(response.expires_in * 1000)} (expires_in ${response.expires_in})`)
      if (response.expires_in < shortAccessTokenSeconds) {
        findings.warnings.push({
          note: `the access-token lifetime (${response.expires_in} s) is under ${shortAccessTokenSeconds} s: every grant is refreshed at least every ${
            Math.max(1, Math.floor(response.expires_in / 2))
          } s, so refresh traffic dominates`,
          remedy:
            "Raise the access-token lifetime on the authorization server (minutes, not seconds), or expect one refresh per grant per half-lifetime and size the server's rate limits for it."
        })
      }
    }
    const refreshExpiresAt = response.refresh_expires_in !== undefined && response.refresh_expires_in > 0
      ? { at: Date.now() + response.refresh_expires_in * 1000, from: "refresh_expires_in" }
      : written?.refreshTokenExpiresAt !== undefined
      ? { at: written.refreshTokenExpiresAt, from: "introspection" }
      : yield* Effect.map(
        endpoint.introspect(newRefreshToken ?? refreshToken),
        Option.match({
          onNone: () => undefined,
          onSome: (verdict) => verdict.expiresAt !== undefined ? { at: verdict.expiresAt, from: "introspection" } : undefined
        })
      )
    findings.notes.push(
      refreshExpiresAt !== undefined
        ? `the ${rotated ? "new " : ""}refresh token expires ${formatIn(refreshExpiresAt.at - Date.now())} (from ${refreshExpiresAt.from})`
        : "the refresh token's lifetime is not disclosed"
    )
    if (response.scope !== undefined) findings.notes.push(`scope ${JSON.stringify(response.scope)}`)
    return { verdict: findings.verdict(), found }
  })
