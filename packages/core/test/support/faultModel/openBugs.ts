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

export const openBugs: Readonly<Record<string, OpenBug>> = {}

export const strict = process.env.RENEW_FAULT_STRICT === "1"

/** The open bug that explains a violation, if any (none in strict mode). */
export const explainedBy = (violation: Violation, history: History): string | undefined =>
  strict ? undefined : Object.entries(openBugs).find(([, bug]) => bug.explains(violation, history))?.[0]
