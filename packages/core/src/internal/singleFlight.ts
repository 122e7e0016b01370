/**
 * One flight per key, however many callers ask. A flight runs in its own fiber in the engine's flight scope, so no
 * caller owns it: every caller waits on its outcome, and interrupting a caller detaches only that caller.
 *
 * Closing stops new flights (`EngineClosed`) and interrupts the running ones; a flight protects what must finish (a
 * sent attempt and the write of its answer) by itself, and closing waits for that.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Scope from "effect/Scope"
import * as Errors from "../RefreshError.js"

/** @internal */
export interface Flight {
  /** Callers waiting on this flight, the one that started it included. */
  waiters: number
  /** Counts of callers outside the engine that share one caller's wait (see `sharedBy`). */
  readonly sharers: Array<{ readonly count: number }>
}

/**
 * Callers that share one engine call without entering the engine (the Promise facade's concurrent calls for a key),
 * counted on the flight that call joins.
 *
 * @internal
 */
export const sharedBy = FiberRef.unsafeMake<{ readonly count: number } | undefined>(undefined)

/** Everyone waiting on `flight`. @internal */
export const waitersOf = (flight: Flight): number => {
  let waiters = flight.waiters
  for (const sharers of flight.sharers) waiters += sharers.count
  return waiters
}

interface Running<A, E> extends Flight {
  readonly deferred: Deferred.Deferred<A, E | Errors.EngineClosed>
}

/** @internal */
export interface SingleFlight<A, E> {
  /** Joins the key's flight, or starts `start` as the key's flight. */
  readonly join: <R>(
    key: string,
    start: (flight: Flight) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | Errors.EngineClosed, R>
  /**
   * Starts `start` as the key's flight unless one is running or the engine is closed, and returns at once: nobody
   * waits on it (a background refresh). Its outcome is for whoever joins it meanwhile.
   */
  readonly spawn: <R>(key: string, start: (flight: Flight) => Effect.Effect<A, E, R>) => Effect.Effect<void, never, R>
  readonly isClosed: () => boolean
}

/**
 * Makes the flights of one engine. When `scope` closes, flights are stopped first (before anything the engine set up
 * earlier is released), so a sent attempt can still use the store.
 *
 * @internal
 */
export const make = <A, E>(): Effect.Effect<SingleFlight<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const flights = new Map<string, Running<A, E>>()
    const flightScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    let closed = false
    // Runs before the flight scope closes (finalizers run last-added first): refuse new flights, then interrupt and
    // await the running ones.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Scope.close(flightScope, Exit.void)
      })
    )

    /** The key's running flight, or a new one started with `waiters` waiters; `undefined` once closed. */
    const flightFor = <R>(key: string, start: (flight: Flight) => Effect.Effect<A, E, R>, waiters: number) =>
      Effect.withFiberRuntime((fiber): Effect.Effect<Running<A, E> | undefined, never, R> => {
        if (closed) return Effect.succeed(undefined)
        const sharers = waiters > 0 ? fiber.getFiberRef(sharedBy) : undefined
        const existing = flights.get(key)
        if (existing !== undefined) {
          existing.waiters += waiters
          if (sharers !== undefined) existing.sharers.push(sharers)
          return Effect.succeed(existing)
        }
        const flight: Running<A, E> = {
          deferred: Deferred.unsafeMake(FiberId.none),
          waiters,
          sharers: sharers !== undefined ? [sharers] : []
        }
        flights.set(key, flight)
        // Registration and fork are atomic; the flight itself stays interruptible (shutdown). Its completion is
        // installed outside that boundary, so even a flight interrupted before it starts completes its Deferred.
        return Effect.as(
          Effect.forkIn(
            Effect.onExit(Effect.interruptible(start(flight)), (exit) =>
              Effect.suspend(() => {
                // Leave the map first, so a caller arriving after completion hits the cache or starts anew.
                if (flights.get(key) === flight) flights.delete(key)
                // A flight is only ever interrupted by shutdown: its callers get a tagged error, not an interruption.
                return Deferred.done(
                  flight.deferred,
                  Exit.isInterrupted(exit) ? Exit.fail(new Errors.EngineClosed()) : exit
                )
              })),
            flightScope
          ),
          flight
        )
      })

    const join = <R>(key: string, start: (flight: Flight) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        Effect.uninterruptible(flightFor(key, start, 1)),
        (flight) => flight === undefined ? Effect.fail(new Errors.EngineClosed()) : Deferred.await(flight.deferred)
      )

    const spawn = <R>(key: string, start: (flight: Flight) => Effect.Effect<A, E, R>) =>
      Effect.asVoid(Effect.uninterruptible(flightFor(key, start, 0)))

    return { join, spawn, isClosed: () => closed }
  })
