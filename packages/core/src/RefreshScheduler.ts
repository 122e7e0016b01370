/**
 * Keeps every grant in the store fresh in the background, across a fleet of replicas sharing the store (SC-1…SC-6).
 *
 * Every `interval` each replica sweeps: it claims due grants in batches from the store's due index (one round trip
 * per batch; each due grant goes to exactly one claimer) and refreshes each through the `Refresher`, under the same
 * per-grant lock as callers, so a scheduler and a caller never both refresh a grant. Refreshes are limited per token
 * endpoint (concurrency and a token bucket, per replica); a `429` with `Retry-After` or a run of server errors pauses
 * the endpoint for the whole fleet (recorded in the store). A claimed grant whose refresh failed is claimed again
 * after `hold`. A sweep stops claiming at the end of its period.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Tracer from "effect/Tracer"
import * as RateLimiter from "./internal/rateLimiter.js"
import * as Errors from "./RefreshError.js"
import { Refresher } from "./Refresher.js"
import * as Telemetry from "./Telemetry.js"
import { TokenEndpoint } from "./TokenEndpoint.js"
import type { DueGrant } from "./TokenStore.js"
import { TokenStore } from "./TokenStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RefreshSchedulerOptions {
  /** How often each replica sweeps. Default 5 seconds. */
  readonly interval?: Duration.DurationInput | undefined
  /** Grants claimed per round trip. Default 100. */
  readonly batchSize?: number | undefined
  /**
   * A claimed grant is not claimed again for this long: the time its refresh may take, and the retry interval of a
   * grant whose scheduled refresh failed (or whose replica died). Default 2 minutes.
   */
  readonly hold?: Duration.DurationInput | undefined
  /** Scheduled refreshes in flight at once at the token endpoint, per replica. Default 8. */
  readonly maxConcurrent?: number | undefined
  /** Scheduled refreshes per second at the token endpoint, per replica (a token bucket). Default 20. */
  readonly maxPerSecond?: number | undefined
  /** Server errors in a row (5xx, timeouts, network failures) that pause the endpoint for the fleet. Default 5. */
  readonly serverErrorsBeforePause?: number | undefined
  /** How long such a run pauses the endpoint. Default 30 seconds. */
  readonly serverErrorPause?: Duration.DurationInput | undefined
  /** The longest `Retry-After` honoured as a fleet-wide pause. Default 5 minutes. */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
}

/**
 * What one sweep did.
 *
 * @since 0.1.0
 * @category models
 */
export interface SweepReport {
  /** `drained`: nothing due was left; `overran`: stopped at the end of its period; `paused`: the endpoint is paused. */
  readonly ended: "drained" | "overran" | "paused"
  readonly claimed: number
  readonly refreshed: number
  /** Claimed grants someone else had refreshed already (no request). */
  readonly alreadyFresh: number
  readonly failed: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RefreshScheduler extends Context.Tag("@renew/core/RefreshScheduler")<RefreshScheduler, {
  /** Runs one sweep now (the layer also runs one every `interval`). */
  readonly sweep: Effect.Effect<SweepReport, Errors.StoreError>
}>() {}

const positiveInteger = (option: string, value: number | undefined, fallback: number) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.fail(new Errors.ConfigurationError({ option, detail: "must be a positive whole number" }))

const millis = (option: string, value: Duration.DurationInput | undefined, fallback: number) =>
  Effect.suspend(() => {
    if (value === undefined) return Effect.succeed(fallback)
    const decoded = Duration.decodeUnknown(value)
    return Option.isSome(decoded) && Duration.isFinite(decoded.value) && Duration.toMillis(decoded.value) > 0
      ? Effect.succeed(Duration.toMillis(decoded.value))
      : Effect.fail(new Errors.ConfigurationError({ option, detail: "must be a positive finite duration" }))
  })

/** Failures that say the endpoint itself is unwell, not the grant. */
const isServerTrouble = (error: Errors.RefreshError) =>
  error._tag === "ServerError" || error._tag === "Timeout" || error._tag === "NetworkError"

/**
 * Makes a scheduler without starting its loop: `sweep` runs when called. `layer` runs it every `interval`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RefreshSchedulerOptions = {}
): Effect.Effect<RefreshScheduler["Type"], Errors.ConfigurationError, Refresher | TokenStore | TokenEndpoint> =>
  Effect.gen(function*() {
    const refresher = yield* Refresher
    const store = yield* TokenStore
    const endpoint = yield* TokenEndpoint
    const scheduling = store.scheduling
    if (scheduling === undefined) {
      return yield* new Errors.ConfigurationError({
        option: "store",
        detail: "this TokenStore has no due index (scheduling); use a store of Renew's (memory, SQLite, Redis, PostgreSQL)"
      })
    }
    const intervalMillis = yield* millis("interval", options.interval, 5_000)
    const batchSize = yield* positiveInteger("batchSize", options.batchSize, 100)
    const holdMillis = yield* millis("hold", options.hold, 120_000)
    const maxConcurrent = yield* positiveInteger("maxConcurrent", options.maxConcurrent, 8)
    const maxPerSecond = yield* positiveInteger("maxPerSecond", options.maxPerSecond, 20)
    const errorsBeforePause = yield* positiveInteger("serverErrorsBeforePause", options.serverErrorsBeforePause, 5)
    const errorPauseMillis = yield* millis("serverErrorPause", options.serverErrorPause, 30_000)
    const maxRetryAfterMillis = yield* millis("maxRetryAfter", options.maxRetryAfter, 300_000)
    const issuer = endpoint.url
    const limiter = RateLimiter.make(maxPerSecond, maxPerSecond)
    const permits = yield* Effect.makeSemaphore(maxConcurrent)
    let serverErrorsInARow = 0
    // The fleet-wide pause as last read or set; read again from the store at every sweep.
    let pausedUntil: number | undefined

    const pauseIssuer = (until: number, why: string) =>
      Effect.gen(function*() {
        if (pausedUntil !== undefined && pausedUntil >= until) return
        pausedUntil = until
        yield* scheduling.pauseIssuer(issuer, until)
        yield* Effect.logWarning(`renew: scheduled refreshes at the token endpoint pause for the fleet: ${why}`)
      }).pipe(Effect.catchAll((error) => Effect.logWarning("renew: could not record the endpoint's pause", error)))

    const refreshOne = (due: DueGrant, links: ReadonlyArray<Tracer.SpanLink>) =>
      Effect.gen(function*() {
        if (pausedUntil !== undefined && (yield* Clock.currentTimeMillis) < pausedUntil) return "skipped" as const
        yield* limiter.take
        const claimedAt = yield* Clock.currentTimeMillis
        const result = yield* Effect.either(refresher.refreshDue(due.key, { links }))
        const now = yield* Clock.currentTimeMillis
        if (result._tag === "Right") {
          serverErrorsInARow = 0
          // Issued before this refresh began: someone had refreshed it since it came due, or it was not due at all.
          const refreshed = result.right.issuedAt >= claimedAt
          yield* Metric.increment(
            Metric.tagged(Telemetry.schedulerRefreshes, Telemetry.Attributes.outcome, refreshed ? "success" : "cached")
          )
          if (refreshed) yield* Metric.update(Telemetry.schedulerLag, Math.max(0, now - due.dueAt) / 1000)
          return refreshed ? "refreshed" as const : "alreadyFresh" as const
        }
        const error = result.left
        yield* Metric.increment(Metric.tagged(Telemetry.schedulerRefreshes, Telemetry.Attributes.outcome, error._tag))
        if (error._tag === "RateLimited" && error.retryAfterMillis !== undefined) {
          yield* pauseIssuer(
            now + Math.min(error.retryAfterMillis, maxRetryAfterMillis),
            `HTTP 429 with Retry-After ${Math.round(error.retryAfterMillis / 1000)} s`
          )
        } else if (isServerTrouble(error)) {
          if (++serverErrorsInARow >= errorsBeforePause) {
            serverErrorsInARow = 0
            yield* pauseIssuer(now + errorPauseMillis, `${errorsBeforePause} server errors in a row (${error._tag})`)
          }
        } else {
          serverErrorsInARow = 0
        }
        return "failed" as const
      }).pipe(permits.withPermits(1))

    const sweep = Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const deadline = start + intervalMillis
      const counts = { claimed: 0, refreshed: 0, alreadyFresh: 0, failed: 0 }
      const report = (ended: SweepReport["ended"]): Effect.Effect<SweepReport> =>
        Effect.as(Metric.increment(Metric.tagged(Telemetry.schedulerSweeps, Telemetry.Attributes.sweepEnded, ended)), {
          ended,
          ...counts
        })
      pausedUntil = yield* scheduling.issuerPausedUntil(issuer, start)
      const backlog = yield* scheduling.backlog(start)
      yield* Metric.set(Telemetry.schedulerBacklog, backlog.due)
      yield* Metric.set(Telemetry.schedulerScheduled, backlog.scheduled)
      yield* Metric.set(
        Telemetry.schedulerOldestOverdue,
        backlog.oldestDueAt === undefined ? 0 : Math.max(0, start - backlog.oldestDueAt) / 1000
      )
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        if (pausedUntil !== undefined && now < pausedUntil) return yield* report("paused")
        if (now >= deadline) return yield* report("overran")
        const batch = yield* scheduling.claimDue({ now, limit: batchSize, holdUntil: now + holdMillis })
        if (batch.length === 0) return yield* report("drained")
        counts.claimed += batch.length
        const results = yield* Effect.flatMap(Effect.currentSpan.pipe(Effect.orDie), (span) =>
          Effect.forEach(
            batch,
            (due) => refreshOne(due, [{ _tag: "SpanLink", span, attributes: {} }]),
            { concurrency: maxConcurrent }
          )).pipe(
            Effect.withSpan(Telemetry.SpanNames.schedulerBatch, {
              captureStackTrace: false,
              attributes: { [Telemetry.Attributes.batchSize]: batch.length }
            })
          )
        for (const result of results) if (result !== "skipped") counts[result]++
      }
    })

    return RefreshScheduler.of({ sweep })
  })

/**
 * The scheduler, sweeping every `interval` for as long as the layer lives; a failed sweep (the store unreachable) is
 * logged and the next one runs on time.
 *
 * @example
 * ```ts
 * import { Refresher, RefreshScheduler, TokenEndpoint, TokenStore } from "@renew/core"
 * import { Layer } from "effect"
 *
 * const Engine = RefreshScheduler.layer({ interval: "5 seconds" }).pipe(
 *   Layer.provideMerge(Refresher.layer()),
 *   Layer.provideMerge(TokenStore.layerMemory)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: RefreshSchedulerOptions = {}
): Layer.Layer<RefreshScheduler, Errors.ConfigurationError, Refresher | TokenStore | TokenEndpoint> =>
  Layer.scoped(
    RefreshScheduler,
    Effect.gen(function*() {
      const scheduler = yield* make(options)
      const interval = Duration.millis(yield* millis("interval", options.interval, 5_000))
      yield* scheduler.sweep.pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("renew: a scheduler sweep failed", cause)),
        Effect.repeat(Schedule.spaced(interval)),
        Effect.forkScoped
      )
      return scheduler
    })
  )
