/**
 * A history: the fleet (instances, store, keys), the server's behaviour, the faults it injects request by request,
 * and the steps the driver takes. Plain data, so fast-check can generate and shrink it and a counterexample can be
 * pasted into a regression test as it is.
 */
import * as fc from "effect/FastCheck"
import type { Fault } from "./AuthServer.js"

export type CallKind = "get" | "refresh" | "invalidate"

export type Step =
  /** A caller asks an instance for a token; the driver does not wait for the answer. */
  | { readonly _tag: "Call"; readonly slot: number; readonly key: number; readonly kind: CallKind }
  /** Time passes. */
  | { readonly _tag: "Advance"; readonly ms: number }
  /** The user authorizes again: a new grant family, stored through an instance's `setGrant`. */
  | { readonly _tag: "SetGrant"; readonly slot: number; readonly key: number }
  /** The instance's process dies: nothing of it runs again, nothing is released (see Fleet.ts). */
  | { readonly _tag: "Crash"; readonly slot: number }
  /** The instance is shut down gracefully: its scope is closed. */
  | { readonly _tag: "Shutdown"; readonly slot: number }
  /** A crashed or shut-down instance is started again. */
  | { readonly _tag: "Restart"; readonly slot: number }
  /** The instance's RefreshScheduler sweeps once (claims due grants and refreshes them); the driver does not wait. */
  | { readonly _tag: "Sweep"; readonly slot: number }

export interface History {
  readonly store: "memory" | "sqlite"
  /** Seeds the engine's `Random` (retry jitter), so a history replays exactly. */
  readonly seed: number
  readonly instances: number
  readonly keys: number
  readonly server: {
    readonly rotate: boolean
    readonly graceMs: number
    readonly introspection: boolean
    readonly accessTtlSec: number
  }
  readonly engine: {
    readonly timeoutMs: number
    /** SQLite only. */
    readonly leaseTtlMs: number
    /** Declare the server's grace period to the engine (`reuseGracePeriod`). */
    readonly declareGrace: boolean
    /** The default policy, the default with two attempts, or a schedule of the user's (`RetryPolicy.fromSchedule`). */
    readonly retry: "default" | "twoAttempts" | "customSchedule"
  }
  /** Whether the initial grants' access tokens are already expired. */
  readonly startExpired: boolean
  /** One per token request, in arrival order; later requests succeed. */
  readonly faults: ReadonlyArray<Fault>
  readonly steps: ReadonlyArray<Step>
  /** Once faults stop, how often a caller asks again (I5). */
  readonly pollMs: number
}

const slot = fc.nat({ max: 3 })
const key = fc.nat({ max: 2 })

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({
      _tag: fc.constant("Call" as const),
      slot,
      key,
      kind: fc.oneof(
        { weight: 6, arbitrary: fc.constant("get" as const) },
        { weight: 1, arbitrary: fc.constant("refresh" as const) },
        { weight: 1, arbitrary: fc.constant("invalidate" as const) }
      )
    })
  },
  {
    weight: 4,
    arbitrary: fc.record({ _tag: fc.constant("Advance" as const), ms: fc.integer({ min: 1, max: 300 }).map((n) => n * 10) })
  },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("Advance" as const), ms: fc.integer({ min: 5, max: 45 }).map((n) => n * 1000) })
  },
  {
    weight: 1,
    arbitrary: fc.record({ _tag: fc.constant("Advance" as const), ms: fc.constantFrom(130_000, 610_000, 3_700_000) })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("SetGrant" as const), slot, key }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Crash" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Shutdown" as const), slot }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Restart" as const), slot }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Sweep" as const), slot }) }
)

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ _tag: fc.constant("Ok" as const), latencyMs: fc.integer({ min: 0, max: 40 }).map((n) => n * 10) }) },
  // Past every timeout we generate (at most 5 s), never equal to one.
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Slow" as const), latencyMs: fc.integer({ min: 52, max: 150 }).map((n) => n * 100 + 50) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("ServerError" as const),
      status: fc.constantFrom(500 as const, 502 as const, 503 as const),
      retryAfterSec: fc.option(fc.constantFrom(1, 5, 60), { nil: undefined })
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("RateLimited" as const), retryAfterSec: fc.constantFrom(1, 2, 10, 45, 3600) })
  },
  { weight: 2, arbitrary: fc.constant({ _tag: "ResetBeforeSend" as const }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("ResetAfterProcessing" as const), latencyMs: fc.constantFrom(10, 200) }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Garbled" as const), latencyMs: fc.constantFrom(10, 200) }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "InvalidGrant" as const }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "InvalidGrantKeep" as const }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "InvalidClient" as const }) }
)

export const historyArb = (store: History["store"]): fc.Arbitrary<History> =>
  fc.record({
    store: fc.constant(store),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    // Mostly one or two instances: each costs a layer build, and most races need only two.
    instances: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(1, 2) }, { weight: 1, arbitrary: fc.constantFrom(3, 4) }),
    keys: fc.integer({ min: 1, max: 3 }),
    server: fc.record({
      rotate: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      graceMs: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(3_000, 60_000) }),
      introspection: fc.boolean(),
      accessTtlSec: fc.constantFrom(120, 600, 3600)
    }),
    engine: fc.record({
      timeoutMs: fc.constantFrom(1_000, 2_000, 5_000),
      leaseTtlMs: fc.constantFrom(3_000, 10_000, 30_000),
      declareGrace: fc.boolean(),
      retry: fc.constantFrom("default" as const, "twoAttempts" as const, "customSchedule" as const)
    }),
    startExpired: fc.boolean(),
    faults: fc.array(faultArb, { maxLength: 12 }),
    steps: fc.array(stepArb, { minLength: 1, maxLength: 20 }),
    pollMs: fc.constantFrom(250, 1_000, 5_000)
  })

/** One line per step, for failure messages. */
export const describeSteps = (steps: ReadonlyArray<Step>): string =>
  steps.map((step, i) => `  ${i}: ${JSON.stringify(step)}`).join("\n")
