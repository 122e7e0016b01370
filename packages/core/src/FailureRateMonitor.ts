/**
 * Raises an alert when refreshes start failing: over a sliding window, per OAuth client, when the failure ratio
 * crosses a threshold with at least a minimum number of refreshes, and clears it when the ratio recovers (or the
 * window empties). The alert is a hook you provide (a webhook, a pager), a log line and a gauge.
 *
 * Provide the layer next to the Refresher; the Refresher reports every refresh that reached the token endpoint.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as MetricBridge from "./internal/metricBridge.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface FailureRateAlert {
  readonly clientId: string
  /** Refreshes that failed in the window. */
  readonly failures: number
  /** Refreshes in the window. */
  readonly total: number
  readonly ratio: number
  /** Failures by error `_tag`, to say what is failing. */
  readonly byTag: Readonly<Record<string, number>>
  readonly windowMillis: number
  /** When it was raised or cleared (epoch millis). */
  readonly at: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FailureRateMonitorOptions {
  /** The sliding window. Default 5 minutes. */
  readonly window?: Duration.DurationInput | undefined
  /** Failure ratio (0..1) at or above which the alert is raised. Default 0.5. */
  readonly threshold?: number | undefined
  /** Fewer refreshes than this in the window never raise the alert. Default 10. */
  readonly minVolume?: number | undefined
  /** How often the window is re-evaluated without new refreshes, so an alert clears when traffic stops. Default 10 s. */
  readonly evaluateEvery?: Duration.DurationInput | undefined
  readonly onAlert?: ((alert: FailureRateAlert) => Effect.Effect<void>) | undefined
  readonly onClear?: ((alert: FailureRateAlert) => Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class FailureRateMonitor extends Context.Tag("@renew/core/FailureRateMonitor")<FailureRateMonitor, {
  /** Records the end of one refresh that reached the token endpoint: `undefined` for success, else the error tag. */
  readonly record: (clientId: string, failureTag: string | undefined) => Effect.Effect<void>
  /** The alert currently raised for the client, if any. */
  readonly current: (clientId: string) => Effect.Effect<FailureRateAlert | undefined>
}>() {}

/**
 * 1 while a client's failure-rate alert is raised, 0 otherwise. Labelled by OAuth client id (a bounded set).
 *
 * @since 0.1.0
 * @category metrics
 */
export const alertGauge = MetricBridge.gauge({
  name: "renew.failure_rate.alert",
  unit: "1",
  description: "1 while the refresh failure-rate alert is raised for an OAuth client"
})

// A user hook that fails or dies is logged; it never breaks the monitor.
const hook = (
  f: ((alert: FailureRateAlert) => Effect.Effect<void>) | undefined,
  alert: FailureRateAlert
): Effect.Effect<void> =>
  f === undefined
    ? Effect.void
    : Effect.suspend(() => f(alert)).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("renew: a failure-rate alert hook failed", cause))
    )

interface Sample {
  readonly at: number
  readonly failureTag: string | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: FailureRateMonitorOptions = {}
): Effect.Effect<FailureRateMonitor["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const windowMillis = Duration.toMillis(options.window ?? Duration.minutes(5))
    const threshold = options.threshold ?? 0.5
    const minVolume = options.minVolume ?? 10
    const clock = yield* Effect.clock
    const samples = new Map<string, Array<Sample>>()
    const raised = new Map<string, FailureRateAlert>()

    const summarize = (clientId: string, now: number): FailureRateAlert => {
      const kept = (samples.get(clientId) ?? []).filter((sample) => sample.at > now - windowMillis)
      samples.set(clientId, kept)
      const byTag: Record<string, number> = {}
      let failures = 0
      for (const sample of kept) {
        if (sample.failureTag === undefined) continue
        failures++
        byTag[sample.failureTag] = (byTag[sample.failureTag] ?? 0) + 1
      }
      const total = kept.length
      return { clientId, failures, total, ratio: total === 0 ? 0 : failures / total, byTag, windowMillis, at: now }
    }

    const describe = (alert: FailureRateAlert) =>
      `${alert.failures} of ${alert.total} refreshes failed in the last ${Duration.format(alert.windowMillis)} (${
        Object.entries(alert.byTag).map(([tag, n]) => `${tag}: ${n}`).join(", ")
      })`

    const evaluate = (clientId: string) =>
      Effect.suspend(() => {
        const summary = summarize(clientId, clock.unsafeCurrentTimeMillis())
        const gauge = alertGauge.pipe(Metric.tagged("oauth.client_id", clientId))
        if (!raised.has(clientId) && summary.total >= minVolume && summary.ratio >= threshold) {
          raised.set(clientId, summary)
          return Effect.all([
            Effect.logError(`renew: failure-rate alert raised for OAuth client ${clientId}: ${describe(summary)}`),
            Metric.set(gauge, 1),
            hook(options.onAlert, summary)
          ], { discard: true })
        }
        if (raised.has(clientId) && summary.ratio < threshold) {
          raised.delete(clientId)
          return Effect.all([
            Effect.logInfo(`renew: failure-rate alert cleared for OAuth client ${clientId}: ${describe(summary)}`),
            Metric.set(gauge, 0),
            hook(options.onClear, summary)
          ], { discard: true })
        }
        return Effect.void
      })

    // Re-evaluate on a timer too, so an alert clears once failures age out even if no refresh happens.
    yield* Effect.suspend(() => Effect.forEach([...raised.keys()], evaluate))
      .pipe(
        Effect.repeat(Schedule.spaced(options.evaluateEvery ?? Duration.seconds(10))),
        Effect.forkScoped
      )

    return FailureRateMonitor.of({
      // The decision is synchronous (no lock needed); only the hooks run afterwards.
      record: (clientId, failureTag) =>
        Effect.suspend(() => {
          const list = samples.get(clientId) ?? []
          list.push({ at: clock.unsafeCurrentTimeMillis(), failureTag })
          samples.set(clientId, list)
          return evaluate(clientId)
        }),
      current: (clientId) => Effect.sync(() => raised.get(clientId))
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: FailureRateMonitorOptions = {}): Layer.Layer<FailureRateMonitor> =>
  Layer.scoped(FailureRateMonitor, make(options))
