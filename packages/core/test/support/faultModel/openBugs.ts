/**
 * The issue-11 bugs today's engine still has, as the fault model sees them: the invariant each breaks and how to
 * recognise its violation. While an entry is here,
 * - the named regression for it (FaultModelRegressions.test.ts) asserts that the bug still shows, and
 * - the property suites tolerate violations it explains, and fail on any other.
 * When a fix lands, delete its entry: its regression then asserts the history is clean, and the properties stop
 * tolerating it. `RENEW_FAULT_STRICT=1` ignores this list (every violation fails and is shrunk).
 */
import type { History } from "./History.js"
import type { Invariant, Violation } from "./Run.js"

export interface OpenBug {
  readonly invariant: Invariant
  readonly what: string
  readonly explains: (violation: Violation, history: History) => boolean
}

export const openBugs: Readonly<Record<string, OpenBug>> = {
  interruptionLeaksAtShutdown: {
    invariant: "I4",
    what:
      "a call made after shutdown, or waiting on a flight that shutdown interrupts, fails with an interruption instead of a tagged error (EngineClosed)",
    explains: (v) => v.invariant === "I4" && /interrupted/i.test(v.detail)
  },
  shutdownAbandonsSentRequest: {
    invariant: "I1",
    what:
      "closing the engine interrupts a sent refresh; the server rotated, the rotation is lost, and the next holder presents the consumed token",
    explains: (v) => v.invariant === "I1" && v.detail.includes("abandoned that request")
  },
  unknownOutcomeRepresentedInFlight: {
    invariant: "I1",
    what:
      "after a timeout, a reset after send or a garbled 2xx, the retry schedule presents the same refresh token again within the flight, more than once",
    explains: (v) => v.invariant === "I1" && v.detail.includes("already re-presented it once")
  },
  retryAfterPauseRearmedAndUncapped: {
    invariant: "I5",
    what:
      "a remembered Retry-After is re-armed by every call it blocks and is not capped, so callers polling during the pause never get a token once the server recovers",
    explains: (v) => v.invariant === "I5" && v.detail.includes("still has no valid access token")
  },
  replayedInvalidGrantMarksAliveGrantDead: {
    invariant: "I2",
    what:
      "an invalid_grant whose token introspection calls active is replayed from the cooldown, diagnosed again without a request, and the grant is marked needs_reauth (unknown)",
    explains: (v) => v.invariant === "I2" && v.detail.includes("reauthRequired (unknown)")
  },
  ambiguousInvalidGrantSkipsIntrospection: {
    invariant: "I2",
    what:
      "after an attempt with unknown outcome, invalid_grant is taken as rotation_lost without asking introspection, which calls the token active",
    explains: (v) => v.invariant === "I2" && v.detail.includes("reauthRequired (rotation_lost)")
  },
  customScheduleIgnoresRetryAfterCap: {
    invariant: "I5",
    what: "with a retry Schedule of the user's, a Retry-After of an hour parks the caller for an hour",
    explains: (v, h) => v.invariant === "I5" && v.detail.includes("never ended") && h.engine.retry === "customSchedule"
  },
  cooldownServesExpiredToken: {
    invariant: "I3",
    what:
      "refresh() inside the forced-refresh cooldown, and invalidate() when the stored access token differs from the rejected one, return the stored grant without checking that its access token is still valid",
    explains: (v) => v.invariant === "I3" && /\((refresh|invalidate) /.test(v.detail) && v.detail.includes("expired")
  }
}

export const strict = process.env.RENEW_FAULT_STRICT === "1"

/** The open bug that explains a violation, if any (none in strict mode). */
export const explainedBy = (violation: Violation, history: History): string | undefined =>
  strict ? undefined : Object.entries(openBugs).find(([, bug]) => bug.explains(violation, history))?.[0]
