/**
 * What the engine does after a refresh failed: a pure table over the error and the facts of the flight. Every row is
 * tested (FailurePolicy.test.ts); the Refresher only carries decisions out.
 *
 * The rules that keep a grant alive:
 * - only a flight that SENT a request may set or extend a pause (Retry-After, cooldown, client pause); a call that
 *   was answered from a pause gets the error as it is and never reaches this table;
 * - a grant is marked dead only on `invalid_grant`, and not when the server says its refresh token is alive;
 * - while the server may have rotated the refresh token (an unknown outcome, or a 2xx we could not store), the
 *   refresh-in-flight intent stays, so the next holder recovers (DU-4); a grant is never marked dead for want of an
 *   answer, only on the server's invalid_grant.
 *
 * @internal
 */
import * as Errors from "../RefreshError.js"
import type { ReauthReason } from "../Token.js"

/** @internal */
export type TriggerKind = "due" | "prefetch" | "scheduled" | "forced" | "rejected"

/** Why an attempt's outcome is unknown: the server may or may not have rotated the refresh token. @internal */
export type UnknownOutcome = "timeout" | "connection_reset" | "unreadable_answer"

/** What introspection (or a known expiry) says of a rejected refresh token. @internal */
export interface Verdict {
  readonly alive: boolean
  readonly reason: "expired" | "revoked" | "unknown"
}

/** @internal */
export interface FailureFacts {
  readonly error: Errors.RefreshError
  readonly trigger: TriggerKind
  /** Requests this flight sent; 0 when it failed before reaching the server. */
  readonly attemptsSent: number
  /** Set when an attempt of this flight may have rotated the refresh token without us learning the new one. */
  readonly unknownOutcome: UnknownOutcome | undefined
  /** The server answered 2xx, but the answer could not be stored. */
  readonly answered: boolean
  /** This flight recovered an earlier refresh with no recorded outcome (DU-4): why it had none. */
  readonly recovering: Errors.InvalidGrant["lostAfter"] | undefined
  /** For `InvalidGrant`: what the server says of the token, when asked. */
  readonly verdict: Verdict | undefined
  /** Expiry of the access token the grant holds, if it holds one. */
  readonly accessTokenExpiresAt: number | undefined
  readonly now: number
}

/** @internal */
export interface PolicySettings {
  /** After a terminal failure, calls on the same refresh token get it again without a request for this long (ER-3). */
  readonly failureCooldownMillis: number
  /** After a transient failure: serve the still-valid token, or replay the error, for this long. */
  readonly staleRetryMillis: number
  /** A token valid for less than this is never served after a failure: callers get the error (refresh-ahead's stale point). */
  readonly minValidityMillis: number
  readonly invalidClientPauseMillis: number
  /** The longest server-requested pause honoured (`Retry-After`). */
  readonly maxRetryAfterMillis: number
}

/** @internal */
export interface FailureDecision {
  /** What the callers get. */
  readonly error: Errors.RefreshError
  /** Keep the refresh-in-flight intent for the next holder, or clear it (the server surely did not rotate). */
  readonly intent: "keep" | "clear"
  /** Mark the grant as needing a new authorization. */
  readonly markReauth: ReauthReason | undefined
  /** Pause the refreshes of every grant of this OAuth client until then. */
  readonly pauseClientUntil: number | undefined
  /** Calls on the same refresh token get `error` without a request until then. */
  readonly replayUntil: number | undefined
  /** Whether `replayUntil` binds forced refreshes too (a server-requested pause), or due ones only (a cooldown). */
  readonly replayBindsForced: boolean
  /** Serve the still-valid access token instead of failing; look again at this time. */
  readonly serveStaleUntil: number | undefined
}

/** Failures after which the stored grant is read again: someone may have stored a usable one meanwhile. @internal */
export const rereadsStore = (error: Errors.RefreshError): boolean =>
  error._tag === "StaleWrite" || error._tag === "InvalidGrant" || error._tag === "LockTimeout"

/** Whether `decide` needs a verdict on the rejected refresh token (introspection or a known expiry). @internal */
export const needsVerdict = (facts: Omit<FailureFacts, "verdict">): boolean =>
  facts.error._tag === "InvalidGrant" && facts.error.reason === undefined && facts.recovering === undefined &&
  facts.unknownOutcome === undefined && facts.attemptsSent > 0

/** The decision for one failed flight. @internal */
export const decide = (facts: FailureFacts, settings: PolicySettings): FailureDecision => {
  const { error, now } = facts
  const sent = facts.attemptsSent > 0
  // The server may hold a refresh token we never stored: the next holder must learn of it.
  const intent = facts.unknownOutcome !== undefined || facts.answered ? "keep" : "clear"
  const base: FailureDecision = {
    error,
    intent,
    markReauth: undefined,
    pauseClientUntil: undefined,
    replayUntil: undefined,
    replayBindsForced: false,
    serveStaleUntil: undefined
  }
  // A recovery whose outcome is unknown too (a hanging or unreachable server does this to every grant) is not marked
  // on a guess: whether the server ever rotated is unknowable. The intent stays (`base`), the error is handled as any
  // transient one (served stale or replayed for the retry interval), and a later refresh asks the server again: if it
  // had rotated, that presentation can only revoke a family whose new token nobody holds, and the server's
  // invalid_grant then marks the grant (rotation_lost); if not, the grant lives on.
  switch (error._tag) {
    case "InvalidGrant": {
      const lostAfter = facts.recovering ?? facts.unknownOutcome
      if (lostAfter !== undefined) {
        // We presented a refresh token the server may have rotated away: the rotation is lost.
        const lost = withReason(error, "rotation_lost", lostAfter)
        return { ...base, error: lost, intent: "clear", markReauth: "rotation_lost" }
      }
      if (!sent) return base
      const verdict = facts.verdict
      if (verdict?.alive === true) {
        // Alive but refused (another client's token, a policy): a configuration problem, not a dead grant.
        return {
          ...base,
          error: withReason(error, "unknown"),
          intent: "clear",
          replayUntil: now + settings.failureCooldownMillis
        }
      }
      const reason = error.reason ?? verdict?.reason
      const refined = reason !== undefined && reason !== error.reason ? withReason(error, reason) : error
      return { ...base, error: refined, intent: "clear", markReauth: reason ?? "invalid_grant" }
    }
    case "InvalidClient":
      // Wrong credentials fail every grant of this client alike: pause the client, not the grant.
      return sent ? { ...base, pauseClientUntil: now + settings.invalidClientPauseMillis } : base
    case "StaleWrite":
      // Another writer owns the grant now: its record is not ours to change.
      return { ...base, intent: "keep" }
    case "EngineClosed":
      return base
    default: {
      if (!error.retryable) {
        return sent ? { ...base, replayUntil: now + settings.failureCooldownMillis } : base
      }
      const retryAfter = "retryAfterMillis" in error && error.retryAfterMillis !== undefined
        ? Math.min(error.retryAfterMillis, settings.maxRetryAfterMillis)
        : undefined
      const pausedUntil = sent && retryAfter !== undefined ? now + retryAfter : undefined
      const validUntil = facts.accessTokenExpiresAt
      const servable = validUntil !== undefined && now < validUntil - settings.minValidityMillis
      if ((facts.trigger === "due" || facts.trigger === "prefetch") && servable) {
        // The token still works: serve it and look again shortly, never before the server allows.
        return {
          ...base,
          replayUntil: pausedUntil,
          replayBindsForced: pausedUntil !== undefined,
          serveStaleUntil: Math.min(
            validUntil! - settings.minValidityMillis,
            Math.max(now + settings.staleRetryMillis, pausedUntil ?? 0)
          )
        }
      }
      if (!sent) return base
      // The server's own Retry-After says when to ask again; without one, the retry interval does.
      return {
        ...base,
        replayUntil: pausedUntil ?? now + settings.staleRetryMillis,
        replayBindsForced: pausedUntil !== undefined
      }
    }
  }
}

/** Failures after which the server may or may not have rotated the refresh token. @internal */
export const unknownOutcomeOf = (error: Errors.RefreshError): UnknownOutcome | undefined => {
  switch (error._tag) {
    case "Timeout":
      return "timeout"
    case "MalformedResponse":
      return "unreadable_answer"
    case "NetworkError":
      return NOT_SENT.test(error.detail) ? undefined : "connection_reset"
    default:
      return undefined
  }
}

// Transport failures that happen before the request can have reached the server.
const NOT_SENT =
  /^(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_TLS|the request could not be built)/

/**
 * `error` with a (new) reason. What the server and its provider profile said is kept; a provider remedy is dropped for
 * `rotation_lost`, whose cause is Renew's lost token, not the provider's.
 *
 * @internal
 */
export const withReason = (
  error: Errors.InvalidGrant,
  reason: NonNullable<Errors.InvalidGrant["reason"]>,
  lostAfter?: Errors.InvalidGrant["lostAfter"]
): Errors.InvalidGrant => {
  const fields: Record<string, unknown> = {}
  for (const name of ["status", "oauthError", "errorDescription", "errorUri", "provider", "providerCode", "remedy"] as const) {
    if (error[name] !== undefined && !(name === "remedy" && reason === "rotation_lost")) fields[name] = error[name]
  }
  return new Errors.InvalidGrant({ ...fields, reason, ...(lostAfter !== undefined ? { lostAfter } : {}) })
}
