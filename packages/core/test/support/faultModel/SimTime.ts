/**
 * Virtual time and execution for the fault model: a Clock whose sleeps wake only when the driver advances it, and
 * schedulers that run fibers on microtasks and can be frozen (a crashed process).
 *
 * Why not `TestClock`: `TestClock.adjust` waits for every fiber to settle with real `setTimeout(0)` turns before
 * each sleep it wakes (about 3 ms each), and an engine instance wakes several times per simulated minute (its
 * bookkeeping timer, lease renewals, retries). A history would take seconds; here it takes milliseconds. The
 * semantics are the same: time moves only when the driver says, sleepers wake in deadline order, and everything
 * that can run at an instant runs before the clock moves on.
 *
 * Settling: every fiber of a history runs on a `SimScheduler`, which queues its tasks as microtasks and counts
 * them. The driver waits for `setImmediate` turns until a turn runs no task: then every fiber is suspended on a
 * sleep, a lock or a frozen scheduler, and nothing else can happen until the clock moves. Response bodies are
 * read through promises, which also settle within a turn. The whole run is deterministic, so fast-check can
 * shrink a failing history and a recorded history replays the same way.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scheduler from "effect/Scheduler"

interface Sleeper {
  readonly at: number
  readonly seq: number
  readonly wake: () => void
  cancelled: boolean
}

/** A scheduler for one simulated process. Frozen, it drops every task: its fibers never run again. */
export interface SimScheduler extends Scheduler.Scheduler {
  frozen: boolean
}

export interface SimTime {
  /** Where the clock started: messages show times relative to it. */
  readonly start: number
  readonly clock: Clock.Clock
  readonly now: () => number
  /** Runs everything that can run at the current instant. */
  readonly settle: Effect.Effect<void>
  /** Moves the clock forward by `millis`, waking sleepers in deadline order and settling after each instant. */
  readonly advance: (millis: number) => Effect.Effect<void>
  /** Advances in `step` increments until `done()` or `maxMillis` have passed; true if `done()`. */
  readonly advanceUntil: (done: () => boolean, step: number, maxMillis: number) => Effect.Effect<boolean>
  readonly makeScheduler: () => SimScheduler
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

export const make = (start: number): SimTime => {
  let now = start
  let seq = 0
  let ticks = 0
  let sleepers: Array<Sleeper> = []

  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    // Lease back-off sleeps fractions of a millisecond, so `now` need not be whole.
    unsafeCurrentTimeNanos: () => BigInt(Math.floor(now * 1_000_000)),
    currentTimeNanos: Effect.sync(() => BigInt(Math.floor(now * 1_000_000))),
    sleep: (duration: Duration.Duration) =>
      Effect.async<void>((resume) => {
        const millis = Duration.toMillis(duration)
        if (!(millis > 0)) {
          resume(Effect.void)
          return
        }
        const sleeper: Sleeper = { at: now + millis, seq: seq++, wake: () => resume(Effect.void), cancelled: false }
        sleepers.push(sleeper)
        return Effect.sync(() => {
          sleeper.cancelled = true
        })
      })
  } as Clock.Clock

  const settleNow = async () => {
    let before: number
    do {
      before = ticks
      await nextTurn()
    } while (ticks !== before)
  }

  const advanceNow = async (millis: number) => {
    const target = now + Math.max(0, millis)
    await settleNow()
    while (true) {
      sleepers = sleepers.filter((s) => !s.cancelled)
      let next: number | undefined
      for (const s of sleepers) if (s.at <= target && (next === undefined || s.at < next)) next = s.at
      if (next === undefined) break
      now = next
      const due = sleepers.filter((s) => s.at === next).sort((a, b) => a.seq - b.seq)
      sleepers = sleepers.filter((s) => s.at !== next)
      for (const s of due) if (!s.cancelled) s.wake()
      await settleNow()
    }
    now = target
    await settleNow()
  }

  const advance = (millis: number) => Effect.promise(() => advanceNow(millis))

  return {
    start,
    clock,
    now: () => now,
    settle: Effect.promise(settleNow),
    advance,
    advanceUntil: (done, step, maxMillis) =>
      Effect.promise(async () => {
        const deadline = now + maxMillis
        await settleNow()
        while (!done() && now < deadline) await advanceNow(Math.min(step, deadline - now))
        return done()
      }),
    makeScheduler: () => {
      const scheduler: SimScheduler = Object.assign(
        Scheduler.make((task) => {
          if (scheduler.frozen) return
          queueMicrotask(() => {
            if (scheduler.frozen) return
            ticks++
            task()
          })
        }),
        { frozen: false }
      )
      return scheduler
    }
  }
}
