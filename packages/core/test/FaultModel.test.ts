/**
 * The model-based fault suite (issue 11): generated histories of engine instances sharing a store, a simulated
 * authorization server with rotation and reuse detection, faults, crashes, shutdowns and clock jumps; invariants
 * I1–I6 (see support/faultModel/Run.ts) are checked after every step.
 *
 * Longer local runs: RENEW_FAULT_RUNS=20000 RENEW_FAULT_SEED=<n> npx vitest run packages/core/test/FaultModel.test.ts
 */
import { describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeSteps, type History, historyArb } from "./support/faultModel/History.js"
import { runHistory } from "./support/faultModel/Run.js"

const SEED = Number(process.env.RENEW_FAULT_SEED ?? 20261203)
const RUNS = Number(process.env.RENEW_FAULT_RUNS ?? 1000)
const SQLITE_RUNS = Number(process.env.RENEW_FAULT_SQLITE_RUNS ?? Math.max(1, Math.round(RUNS / 10)))

const assertHistory = (history: History) =>
  Effect.flatMap(runHistory(history), (outcome) => {
    const v = outcome.violation
    if (v === undefined) return Effect.void
    return Effect.fail(
      new Error(
        `${v.invariant} broken after step ${v.step} (seed ${SEED}; replay with RENEW_FAULT_SEED=${SEED}):\n${v.detail}\nserver log:\n${v.trace}\nsteps:\n${describeSteps(history.steps)}\nfaults: ${JSON.stringify(history.faults)}`
      )
    )
  })

describe("fault model", () => {
  it.effect.prop(
    "memory store: no history breaks I1–I6",
    { history: historyArb("memory") },
    ({ history }) => assertHistory(history),
    { timeout: 600_000, fastCheck: { seed: SEED, numRuns: RUNS } }
  )

  it.effect.prop(
    "SQLite store: no history breaks I1–I6",
    { history: historyArb("sqlite") },
    ({ history }) => assertHistory(history),
    { timeout: 600_000, fastCheck: { seed: SEED, numRuns: SQLITE_RUNS } }
  )
})
