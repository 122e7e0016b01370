/**
 * scope: would a refresh asking for --scope be refused with invalid_scope? A refresh may only narrow the granted
 * scope, so the requested scope must be within the one introspection reported (or, failing that, the store's).
 *
 * @internal
 */
import type { GrantedScope } from "./refreshToken.js"
import { Remedies } from "./remedies.js"
import { fail, pass, skip, type Verdict } from "./verdict.js"

/** @internal */
export interface ScopeContext {
  /** --scope. */
  readonly requested: string | undefined
  /** From introspection (refresh-token), when it reported one. */
  readonly introspected: GrantedScope | undefined
  /** From the stored grant. */
  readonly stored: string | undefined
}

const scopes = (scope: string): Array<string> => scope.split(/\s+/).filter((s) => s !== "")

/** @internal */
export const check = ({ introspected, requested, stored }: ScopeContext): Verdict => {
  if (requested === undefined) {
    return skip("no --scope given: refreshes do not ask for a scope, so the server keeps the granted one")
  }
  const granted = introspected ?? (stored !== undefined ? { scope: stored, from: "the store" } : undefined)
  if (granted === undefined) {
    return skip("the granted scope is unknown (no introspection answer with a scope, no scope in the store)")
  }
  const grantedSet = new Set(scopes(granted.scope))
  const missing = scopes(requested).filter((s) => !grantedSet.has(s))
  if (missing.length > 0) {
    return fail(
      `requested scope ${JSON.stringify(requested)} is wider than the granted ${JSON.stringify(granted.scope)} (from ${granted.from}): ${
        missing.join(", ")
      } not granted; a refresh would fail with invalid_scope`,
      Remedies.scope
    )
  }
  return pass(
    `requested scope ${JSON.stringify(requested)} is within the granted ${JSON.stringify(granted.scope)} (from ${granted.from})`
  )
}
