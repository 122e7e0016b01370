/**
 * When the background scheduler refreshes a grant (SC-1, SC-2): ahead of the access token's expiry by a margin
 * bounded by half its lifetime, minus a jitter drawn from the grant's key and issue time (so a burst of grants
 * issued together does not come due together, and every replica computes the same time), and no later than
 * `keepAlive` after the last refresh when keep-alive is on.
 *
 * @internal
 */
import type { Grant } from "../Token.js"

/** @internal */
export interface DuePolicy {
  /** How long before expiry a grant is due. */
  readonly marginMillis: number
  /** Jitter: up to this fraction of the lifetime earlier, within the first half of the lifetime. */
  readonly jitterFraction: number
  /** Refresh a grant at least this often, whatever its access token's lifetime; `undefined`: off. */
  readonly keepAliveMillis: number | undefined
}

/** A number in [0, 1) from the key and the issue time (FNV-1a, 32 bits): stable across replicas and restarts. */
const spread = (key: string, issuedAt: number): number => {
  let hash = 0x811c9dc5
  const text = `${key}\u0000${issuedAt}`
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) / 0x1_0000_0000
}

/** The grant's `refreshDueAt` under `policy`. @internal */
export const refreshDueAt = (policy: DuePolicy, key: string, grant: Grant): number => {
  if (grant.accessToken === undefined) return grant.issuedAt
  const lifetime = Math.max(0, grant.expiresAt - grant.issuedAt)
  const margin = Math.min(policy.marginMillis, lifetime / 2)
  const jitterRoom = Math.max(0, Math.min(policy.jitterFraction * lifetime, lifetime / 2 - margin))
  const beforeExpiry = grant.expiresAt - margin - Math.floor(spread(key, grant.issuedAt) * jitterRoom)
  const due = policy.keepAliveMillis === undefined
    ? beforeExpiry
    : Math.min(beforeExpiry, grant.issuedAt + policy.keepAliveMillis)
  return Math.max(0, Math.floor(due))
}
