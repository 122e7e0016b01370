/**
 * Time helpers for engine tests that run on the TestClock while talking to a real loopback server.
 *
 * The TestClock moves only when a test says so, so nothing on it can race a slow machine; real I/O still takes real
 * time. These helpers wait for real events (a state to hold, a fiber to settle, a fiber to sleep) with deadlines that
 * only bound a hang: a loaded machine can be many times slower than a quiet one, and waiting longer costs nothing when
 * the event comes.
 */
import { Chunk, Effect, Exit, Fiber, FiberStatus, Option, TestClock } from "effect"

/** How long a helper waits in real time before it calls the event lost (a hang), unless told otherwise. */
export const HANG_MILLIS = 30_000

/** Waits `ms` of real time, whatever the Effect clock is (lets real I/O such as an HTTP answer happen). */
export const realSleep = (ms: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/**
 * Polls `condition` in real time until it holds; dies naming `what` if it still does not after `deadlineMillis` of
 * real time. `condition` runs with the test's services (the TestClock included).
 */
export const eventually = (
  what: string,
  condition: Effect.Effect<boolean> | (() => boolean),
  deadlineMillis = HANG_MILLIS
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const check = typeof condition === "function" ? Effect.sync(condition) : condition
    const deadline = Date.now() + deadlineMillis
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage(`${what}: not within ${deadlineMillis} ms of real time`)
      yield* realSleep(5)
    }
  })

/** Joins `fiber`; dies naming `what` if it is still running after `deadlineMillis` of real time (it hangs). */
export const joinWithin = <A, E>(
  fiber: Fiber.Fiber<A, E>,
  what: string,
  deadlineMillis = HANG_MILLIS
): Effect.Effect<A, E> =>
  Effect.raceFirst(
    Fiber.await(fiber).pipe(Effect.map(Option.some)),
    Effect.as(realSleep(deadlineMillis), Option.none<Exit.Exit<A, E>>())
  ).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.dieMessage(`${what}: still running after ${deadlineMillis} ms of real time`),
      onSome: (exit) => exit
    }))
  )

/** Waits (real time) until every fiber is suspended (blocked on something, e.g. a flight's outcome) or done. */
export const suspendedOrDone = (
  fibers: ReadonlyArray<Fiber.RuntimeFiber<unknown, unknown>>,
  what: string
): Effect.Effect<void> =>
  eventually(
    what,
    Effect.map(
      Effect.forEach(fibers, (fiber) => fiber.status),
      (statuses) => statuses.every((status) => FiberStatus.isSuspended(status) || FiberStatus.isDone(status))
    )
  )

/**
 * Joins `fiber`, moving the TestClock to the end of every sleep of at most `withinMillis` that appears meanwhile (a
 * retry's backoff), and only to there: the clock moves exactly as far as the fiber's own short waits need, however
 * slow the machine is. Real I/O happens meanwhile. Longer sleeps (timeouts, pauses, the engine's bookkeeping timer)
 * are never reached. The TestClock keeps the end of an interrupted sleep (a timeout that lost its race) in its list
 * until it is passed, and the clock moves to those too: use this only where such a move changes nothing asserted.
 */
export const joinAdvancingShortSleeps = <A, E>(
  fiber: Fiber.Fiber<A, E>,
  withinMillis: number,
  what: string,
  deadlineMillis = HANG_MILLIS
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const deadline = Date.now() + deadlineMillis
    while (Option.isNone(yield* Fiber.poll(fiber))) {
      if (Date.now() > deadline) {
        return yield* Effect.dieMessage(`${what}: still running after ${deadlineMillis} ms of real time`)
      }
      const now = yield* TestClock.currentTimeMillis
      const short = Chunk.toReadonlyArray(yield* TestClock.sleeps()).filter((end) => end > now && end <= now + withinMillis)
      if (short.length > 0) yield* TestClock.adjust(Math.min(...short) - now)
      else yield* realSleep(5)
    }
    return yield* Fiber.join(fiber)
  })

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
    const deadline = Date.now() + (options.realDeadlineMillis ?? HANG_MILLIS)
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
