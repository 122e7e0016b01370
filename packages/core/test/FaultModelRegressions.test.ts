/**
 * Counterexamples the fault model found (minimized), each replayed as a fixed history, plus histories that pin what
 * the model must not flag (a crash recovered once, a grace period). A history tied to an entry of
 * support/faultModel/openBugs.ts asserts that the bug still shows, by its invariant; delete the entry when the fix
 * lands and the same test asserts the history is clean.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { Fault } from "./support/faultModel/AuthServer.js"
import type { History, Step } from "./support/faultModel/History.js"
import { explainedBy, openBugs, strict } from "./support/faultModel/openBugs.js"
import { runHistory } from "./support/faultModel/Run.js"

const history = (
  steps: ReadonlyArray<Step>,
  faults: ReadonlyArray<Fault> = [],
  overrides: {
    readonly store?: History["store"]
    readonly instances?: number
    readonly server?: Partial<History["server"]>
    readonly engine?: Partial<History["engine"]>
    readonly startExpired?: boolean
    readonly pollMs?: number
  } = {}
): History => ({
  store: overrides.store ?? "memory",
  seed: 0,
  instances: overrides.instances ?? 1,
  keys: 1,
  server: { rotate: true, graceMs: 0, introspection: false, accessTtlSec: 3600, ...overrides.server },
  engine: { timeoutMs: 2000, leaseTtlMs: 10_000, declareGrace: false, retry: "default", ...overrides.engine },
  startExpired: overrides.startExpired ?? true,
  faults,
  steps,
  pollMs: overrides.pollMs ?? 1000
})

const get = (slot = 0): Step => ({ _tag: "Call", slot, key: 0, kind: "get" })
const refresh: Step = { _tag: "Call", slot: 0, key: 0, kind: "refresh" }
const invalidate: Step = { _tag: "Call", slot: 0, key: 0, kind: "invalidate" }
const advance = (ms: number): Step => ({ _tag: "Advance", ms })
const slow: Fault = { _tag: "Slow", latencyMs: 8_150 }

/**
 * Replays `h`; while `bug` is open it must still show (as its invariant), afterwards the history must be clean.
 * `shows`: what the server must have seen, so a clean history is not clean for want of trying.
 */
const regression = (name: string, h: History, bug?: keyof typeof openBugs, shows?: RegExp) =>
  it.effect(name, () =>
    Effect.gen(function*() {
      const outcome = yield* runHistory(h)
      assert.isUndefined(outcome.refused, `the engine refused the configuration: ${outcome.refused}`)
      const v = outcome.violation
      if (bug !== undefined && bug in openBugs && !strict) {
        assert.isDefined(v, `this history no longer breaks ${openBugs[bug]!.invariant}: if "${bug}" is fixed, delete it from openBugs.ts`)
        assert.strictEqual(explainedBy(v!, h), bug, `${v!.invariant}: ${v!.detail}\n${v!.trace}`)
        return
      }
      assert.isUndefined(v, v && `${v.invariant} broken after step ${v.step}: ${v.detail}\nserver log:\n${v.trace}`)
      if (shows !== undefined) assert.match(outcome.trace, shows)
    }))

describe("fault model regressions", () => {
  describe("shutdown", () => {
    regression(
      "a call on a shut-down engine fails with a tagged error, not an interruption",
      history([{ _tag: "Shutdown", slot: 0 }, get()]),
      "interruptionLeaksAtShutdown"
    )
    regression(
      "a caller waiting on a refresh when the engine shuts down gets a tagged outcome, not an interruption",
      history([get(), { _tag: "Shutdown", slot: 0 }]),
      "interruptionLeaksAtShutdown"
    )
    regression(
      "shutting down waits for a sent refresh, so another instance never presents the consumed token",
      history([get(0), get(1), { _tag: "Shutdown", slot: 0 }], [], { instances: 2 }),
      "shutdownAbandonsSentRequest"
    )
    regression(
      "on SQLite, shutting down during a forced refresh keeps the lease renewed and stores the answer before closing",
      history(
        [get(0), refresh, { _tag: "Call", slot: 1, key: 0, kind: "invalidate" }, { _tag: "Shutdown", slot: 0 }, refresh],
        [],
        {
          store: "sqlite",
          instances: 2,
          server: { accessTtlSec: 120 },
          engine: { timeoutMs: 1000, leaseTtlMs: 3000 },
          startExpired: false,
          pollMs: 250
        }
      )
    )
  })

  describe("a server seen not to rotate", () => {
    regression(
      "a grant whose recovery ended without an outcome is not marked rotation_lost: the server never rotated its token",
      {
        ...history(
          [
            { _tag: "Call", slot: 0, key: 1, kind: "get" },
            { _tag: "Call", slot: 1, key: 0, kind: "invalidate" },
            { _tag: "Call", slot: 0, key: 0, kind: "get" },
            { _tag: "Crash", slot: 1 },
            advance(10)
          ],
          [{ _tag: "Ok", latencyMs: 0 }, { _tag: "Slow", latencyMs: 5250 }, { _tag: "ResetAfterProcessing", latencyMs: 10 }],
          {
            instances: 3,
            server: { rotate: false, accessTtlSec: 120 },
            engine: { timeoutMs: 1000, leaseTtlMs: 3000 },
            pollMs: 250
          }
        ),
        keys: 2
      }
    )
    regression(
      "two unknown outcomes in a row with nothing to learn rotation from: the grant stays alive, the next refresh asks again",
      history(
        [refresh, advance(130_000), get()],
        [{ _tag: "ResetAfterProcessing", latencyMs: 10 }, { _tag: "Garbled", latencyMs: 10 }],
        {
          server: { rotate: false, accessTtlSec: 120 },
          engine: { timeoutMs: 1000, leaseTtlMs: 3000 },
          startExpired: false,
          pollMs: 250
        }
      )
    )
  })

  describe("an attempt whose outcome is unknown is not presented again within the flight", () => {
    regression(
      "after a timeout (the slow server rotated)",
      history([get(), advance(10_000)], [slow, slow]),
      "unknownOutcomeRepresentedInFlight"
    )
    regression(
      "after a reset once the server processed the request",
      history([get(), advance(10_000)], [{ _tag: "ResetAfterProcessing", latencyMs: 10 }, slow]),
      "unknownOutcomeRepresentedInFlight"
    )
    regression(
      "after a garbled 2xx",
      // The garbled answer ends the first flight; the second presents the token once (allowed), times out, and
      // presents it again.
      history([get(), advance(100), get(), advance(10_000)], [{ _tag: "Garbled", latencyMs: 10 }, slow]),
      "unknownOutcomeRepresentedInFlight"
    )
  })

  describe("Retry-After", () => {
    regression(
      "a pause is not extended by the calls it blocks (Retry-After 1 s, a call every 250 ms)",
      history([get(), advance(1_500)], [{ _tag: "RateLimited", retryAfterSec: 1 }, { _tag: "RateLimited", retryAfterSec: 1 }], {
        engine: { retry: "twoAttempts" },
        pollMs: 250
      }),
      "retryAfterPauseRearmedAndUncapped"
    )
    regression(
      "a Retry-After of an hour pauses callers no longer than the cap",
      history([get()], [{ _tag: "RateLimited", retryAfterSec: 3600 }], { pollMs: 5000 }),
      "retryAfterPauseRearmedAndUncapped"
    )
    regression(
      "a retry Schedule of the user's does not park callers for the server's Retry-After of an hour",
      history([refresh], [{ _tag: "RateLimited", retryAfterSec: 3600 }], { engine: { retry: "customSchedule" }, startExpired: false }),
      "customScheduleIgnoresRetryAfterCap"
    )
  })

  describe("a grant the server still honours is never marked needs_reauth", () => {
    regression(
      "an invalid_grant replayed from the cooldown is not diagnosed again (introspection says active)",
      history([get()], [{ _tag: "InvalidGrantKeep" }], { server: { introspection: true }, pollMs: 250 }),
      "replayedInvalidGrantMarksAliveGrantDead"
    )
    regression(
      "the same, on SQLite",
      history([get()], [{ _tag: "InvalidGrantKeep" }], {
        store: "sqlite",
        server: { introspection: true },
        engine: { timeoutMs: 1000, leaseTtlMs: 3000 },
        pollMs: 250
      }),
      "replayedInvalidGrantMarksAliveGrantDead"
    )
    regression(
      "invalid_grant after a timed-out attempt is checked with introspection before rotation_lost",
      history([get(), advance(3_620)], [slow, { _tag: "InvalidGrantKeep" }], {
        server: { rotate: false, introspection: true, accessTtlSec: 120 },
        pollMs: 5000
      }),
      "ambiguousInvalidGrantSkipsIntrospection"
    )
  })

  describe("no caller is handed an expired access token", () => {
    regression(
      "refresh() inside the forced-refresh cooldown",
      history([advance(130_000), refresh, refresh], [{ _tag: "ServerError", status: 502, retryAfterSec: 60 }], {
        server: { accessTtlSec: 120 },
        startExpired: false,
        pollMs: 5000
      }),
      "cooldownServesExpiredToken"
    )
    regression(
      "invalidate() when the stored access token is another, expired one",
      history([get(), { _tag: "SetGrant", slot: 0, key: 0 }, advance(130_000), invalidate], [], {
        server: { accessTtlSec: 120 },
        startExpired: false,
        pollMs: 5000
      }),
      "cooldownServesExpiredToken"
    )
  })

  // What the model must accept: these pass on today's engine and pin the model against false alarms.
  describe("allowed", () => {
    regression(
      "a holder that crashes mid-refresh is recovered once by the next holder (DU-4), on SQLite",
      history(
        [get(0), { _tag: "Crash", slot: 0 }, advance(31_000), get(1), advance(5_000)],
        [slow],
        { store: "sqlite", instances: 2, engine: { timeoutMs: 5000, leaseTtlMs: 10_000 } }
      ),
      undefined,
      /instance 1 f1#0 Slow: active -> rotated, answer lost \(crash.*\n.*instance 2 f1#0 Ok: consumed -> reuse-revoked/
    )
    regression(
      "a consumed token presented again within the server's grace period",
      history([get(), advance(10_000)], [slow], { server: { graceMs: 60_000 }, engine: { declareGrace: true } }),
      undefined,
      /f1#0 Ok: consumed -> grace, answer seen/
    )
    regression(
      "a connection refused before the request was written is retried with the same token",
      history([get(), advance(5_000)], [{ _tag: "ResetBeforeSend" }, { _tag: "ResetBeforeSend" }]),
      undefined,
      /f1#0 Ok: active -> rotated, answer seen/
    )
    regression(
      "a new authorization during a slow refresh is used",
      history([get(), { _tag: "SetGrant", slot: 0, key: 0 }, advance(10_000), get()], [slow]),
      undefined,
      /f1#0 Slow: active -> rotated/
    )
  })
})
