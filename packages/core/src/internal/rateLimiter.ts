/**
 * A token bucket as a schedule of slots (GCRA): each take reserves the next free slot atomically and sleeps until it,
 * so concurrent takers are served in order at `ratePerSecond`, with bursts of up to `burst`. Time comes from `Clock`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/** @internal */
export interface RateLimiter {
  /** Waits for one permit. */
  readonly take: Effect.Effect<void>
}

/** @internal */
export const make = (ratePerSecond: number, burst: number): RateLimiter => {
  const spacing = 1000 / ratePerSecond
  // The time the next permit is free; up to `burst` permits may be taken ahead of it.
  let nextFree = -Infinity
  return {
    take: Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const slot = Math.max(nextFree, now - (burst - 1) * spacing)
      nextFree = slot + spacing
      const wait = slot - now
      return wait > 0 ? Effect.sleep(Duration.millis(wait)) : Effect.void
    })
  }
}
