/**
 * A caller's own bounds on waiting for a token: a deadline and an `AbortSignal`. Only the caller's wait ends. What it
 * waits on (a single flight's outcome, or the facade's promise shared by the callers of one key) goes on for the
 * others: interrupting a flight's joiner detaches that joiner only.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Errors from "../RefreshError.js"

/** @internal */
export interface CallerLimits {
  /** Stop waiting after this long, with `Timeout` (`limit: "deadline"`). */
  readonly deadlineMillis?: number | undefined
  /** Stop waiting when it aborts, with `Aborted` (`cause`: its reason). */
  readonly signal?: AbortSignal | undefined
}

/** @internal */
export const waitWithin = <A, E>(
  wait: Effect.Effect<A, E>,
  limits: CallerLimits,
  host: string
): Effect.Effect<A, E | Errors.Timeout | Errors.Aborted> => {
  let bounded: Effect.Effect<A, E | Errors.Timeout | Errors.Aborted> = wait
  const deadline = limits.deadlineMillis
  if (deadline !== undefined) {
    bounded = Effect.timeoutFail(bounded, {
      duration: Duration.millis(deadline),
      onTimeout: () => new Errors.Timeout({ host, timeoutMillis: deadline, limit: "deadline" })
    })
  }
  const signal = limits.signal
  return signal === undefined ? bounded : Effect.raceFirst(bounded, aborted(signal))
}

const aborted = (signal: AbortSignal): Effect.Effect<never, Errors.Aborted> =>
  Effect.async<never, Errors.Aborted>((resume) => {
    const onAbort = () => resume(Effect.fail(Errors.Aborted.fromSignal(signal)))
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    return Effect.sync(() => signal.removeEventListener("abort", onAbort))
  })

/**
 * A call's `{ signal, deadlineMs }` checked (plain JavaScript gets no type check), with the manager's default deadline.
 * Throws `ConfigurationError`.
 *
 * @internal
 */
export const callerLimits = (options: unknown, defaultDeadlineMillis: number | undefined): CallerLimits => {
  if (options === undefined) return { deadlineMillis: defaultDeadlineMillis }
  if (typeof options !== "object" || options === null) {
    throw new Errors.ConfigurationError({ option: "options", detail: "must be an object: { signal, deadlineMs }" })
  }
  const { deadlineMs, signal } = options as { readonly deadlineMs?: unknown; readonly signal?: unknown }
  if (signal !== undefined && !isSignal(signal)) {
    throw new Errors.ConfigurationError({ option: "signal", detail: "must be an AbortSignal" })
  }
  return { deadlineMillis: deadlineMs === undefined ? defaultDeadlineMillis : checkDeadline(deadlineMs), signal }
}

/** A deadline in milliseconds: a positive finite number. Throws `ConfigurationError`. @internal */
export const checkDeadline = (value: unknown, option = "deadlineMs"): number => {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value
  throw new Errors.ConfigurationError({ option, detail: "must be a positive number of milliseconds" })
}

const isSignal = (value: unknown): value is AbortSignal =>
  typeof value === "object" && value !== null && typeof (value as AbortSignal).aborted === "boolean" &&
  typeof (value as AbortSignal).addEventListener === "function"
