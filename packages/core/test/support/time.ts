/**
 * Time helpers for engine tests that run on the TestClock while talking to a real loopback server.
 */
import { Effect, Fiber, Option, TestClock } from "effect"
import type * as Exit from "effect/Exit"

/** Waits `ms` of real time, whatever the Effect clock is (lets real I/O such as an HTTP answer happen). */
export const realSleep = (ms: number): Effect.Effect<void> =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/**
 * Polls `fiber` in real time (up to `realDeadlineMillis`), moving the TestClock forward in `stepMillis` steps but never
 * past `clockBudgetMillis` in total. `undefined` when the fiber is still running: it waits on a clock further away.
 */
export const exitWithinTestClock = <A, E>(
  fiber: Fiber.Fiber<A, E>,
  options: { readonly clockBudgetMillis: number; readonly stepMillis?: number; readonly realDeadlineMillis?: number }
): Effect.Effect<Exit.Exit<A, E> | undefined> =>
  Effect.gen(function*() {
    const step = options.stepMillis ?? 100
    const deadline = Date.now() + (options.realDeadlineMillis ?? 5000)
    let advanced = 0
    while (Date.now() < deadline) {
      const done = yield* Fiber.poll(fiber)
      if (Option.isSome(done)) return done.value
      yield* realSleep(20)
      if (advanced + step <= options.clockBudgetMillis) {
        yield* TestClock.adjust(step)
        advanced += step
      }
    }
    return Option.getOrUndefined(yield* Fiber.poll(fiber))
  })
