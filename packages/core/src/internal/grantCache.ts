/**
 * The in-memory copy of fresh grants: the cached path is a Map lookup and a clock read, no fiber, no store read.
 *
 * Refresh-ahead: an entry is served until `until` (the stale point); past `prefetchAt` the first hit also asks for a
 * background refresh (`onPrefetch`), once, and keeps being served while it runs.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Tracer from "effect/Tracer"
import * as Telemetry from "../Telemetry.js"
import type { Grant } from "../Token.js"

interface Entry {
  readonly grant: Grant
  /** When this entry stops being served from memory. */
  readonly until: number
  /** When the first hit asks for a background refresh; `Infinity` once asked (or never). */
  prefetchAt: number
}

/** @internal */
export interface GrantCache {
  /**
   * The grant, if it may still be served from memory. `prefetchParent` is asked, only when this hit starts a
   * background refresh, for the span that refresh belongs under (the caller's).
   */
  readonly get: (key: string, prefetchParent?: () => Tracer.AnySpan | undefined) => Grant | undefined
  /** Serves `grant` until `until`; past `prefetchAt` (default: never) the first hit asks for a background refresh. */
  readonly set: (key: string, grant: Grant, until: number, prefetchAt?: number) => void
  /** Asks for the entry's background refresh now if it is past its prefetch point (no hit counted). */
  readonly prefetchIfDue: (key: string) => void
  /** Asks again for a background refresh at `at`, if the entry has already asked and is still served then. */
  readonly rearm: (key: string, at: number) => void
  readonly delete: (key: string) => void
  /** Adds the hits counted so far to the metric. */
  readonly flushHits: () => void
  readonly sweep: () => void
}

// With a coarse clock the time is read again after this many hits even within one event-loop turn: a loop that only
// awaits microtasks never reaches the next turn, and must not be served a token past its expiry.
const HITS_PER_CLOCK_READ = 32

/**
 * With `coarse`, the time is read once per event-loop turn (and every few dozen hits): reading it costs as much as
 * the rest of the cached path. The lag is bounded by a few dozen cache hits, far below the refresh margin (skew, at
 * least half the lifetime, or a second for stale-served tokens).
 *
 * @internal
 */
export const make = (
  clock: Clock.Clock,
  options: {
    readonly coarse: boolean
    /** Called synchronously by the hit that passes an entry's `prefetchAt`; must not block. */
    readonly onPrefetch: (key: string, parent?: Tracer.AnySpan) => void
  }
): GrantCache => {
  const entries = new Map<string, Entry>()
  let pendingHits = 0
  const flushHits = () => {
    if (pendingHits > 0) Telemetry.cacheHits.unsafeUpdate(pendingHits, noTags)
    pendingHits = 0
  }

  let turnNow: number | undefined
  let readsLeft = 0
  const resetTurn = () => {
    turnNow = undefined
  }
  const now = options.coarse
    ? () => {
      if (turnNow === undefined || --readsLeft <= 0) {
        if (turnNow === undefined) nextTurn(resetTurn)
        turnNow = clock.unsafeCurrentTimeMillis()
        readsLeft = HITS_PER_CLOCK_READ
      }
      return turnNow
    }
    : () => clock.unsafeCurrentTimeMillis()

  return {
    get: (key, prefetchParent) => {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      const at = now()
      if (at >= entry.until) {
        // Past its time the entry is only a stale copy of the store: drop it, so keys not used again do not pile up.
        entries.delete(key)
        return undefined
      }
      if (at >= entry.prefetchAt) {
        entry.prefetchAt = Infinity
        options.onPrefetch(key, prefetchParent?.())
      }
      if (++pendingHits === 64) flushHits()
      return entry.grant
    },
    set: (key, grant, until, prefetchAt = Infinity) =>
      void entries.set(key, { grant, until, prefetchAt: prefetchAt < until ? prefetchAt : Infinity }),
    prefetchIfDue: (key) => {
      const entry = entries.get(key)
      if (entry !== undefined && clock.unsafeCurrentTimeMillis() >= entry.prefetchAt) {
        entry.prefetchAt = Infinity
        options.onPrefetch(key)
      }
    },
    rearm: (key, at) => {
      const entry = entries.get(key)
      if (entry !== undefined && entry.prefetchAt === Infinity && at < entry.until) entry.prefetchAt = at
    },
    delete: (key) => void entries.delete(key),
    flushHits,
    sweep: () => {
      const at = clock.unsafeCurrentTimeMillis()
      for (const [key, entry] of entries) if (at >= entry.until) entries.delete(key)
    }
  }
}

const noTags: ReadonlyArray<never> = []

// After the current event-loop turn: setImmediate on Node, a zero timeout elsewhere.
const nextTurn: (f: () => void) => void = typeof setImmediate === "function"
  ? (f) => void setImmediate(f)
  : (f) => void setTimeout(f, 0)
