/**
 * Runs the checks in order and records their verdicts. This is the one place that knows the rule "a check that
 * cannot run because an earlier one failed is SKIP, blocked by <check>", so no check has to know what came before
 * it beyond the context it is given.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Check, CheckName } from "../../Doctor.js"
import type { Outcome, Verdict } from "./verdict.js"

/** @internal */
export interface Pipeline {
  /** Runs a check that depends on nothing (config). */
  readonly first: <A, R>(name: CheckName, body: Effect.Effect<Outcome<A>, never, R>) => Effect.Effect<A, never, R>
  /**
   * Runs `body` unless one of `deps` failed or was itself blocked: then the check is SKIP "blocked by <root cause>",
   * `body` is never called, and `blocked` stands in for its findings.
   */
  readonly runWith: <A, R>(
    name: CheckName,
    deps: ReadonlyArray<CheckName>,
    body: () => Effect.Effect<Outcome<A>, never, R>,
    blocked: A
  ) => Effect.Effect<A, never, R>
  /** `runWith` for a check that later checks need nothing from; `body` may be a plain (synchronous) verdict. */
  readonly run: <R = never>(
    name: CheckName,
    deps: ReadonlyArray<CheckName>,
    body: () => Verdict | Effect.Effect<Verdict, never, R>
  ) => Effect.Effect<void, never, R>
  /** The verdicts so far, in the order the checks ran. */
  readonly checks: () => ReadonlyArray<Check>
}

/** @internal */
export const make = (): Pipeline => {
  const checks: Array<Check> = []
  /** For each FAIL (itself) and each blocked SKIP (its root cause): what blocks the checks that depend on it. */
  const blockedBy = new Map<CheckName, CheckName>()

  const record = <A>(name: CheckName, outcome: Outcome<A>): A => {
    checks.push({ name, ...outcome.verdict })
    if (outcome.verdict.status === "FAIL") blockedBy.set(name, name)
    return outcome.found
  }

  const runWith: Pipeline["runWith"] = (name, deps, body, blocked) =>
    Effect.suspend(() => {
      const root = deps.map((dep) => blockedBy.get(dep)).find((root) => root !== undefined)
      if (root !== undefined) {
        checks.push({ name, status: "SKIP", evidence: `blocked by ${root}`, remedy: `Fix ${root} first.` })
        blockedBy.set(name, root)
        return Effect.succeed(blocked)
      }
      return Effect.map(body(), (outcome) => record(name, outcome))
    })

  return {
    first: (name, body) => Effect.map(body, (outcome) => record(name, outcome)),
    runWith,
    run: (name, deps, body) =>
      runWith(name, deps, () => {
        const result = body()
        return Effect.map(Effect.isEffect(result) ? result : Effect.succeed(result), (verdict) => ({
          verdict,
          found: undefined
        }))
      }, undefined),
    checks: () => checks
  }
}
