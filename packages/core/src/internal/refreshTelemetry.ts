/**
 * What a refresh tells the world: span events for retry decisions, the lock-wait span, the flight's outcome as span
 * attributes, a metric and a log line. Messages of the error family never hold a secret, so they are logged as they are.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { FailureRateMonitor } from "../FailureRateMonitor.js"
import type * as Errors from "../RefreshError.js"
import type * as RetryPolicy from "../RetryPolicy.js"
import * as Telemetry from "../Telemetry.js"
import type { Lease, TokenStore } from "../TokenStore.js"

/** What a flight ended as, for its span, metric and log. @internal */
export interface Outcome {
  value: string
  /** The error behind a failure or a stale serve. */
  failureTag?: string
  /** The error behind a stale serve (a failure's is the flight's own). */
  servedStaleError?: Errors.RefreshError
}

/** @internal */
export const spanEvent = (name: string, attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.option(Effect.currentSpan),
    Option.match({
      onNone: () => Effect.void,
      onSome: (span) => Effect.map(Clock.currentTimeNanos, (now) => span.event(name, now, attributes))
    })
  )

const retried = (attempt: number, errorTag: string, delayMillis: number, retryAfterMillis?: number) =>
  Effect.zipRight(
    Metric.increment(Telemetry.retries),
    spanEvent(Telemetry.Events.retry, {
      [Telemetry.Attributes.attempt]: attempt,
      [Telemetry.Attributes.errorType]: errorTag,
      [Telemetry.Attributes.retryDelayMillis]: delayMillis,
      ...(retryAfterMillis !== undefined ? { [Telemetry.Attributes.retryAfterMillis]: retryAfterMillis } : {})
    })
  )

/** @internal */
export const gaveUp = (attempt: number, errorTag: string, reason?: string): Effect.Effect<void> =>
  spanEvent(Telemetry.Events.giveUp, {
    [Telemetry.Attributes.attempt]: attempt,
    [Telemetry.Attributes.errorType]: errorTag,
    ...(reason !== undefined ? { "renew.retry.give_up_reason": reason } : {})
  })

/** The retry schedule of one flight, each decision traced. @internal */
export const tracedSchedule = (
  retry:
    | { readonly _tag: "policy"; readonly schedule: Schedule.Schedule<RetryPolicy.RetryDecision, Errors.RefreshError> }
    | { readonly _tag: "custom"; readonly schedule: Schedule.Schedule<Errors.RefreshError, Errors.RefreshError> }
): Schedule.Schedule<unknown, Errors.RefreshError> => {
  if (retry._tag === "policy") {
    return Schedule.tapOutput(retry.schedule, (decision) =>
      decision._tag === "Retry"
        ? retried(decision.attempt, decision.errorTag, decision.delayMillis, decision.retryAfterMillis)
        : gaveUp(decision.attempt, decision.errorTag, decision.reason))
  }
  // A schedule of the user's: the delay is read off its decision.
  let attempt = 0
  return Schedule.onDecision(retry.schedule, (error: Errors.RefreshError, decision) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      attempt++
      return decision._tag === "Continue"
        ? retried(attempt, error._tag, ScheduleIntervals.start(decision.intervals) - now)
        : gaveUp(attempt, error._tag)
    }))
}

/** `store.withLock` with the wait as a span and a metric. @internal */
export const withLockTraced = <A, E, R>(
  store: TokenStore["Type"],
  key: string,
  body: (lease: Lease) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | Errors.LockTimeout | Errors.StoreError, R> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const span = yield* Effect.makeSpan(Telemetry.SpanNames.lockWait, { captureStackTrace: false })
    const requestedAt = clock.unsafeCurrentTimeMillis()
    let ended = false
    const endWait = (exit: Exit.Exit<unknown, unknown>) =>
      Effect.suspend(() => {
        if (ended) return Effect.void
        ended = true
        span.end(clock.unsafeCurrentTimeNanos(), exit)
        return Metric.update(Telemetry.lockWait, (clock.unsafeCurrentTimeMillis() - requestedAt) / 1000)
      })
    return yield* store.withLock(key, (lease) => Effect.zipRight(endWait(Exit.void), body(lease))).pipe(
      Effect.onExit((exit) => endWait(exit))
    )
  })

/** @internal */
export const failureTag = (exit: Exit.Exit<unknown, Errors.RefreshError>): string =>
  Exit.isFailure(exit)
    ? Option.match(Cause.failureOption(exit.cause), { onNone: () => "Defect", onSome: (error) => error._tag })
    : "success"

/** The flight's span attributes, outcome metric and log line. @internal */
export const reportFlight = (
  exit: Exit.Exit<unknown, Errors.RefreshError>,
  outcome: Outcome,
  attempts: number,
  waiters: number,
  trigger: string
): Effect.Effect<void> => {
  if (Exit.isFailure(exit)) {
    outcome.value = Exit.isInterrupted(exit) ? "interrupted" : failureTag(exit)
    outcome.failureTag = outcome.value
  }
  return Effect.all([
    Effect.annotateCurrentSpan({
      [Telemetry.Attributes.outcome]: outcome.value,
      [Telemetry.Attributes.attempts]: attempts,
      [Telemetry.Attributes.waiters]: waiters,
      // OpenTelemetry's convention for a failed operation; the span's status says ERROR.
      ...(Exit.isFailure(exit) && outcome.value !== "interrupted" ? { [Telemetry.Attributes.errorType]: outcome.value } : {})
    }),
    Metric.increment(Metric.tagged(Telemetry.refreshes, Telemetry.Attributes.outcome, outcome.value)),
    logOutcome(exit, outcome.value, attempts, trigger)
  ], { discard: true })
}

const logOutcome = (
  exit: Exit.Exit<unknown, Errors.RefreshError>,
  outcome: string,
  attempts: number,
  trigger: string
): Effect.Effect<void> => {
  const annotations = { outcome, attempts, trigger }
  if (Exit.isSuccess(exit)) {
    return outcome === "success"
      ? Effect.annotateLogs(Effect.logInfo(`renew: refreshed access token (${trigger})`), annotations)
      : Effect.void
  }
  if (Exit.isInterrupted(exit)) return Effect.annotateLogs(Effect.logDebug("renew: refresh interrupted"), annotations)
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => Effect.annotateLogs(Effect.logError("renew: refresh died", exit.cause), annotations),
    // Without an attempt the failure was known before any request (a dead or missing grant, a pause): not worth a
    // warning.
    onSome: (error) =>
      Effect.annotateLogs(
        (attempts > 0 ? Effect.logWarning : Effect.logDebug)(`renew: refresh failed with ${error._tag}: ${error.message}`),
        annotations
      )
  })
}

/** The flight's span, its outcome report, and the failure-rate monitor's record (off the flight's path). @internal */
export const traceFlight = <A>(
  flight: Effect.Effect<A, Errors.RefreshError>,
  engine: {
    readonly clientId: string
    readonly serverAddress: string
    readonly label: (key: string) => string
    readonly scope: Scope.Scope
    readonly monitor: Option.Option<FailureRateMonitor["Type"]>
  },
  run: {
    readonly key: string
    readonly trigger: string
    /** Spans this refresh serves without being their child (a scheduler's batch). */
    readonly links: ReadonlyArray<Tracer.SpanLink>
    readonly attempts: { readonly sent: number }
    readonly outcome: Outcome
    readonly waiters: () => number
  }
): Effect.Effect<A, Errors.RefreshError> => {
  const { attempts, outcome } = run
  const label = engine.label(run.key)
  return flight.pipe(
    Effect.onExit((exit) =>
      Effect.zipRight(
        reportFlight(exit, outcome, attempts.sent, run.waiters(), run.trigger),
        // Only refreshes that reached the token endpoint say anything about its health. The monitor runs user hooks
        // (webhooks): never inline in this finalizer, never able to change the outcome.
        Effect.suspend(() =>
          attempts.sent > 0 && Option.isSome(engine.monitor)
            ? Effect.asVoid(Effect.forkIn(
              Effect.interruptible(engine.monitor.value.record(
                engine.clientId,
                outcome.value === "success" ? undefined : outcome.failureTag
              )).pipe(
                Effect.catchAllCause((cause) => Effect.logWarning("renew: the failure-rate monitor failed", cause))
              ),
              engine.scope
            ))
            : Effect.void
        )
      )
    ),
    // No stack trace: it costs an Error per refresh, and the span names the place already.
    Effect.withSpan(Telemetry.SpanNames.refresh, {
      captureStackTrace: false,
      links: run.links,
      // A linked refresh (the scheduler's) is a trace of its own, not a child of whatever started it.
      root: run.links.length > 0,
      attributes: {
        [Telemetry.Attributes.grantKeyHash]: label,
        [Telemetry.Attributes.clientId]: engine.clientId,
        [Telemetry.Attributes.serverAddress]: engine.serverAddress,
        [Telemetry.Attributes.trigger]: run.trigger
      }
    }),
    Effect.annotateLogs({ [Telemetry.Attributes.grantKeyHash]: label })
  )
}
