/**
 * What a check returns: its verdict (status, evidence, remedy; the pipeline adds the name), and for the checks whose
 * findings later checks use, those findings.
 *
 * @internal
 */
import type { Check } from "../../Doctor.js"

/** A check's result without its name: the pipeline knows which check ran. @internal */
export type Verdict = Omit<Check, "name">

/** A verdict plus what later checks need from this one. @internal */
export interface Outcome<A> {
  readonly verdict: Verdict
  readonly found: A
}

/** @internal */
export const pass = (evidence: string): Verdict => ({ status: "PASS", evidence, remedy: null })

/** @internal */
export const warn = (evidence: string, remedy: string): Verdict => ({ status: "WARN", evidence, remedy })

/** @internal */
export const fail = (evidence: string, remedy: string): Verdict => ({ status: "FAIL", evidence, remedy })

/** @internal */
export const skip = (evidence: string, remedy: string | null = null): Verdict => ({ status: "SKIP", evidence, remedy })

/** One thing a check found wrong, with what to do about it. @internal */
export interface Finding {
  readonly note: string
  readonly remedy: string
}

/**
 * What a check with several sub-checks collects (discovery, refresh): failures, warnings and plain notes. The worst
 * kind decides the status; the evidence lists the worst first, and the remedy has one sentence per problem.
 *
 * @internal
 */
export class Findings {
  readonly failures: Array<Finding> = []
  readonly warnings: Array<Finding> = []
  readonly notes: Array<string> = []

  verdict(): Verdict {
    const problems = [...this.failures, ...this.warnings]
    const evidence = [...problems.map((p) => p.note), ...this.notes].join("; ")
    const remedy = problems.map((p) => p.remedy).join(" ")
    if (this.failures.length > 0) return fail(evidence, remedy)
    if (this.warnings.length > 0) return warn(evidence, remedy)
    return pass(evidence)
  }
}
