/**
 * The failure policy, row by row: for each kind of failure and the facts of the flight that met it, what the engine
 * does (intent, marking, pauses, stale serving). The table is the specification; each row names the rule it shows.
 */
import { assert, describe, it } from "@effect/vitest"
// The policy is internal: the test reads it, and the errors it decides on, from the sources.
import * as Errors from "../src/RefreshError.js"
import type { FailureDecision, FailureFacts, PolicySettings } from "../src/internal/failurePolicy.js"
import { decide, needsVerdict, rereadsStore, unknownOutcomeOf } from "../src/internal/failurePolicy.js"

const NOW = 1_000_000
const settings: PolicySettings = {
  failureCooldownMillis: 30_000,
  staleRetryMillis: 5_000,
  invalidClientPauseMillis: 60_000,
  maxRetryAfterMillis: 30_000,
  minValidityMillis: 5_000
}

const facts = (error: Errors.RefreshError, overrides: Partial<FailureFacts> = {}): FailureFacts => ({
  error,
  trigger: "due",
  attemptsSent: 1,
  unknownOutcome: undefined,
  answered: false,
  recovering: undefined,
  verdict: undefined,
  accessTokenExpiresAt: undefined,
  now: NOW,
  ...overrides
})

const invalidGrant = new Errors.InvalidGrant({ status: 400, oauthError: "invalid_grant" })
const serverError = new Errors.ServerError({ status: 503 })
const rateLimited = (retryAfterMillis: number) => new Errors.RateLimited({ status: 429, retryAfterMillis })
const timeout = new Errors.Timeout({ host: "as.test", timeoutMillis: 10_000 })

type Expected = Partial<Omit<FailureDecision, "error">> & { readonly errorTag?: string; readonly reason?: string }

const rows: ReadonlyArray<readonly [name: string, facts: FailureFacts, expected: Expected]> = [
  // invalid_grant
  ["invalid_grant, nobody can tell why: marked, intent cleared", facts(invalidGrant), {
    markReauth: "invalid_grant",
    intent: "clear",
    replayUntil: undefined
  }],
  ["invalid_grant, the server says the token expired: marked expired", facts(invalidGrant, {
    verdict: { alive: false, reason: "expired" }
  }), { markReauth: "expired", reason: "expired" }],
  ["invalid_grant, the server says the token is ALIVE: never marked; the error replays for the cooldown", facts(
    invalidGrant,
    { verdict: { alive: true, reason: "unknown" } }
  ), { markReauth: undefined, intent: "clear", replayUntil: NOW + 30_000, replayBindsForced: false, reason: "unknown" }],
  ["invalid_grant after an attempt with an unknown outcome in this flight: rotation lost (timeout)", facts(invalidGrant, {
    attemptsSent: 2,
    unknownOutcome: "timeout"
  }), { markReauth: "rotation_lost", reason: "rotation_lost", intent: "clear" }],
  ["invalid_grant while recovering a crashed refresh (DU-4): rotation lost (outcome unrecorded)", facts(invalidGrant, {
    recovering: "unrecorded"
  }), { markReauth: "rotation_lost", reason: "rotation_lost" }],
  ["invalid_grant known before sending (recovery, introspection inactive): rotation lost", facts(invalidGrant, {
    attemptsSent: 0,
    recovering: "timeout"
  }), { markReauth: "rotation_lost" }],
  // invalid_client
  ["invalid_client from the server: the client is paused, the grant untouched", facts(
    new Errors.InvalidClient({ status: 401 })
  ), { pauseClientUntil: NOW + 60_000, markReauth: undefined, intent: "clear", replayUntil: undefined }],
  // Other terminal errors
  ["invalid_scope from the server: the error replays for the cooldown (ER-3)", facts(
    new Errors.InvalidScope({ status: 400 })
  ), { replayUntil: NOW + 30_000, replayBindsForced: false, intent: "clear", markReauth: undefined }],
  ["a terminal error known before sending (no refresh token): nothing remembered", facts(new Errors.NoRefreshToken(), {
    attemptsSent: 0
  }), { replayUntil: undefined, markReauth: undefined, pauseClientUntil: undefined }],
  // Transient errors
  ["503, token still valid, due: serve it stale and look again after the retry interval", facts(serverError, {
    accessTokenExpiresAt: NOW + 60_000
  }), { serveStaleUntil: NOW + 5_000, replayUntil: undefined, intent: "clear" }],
  ["503, token expired: fail, and replay the error for the retry interval (ER-3)", facts(serverError, {
    accessTokenExpiresAt: NOW - 1
  }), { serveStaleUntil: undefined, replayUntil: NOW + 5_000, replayBindsForced: false }],
  ["503 for a forced refresh: never served stale", facts(serverError, {
    trigger: "forced",
    accessTokenExpiresAt: NOW + 60_000
  }), { serveStaleUntil: undefined, replayUntil: NOW + 5_000 }],
  ["429 Retry-After 10 s, token expired: the pause binds forced refreshes too", facts(rateLimited(10_000)), {
    replayUntil: NOW + 10_000,
    replayBindsForced: true
  }],
  ["429 Retry-After 3600 s: the pause is capped at maxRetryAfter", facts(rateLimited(3_600_000)), {
    replayUntil: NOW + 30_000,
    replayBindsForced: true
  }],
  ["429 Retry-After 10 s, token valid: served stale until the pause ends", facts(rateLimited(10_000), {
    accessTokenExpiresAt: NOW + 60_000
  }), { serveStaleUntil: NOW + 10_000, replayUntil: NOW + 10_000 }],
  ["429 Retry-After 10 s, token valid 8 s more: stale serving stops at minValidity (5 s) before expiry", facts(
    rateLimited(10_000),
    { accessTokenExpiresAt: NOW + 8_000 }
  ), { serveStaleUntil: NOW + 3_000 }],
  ["503, token valid for less than minValidity: never served, the caller gets the error", facts(serverError, {
    accessTokenExpiresAt: NOW + 4_999
  }), { serveStaleUntil: undefined, replayUntil: NOW + 5_000 }],
  ["503 in a background refresh (prefetch), token still valid: served until the next try", facts(serverError, {
    trigger: "prefetch",
    accessTokenExpiresAt: NOW + 60_000
  }), { serveStaleUntil: NOW + 5_000, replayUntil: undefined }],
  ["a failure before any request (lock timeout): no pause at all", facts(new Errors.LockTimeout({ waitedMillis: 60_000 }), {
    attemptsSent: 0
  }), { replayUntil: undefined, serveStaleUntil: undefined, pauseClientUntil: undefined }],
  ["a recovery that timed out too: not marked on a guess, the intent stays, callers get the error for the retry interval", facts(timeout, {
    unknownOutcome: "timeout",
    recovering: "timeout"
  }), { intent: "keep", markReauth: undefined, errorTag: "Timeout", replayUntil: NOW + 5_000 }],
  ["a timeout after sending: the intent stays for the next holder", facts(timeout, { unknownOutcome: "timeout" }), {
    intent: "keep",
    markReauth: undefined
  }],
  ["a 2xx that could not be stored: the intent stays", facts(new Errors.StoreError({ operation: "write", detail: "x" }), {
    answered: true
  }), { intent: "keep", markReauth: undefined }],
  ["a lost compare-and-set: another writer owns the record, nothing of ours is written", facts(new Errors.StaleWrite({})), {
    intent: "keep",
    markReauth: undefined,
    replayUntil: undefined
  }]
]

describe("failure policy", () => {
  for (const [name, input, expected] of rows) {
    it(name, () => {
      const decision = decide(input, settings)
      const { errorTag, reason, ...fields } = expected
      for (const [field, value] of Object.entries(fields)) {
        assert.deepStrictEqual(decision[field as keyof FailureDecision], value, field)
      }
      assert.strictEqual(decision.error._tag, errorTag ?? input.error._tag)
      if (reason !== undefined) assert.strictEqual((decision.error as Errors.InvalidGrant).reason, reason)
    })
  }

  it("a lost rotation's message says what left it without an outcome", () => {
    const decision = decide(facts(invalidGrant, { unknownOutcome: "timeout" }), settings)
    assert.match(decision.error.message, /timed out after it was sent/)
    assert.match(decide(facts(invalidGrant, { recovering: "unrecorded" }), settings).error.message, /no recorded outcome/)
  })

  it("asks for a verdict only on a fresh invalid_grant from the server", () => {
    assert.isTrue(needsVerdict(facts(invalidGrant)))
    assert.isFalse(needsVerdict(facts(invalidGrant, { attemptsSent: 0 })))
    assert.isFalse(needsVerdict(facts(invalidGrant, { unknownOutcome: "connection_reset" })))
    assert.isFalse(needsVerdict(facts(invalidGrant, { recovering: "unrecorded" })))
    assert.isFalse(needsVerdict(facts(new Errors.InvalidGrant({ reason: "expired" }))))
    assert.isFalse(needsVerdict(facts(serverError)))
  })

  it("re-reads the store after the failures someone else's write can explain", () => {
    assert.deepStrictEqual(
      [invalidGrant, new Errors.StaleWrite({}), new Errors.LockTimeout({ waitedMillis: 1 }), serverError, timeout]
        .map(rereadsStore),
      [true, true, true, false, false]
    )
  })

  it("tells which failures leave the outcome unknown", () => {
    assert.deepStrictEqual(
      [
        timeout,
        new Errors.NetworkError({ host: "h", detail: "ECONNRESET: socket hang up" }),
        new Errors.NetworkError({ host: "h", detail: "ECONNREFUSED: connection refused" }),
        new Errors.NetworkError({ host: "h", detail: "ENOTFOUND as.test" }),
        new Errors.MalformedResponse({ status: 200, detail: "not JSON" }),
        serverError,
        invalidGrant
      ].map(unknownOutcomeOf),
      ["timeout", "connection_reset", undefined, undefined, "unreadable_answer", undefined, undefined]
    )
  })
})
