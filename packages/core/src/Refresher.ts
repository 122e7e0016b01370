/**
 * The engine: hands out access tokens by grant key, refreshing them when due.
 *
 * - A fresh token is served from memory: no fiber, no store read, no allocation beyond the returned effect.
 * - A due token is refreshed once per key, however many callers ask. The refresh runs in its own fiber: every caller
 *   waits on it and gets its outcome (the new grant or the same typed error), and a caller that is interrupted
 *   detaches only itself.
 * - Under the grant's lock the store is read again, so a refresh another fiber or process already made is reused.
 * - The rotated grant is written (compare-and-set) before any caller sees the new access token.
 * - A transient failure while the current access token is still valid serves that token and tries again shortly.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type * as Scope from "effect/Scope"
import { FailureRateMonitor } from "./FailureRateMonitor.js"
import * as Errors from "./RefreshError.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as Telemetry from "./Telemetry.js"
import type { GrantInput } from "./Token.js"
import { Grant, grantFromInput, grantFromResponse, isExpired, refreshAt } from "./Token.js"
import { TokenEndpoint } from "./TokenEndpoint.js"
import { TokenStore } from "./TokenStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RefresherOptions {
  /** Refresh this long before expiry; never more than half the token's lifetime. Default 60 seconds. */
  readonly skew?: Duration.DurationInput | undefined
  /** Lifetime assumed for an access token whose response has no `expires_in`. Default 1 hour. */
  readonly defaultLifetime?: Duration.DurationInput | undefined
  /** The retry policy: options for the default one, or your own schedule (wrapped by `RetryPolicy.fromSchedule`). */
  readonly retry?: RetryPolicy.RetryPolicyOptions | Schedule.Schedule<unknown, Errors.RefreshError> | undefined
  /** Refreshes in flight at once across all keys, in this process. Default 16. */
  readonly maxConcurrentRefreshes?: number | undefined
  /**
   * A forced refresh (`refresh`, or a 401 through `invalidate`) of a key refreshed this recently returns the current
   * grant instead: a storm of 401s must not become a storm of refreshes. Default 10 seconds.
   */
  readonly forcedRefreshCooldown?: Duration.DurationInput | undefined
  /**
   * After a transient failure while the access token is still valid, serve it and try again after this long.
   * Default 5 seconds.
   */
  readonly staleRetryInterval?: Duration.DurationInput | undefined
  /**
   * After `InvalidClient`, refreshes of every grant fail fast with it for this long instead of sending requests that
   * cannot succeed (wrong credentials fail every grant alike). Default 30 seconds.
   */
  readonly invalidClientPause?: Duration.DurationInput | undefined
  /**
   * Read the clock once per event-loop turn on the cached path instead of on every call (reading it costs as much as
   * the rest of the path). Off by default because a `TestClock` moved within one turn would not be seen; the
   * Promise facade turns it on.
   */
  readonly coarseClock?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Refresher extends Context.Tag("@renew/core/Refresher")<Refresher, {
  /** A valid access token for the grant, refreshed first if due. */
  readonly getAccessToken: (key: string) => Effect.Effect<Redacted.Redacted<string>, Errors.RefreshError>
  /** The grant, refreshed first if due. */
  readonly getGrant: (key: string) => Effect.Effect<Grant, Errors.RefreshError>
  /** Refreshes now, whether due or not (subject to the forced-refresh cooldown). */
  readonly refresh: (key: string) => Effect.Effect<Grant, Errors.RefreshError>
  /**
   * A resource server rejected `accessToken` (HTTP 401): refresh, unless the grant already holds another access
   * token (someone refreshed meanwhile) or the cooldown applies.
   */
  readonly invalidate: (
    key: string,
    accessToken: Redacted.Redacted<string>
  ) => Effect.Effect<Grant, Errors.RefreshError>
  /** Stores a grant obtained elsewhere (e.g. the authorization-code exchange), replacing any previous one. */
  readonly setGrant: (
    key: string,
    input: GrantInput
  ) => Effect.Effect<Grant, Errors.StoreError | Errors.StaleWrite | Errors.ConfigurationError>
  readonly removeGrant: (key: string) => Effect.Effect<void, Errors.StoreError>
  /** The cached access token if it is fresh, synchronously; `undefined` otherwise. For facades with their own runtime. */
  readonly unsafeCachedAccessToken: (key: string) => Redacted.Redacted<string> | undefined
}>() {}

type Trigger =
  | { readonly _tag: "due" }
  | { readonly _tag: "forced" }
  | { readonly _tag: "rejected"; readonly accessToken: string }

interface CacheEntry {
  readonly grant: Grant
  /** When this entry stops being served from memory. */
  readonly until: number
}

/** What a flight ended as, for its span, metric and log. */
interface Outcome {
  value: string
  /** The error behind a failure or a stale serve. */
  failureTag?: string
  readonly attempts: { count: number; sentAt: number; ambiguous: boolean }
}

interface Flight {
  readonly deferred: Deferred.Deferred<Grant, Errors.RefreshError>
  waiters: number
}

// Grants handed to callers always carry an access token: one without is never usable, so it is refreshed first.
const accessTokenOf = (grant: Grant): Redacted.Redacted<string> => grant.accessToken!
// Only called once a refresh has been made with it.
const refreshTokenOf = (grant: Grant): Redacted.Redacted<string> => grant.refreshToken!

const invalidGrantOf = (grant: Grant): Errors.InvalidGrant =>
  new Errors.InvalidGrant(
    grant.reauthRequired === undefined || grant.reauthRequired === "invalid_grant"
      ? {}
      : { reason: grant.reauthRequired }
  )

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RefresherOptions = {}
): Effect.Effect<Refresher["Type"], Errors.ConfigurationError, TokenStore | TokenEndpoint | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* TokenStore
    const endpoint = yield* TokenEndpoint
    const monitor = yield* Effect.serviceOption(FailureRateMonitor)
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    const skew = options.skew ?? Duration.seconds(60)
    const defaultLifetime = options.defaultLifetime ?? Duration.hours(1)
    const cooldownMillis = Duration.toMillis(options.forcedRefreshCooldown ?? Duration.seconds(10))
    const staleRetryMillis = Duration.toMillis(options.staleRetryInterval ?? Duration.seconds(5))
    const maxConcurrent = options.maxConcurrentRefreshes ?? 16
    if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
      return yield* new Errors.ConfigurationError({
        option: "maxConcurrentRefreshes",
        detail: "must be a positive whole number"
      })
    }
    const limiter = yield* Effect.makeSemaphore(maxConcurrent)
    const policy = Schedule.isSchedule(options.retry) ? undefined : RetryPolicy.make(options.retry)
    const customSchedule = Schedule.isSchedule(options.retry)
      ? RetryPolicy.fromSchedule(options.retry as Schedule.Schedule<unknown, Errors.RefreshError>)
      : undefined
    const serverAddress = new URL(endpoint.url).hostname

    const clientPauseMillis = Duration.toMillis(options.invalidClientPause ?? Duration.seconds(30))
    let clientPause: { readonly error: Errors.RefreshError; readonly until: number } | undefined
    const recentFailures = new Map<
      string,
      { readonly error: Errors.RefreshError; readonly refreshToken: string; readonly until: number }
    >()
    const clearIntentFor = (key: string, grant: Grant, written: { version: number; intent: boolean }) =>
      written.intent
        ? store.compareAndSet(key, written.version, withoutIntent(grant)).pipe(Effect.ignore)
        : Effect.void
    const cache = new Map<string, CacheEntry>()
    const flights = new Map<string, Flight>()
    const lastForcedAt = new Map<string, number>()

    const remember = (key: string, grant: Grant, until = refreshAt(grant, skew)) => {
      cache.set(key, { grant, until })
    }

    // Cache hits are counted in a plain number and added to the metric in batches: the cached path stays a Map
    // lookup and a clock read.
    let pendingHits = 0
    const flushHits = () => {
      if (pendingHits > 0) Telemetry.cacheHits.unsafeUpdate(pendingHits, noTags)
      pendingHits = 0
    }
    yield* Effect.addFinalizer(() => Effect.sync(flushHits))

    // Per-key bookkeeping of keys that are never asked for again must not grow for ever.
    yield* Effect.sync(() => {
      const at = clock.unsafeCurrentTimeMillis()
      for (const [key, entry] of cache) if (at >= entry.until) cache.delete(key)
      for (const [key, forcedAt] of lastForcedAt) if (at - forcedAt >= cooldownMillis) lastForcedAt.delete(key)
      for (const [key, failure] of recentFailures) if (at >= failure.until) recentFailures.delete(key)
    }).pipe(Effect.repeat(Schedule.spaced(Duration.minutes(1))), Effect.delay(Duration.minutes(1)), Effect.forkScoped)

    // With `coarseClock`, the time is read once per event-loop turn: reading it costs as much as the rest of the
    // cached path. The lag is bounded by how long the loop is busy, far below the refresh margin (skew, at least
    // half the lifetime, or a second for stale-served tokens).
    let turnNow: number | undefined
    const resetTurn = () => {
      turnNow = undefined
    }
    const now = options.coarseClock === true
      ? () => {
        if (turnNow === undefined) {
          turnNow = clock.unsafeCurrentTimeMillis()
          nextTurn(resetTurn)
        }
        return turnNow
      }
      : () => clock.unsafeCurrentTimeMillis()

    const cached = (key: string): Grant | undefined => {
      const entry = cache.get(key)
      if (entry === undefined) return undefined
      if (now() >= entry.until) {
        // Past its time the entry is only a stale copy of the store: drop it, so keys not used again do not pile up.
        cache.delete(key)
        return undefined
      }
      if (++pendingHits === 64) flushHits()
      return entry.grant
    }

    const load = (key: string): Effect.Effect<Grant, Errors.RefreshError> =>
      Effect.flatMap(
        store.get(key),
        Option.match({
          onNone: (): Effect.Effect<Grant, Errors.RefreshError> => Effect.fail(new Errors.GrantNotFound()),
          onSome: (grant): Effect.Effect<Grant, Errors.RefreshError> =>
            grant.reauthRequired !== undefined
              ? Effect.fail(invalidGrantOf(grant))
              : Effect.succeed(grant)
        })
      )

    /** Whether the stored grant can be used as it is for this trigger. */
    const usable = (key: string, grant: Grant, trigger: Trigger, now: number): boolean => {
      if (grant.accessToken === undefined) return false
      switch (trigger._tag) {
        case "due":
          return now < refreshAt(grant, skew)
        case "rejected":
          if (Redacted.value(grant.accessToken) !== trigger.accessToken) return true
          return now - (lastForcedAt.get(key) ?? -Infinity) < cooldownMillis
        case "forced":
          return now - (lastForcedAt.get(key) ?? -Infinity) < cooldownMillis
      }
    }

    // Each retry decision is a metric and an event on the refresh span.
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
    const gaveUp = (attempt: number, errorTag: string, reason?: string) =>
      spanEvent(Telemetry.Events.giveUp, {
        [Telemetry.Attributes.attempt]: attempt,
        [Telemetry.Attributes.errorType]: errorTag,
        ...(reason !== undefined ? { "renew.retry.give_up_reason": reason } : {})
      })

    const retrySchedule = (): Schedule.Schedule<unknown, Errors.RefreshError> => {
      if (policy !== undefined) {
        return Schedule.tapOutput(policy, (decision) =>
          decision._tag === "Retry"
            ? retried(decision.attempt, decision.errorTag, decision.delayMillis, decision.retryAfterMillis)
            : gaveUp(decision.attempt, decision.errorTag, decision.reason))
      }
      // A schedule of the user's: the delay is read off its decision.
      let attempt = 0
      return Schedule.onDecision(customSchedule!, (error, decision) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          attempt++
          return decision._tag === "Continue"
            ? retried(attempt, error._tag, ScheduleIntervals.start(decision.intervals) - now)
            : gaveUp(attempt, error._tag)
        }))
    }

    /**
     * The token request with retries. `sentAt` is when the successful attempt was sent: `expires_in` counts from the
     * server's clock at issue time, so counting from our send time never overestimates the lifetime.
     */
    const exchange = (refreshToken: Redacted.Redacted<string>, attempts: Outcome["attempts"]) =>
      Effect.suspend(() => {
        attempts.sentAt = clock.unsafeCurrentTimeMillis()
        return endpoint.refresh({ refreshToken, attempt: ++attempts.count })
      }).pipe(
        // An attempt whose outcome is unknown may have rotated the refresh token: a later invalid_grant in this
        // flight then means our own rotation was lost.
        Effect.tapError((error) => Effect.sync(() => void (attempts.ambiguous ||= ambiguous(error)))),
        // The permit is held per attempt, not through backoff sleeps: keys waiting to retry do not starve others.
        limiter.withPermits(1),
        Effect.retry(retrySchedule())
      )

    /**
     * With introspection configured, records when a new refresh token expires, so a later `invalid_grant` can be told
     * apart: expired or revoked. Best effort: no answer leaves the expiry unknown.
     */
    const learnRefreshTokenExpiry = (grant: Grant): Effect.Effect<Grant> =>
      grant.refreshToken === undefined || grant.refreshTokenExpiresAt !== undefined
        ? Effect.succeed(grant)
        : Effect.map(
          endpoint.introspect(grant.refreshToken),
          Option.match({
            onNone: () => grant,
            onSome: (verdict) =>
              verdict.active && verdict.expiresAt !== undefined
                ? new Grant({ ...grant, refreshTokenExpiresAt: verdict.expiresAt })
                : grant
          })
        )

    /**
     * Every `invalid_grant` looks the same on the wire; a known expiry or introspection tells the reason, and whether
     * the refresh token is in fact still alive (rejected for another reason: another client's token, a policy).
     */
    const diagnose = (
      grant: Grant,
      error: Errors.InvalidGrant
    ): Effect.Effect<{ readonly error: Errors.InvalidGrant; readonly alive: boolean }> =>
      Effect.suspend(() => {
        const dead = (error: Errors.InvalidGrant) => ({ error, alive: false })
        if (error.reason !== undefined || grant.refreshToken === undefined) return Effect.succeed(dead(error))
        const knownExpiry = grant.refreshTokenExpiresAt
        if (knownExpiry !== undefined && knownExpiry <= clock.unsafeCurrentTimeMillis()) {
          return Effect.succeed(dead(withInvalidGrantReason(error, "expired")))
        }
        return Effect.map(
          endpoint.introspect(grant.refreshToken),
          Option.match({
            onNone: () => dead(error),
            onSome: (verdict) =>
              verdict.active
                ? { error: withInvalidGrantReason(error, "unknown"), alive: true }
                // Inactive before its known expiry: revoked (or consumed by a rotation elsewhere).
                : dead(withInvalidGrantReason(error, knownExpiry !== undefined ? "revoked" : "unknown"))
          })
        )
      })

    const markReauthRequired = (key: string, grant: Grant, expectedVersion: number, error: Errors.InvalidGrant) =>
      store.compareAndSet(
        key,
        expectedVersion,
        new Grant({ ...withoutIntent(grant), reauthRequired: error.reason ?? "invalid_grant" })
      ).pipe(
        Effect.zipRight(Metric.increment(Telemetry.reauthRequired)),
        // Losing this race means someone else already wrote a newer grant: nothing to mark.
        Effect.catchAll(() => Effect.void),
        Effect.ensuring(Effect.sync(() => cache.delete(key)))
      )

    /** Runs under the grant's lock with the freshly re-read grant. */
    const refreshLocked = (key: string, current: Grant, trigger: Trigger, outcome: Outcome) => {
      // A leftover intent: a holder died between sending a refresh and storing its outcome. The server may have
      // rotated the refresh token; one more try with the stored one tells (DU-4).
      const recovering = current.refreshStartedAt !== undefined
      // The version the next write must expect: `current`, or the intent record written on top of it.
      const written = { version: current.version, intent: false, answered: false }
      return Effect.gen(function*() {
        const refreshToken = current.refreshToken
        if (refreshToken === undefined) return yield* new Errors.NoRefreshToken()
        if (trigger._tag !== "due") lastForcedAt.set(key, clock.unsafeCurrentTimeMillis())
        const now = clock.unsafeCurrentTimeMillis()
        if (clientPause !== undefined && now < clientPause.until) return yield* Effect.fail(clientPause.error)
        const recent = recentFailures.get(key)
        if (recent !== undefined) {
          if (now < recent.until && recent.refreshToken === Redacted.value(refreshToken)) {
            return yield* Effect.fail(recent.error)
          }
          recentFailures.delete(key)
        }
        if (recovering) {
          yield* Effect.logWarning(
            "renew: a previous refresh of this grant has no recorded outcome (a process died mid-refresh, or its answer was lost to a timeout or reset); retrying once with the stored refresh token"
          )
        }
        if (store.durability !== "memory") {
          const intent = yield* store.compareAndSet(
            key,
            current.version,
            new Grant({ ...current, refreshStartedAt: clock.unsafeCurrentTimeMillis() })
          )
          written.version = intent.version
          written.intent = true
        }
        // Once the server has answered 2xx, the new grant must reach the store: no interruption from here on, and a
        // failed write is retried before giving up (the server has already rotated the refresh token).
        const stored = yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const response = yield* restore(exchange(refreshToken, outcome.attempts))
            const answeredAt = clock.unsafeCurrentTimeMillis()
            written.answered = true
            const answered = grantFromResponse(response, current, { now: outcome.attempts.sentAt, defaultLifetime })
            // Learning the new refresh token's expiry (introspection) is best effort: interruptible, so its timeout
            // applies, and whatever happens to it (failure, timeout, shutdown) the answer is still stored, once.
            const next = yield* restore(learnRefreshTokenExpiry(answered)).pipe(
              Effect.exit,
              Effect.map((exit) => (Exit.isSuccess(exit) ? exit.value : answered))
            )
            const stored = yield* store.compareAndSet(key, written.version, next).pipe(
              Effect.retry({
                schedule: Schedule.spaced(Duration.millis(100)),
                times: 3,
                while: (error) => error._tag === "StoreError"
              })
            )
            yield* Metric.update(Telemetry.persistLag, clock.unsafeCurrentTimeMillis() - answeredAt)
            remember(key, stored)
            outcome.value = "success"
            return stored
          })
        )
        return stored
      }).pipe(
        Effect.catchAll((error): Effect.Effect<Grant, Errors.RefreshError> => {
          if (error._tag === "StaleWrite") {
            // Someone wrote the grant meanwhile (a new authorization, another holder): use it if it serves.
            return Effect.flatMap(load(key), (grant) =>
              usable(key, grant, trigger, clock.unsafeCurrentTimeMillis())
                ? Effect.as(Effect.sync(() => remember(key, grant)), grant)
                : Effect.fail(error))
          }
          if (error._tag === "InvalidGrant") {
            const diagnosed = recovering || outcome.attempts.ambiguous
              ? Effect.succeed({ error: withInvalidGrantReason(error, "rotation_lost"), alive: false })
              : diagnose(current, error)
            return diagnosed.pipe(
              Effect.tap(({ alive, error }) =>
                // The server says the token is alive (e.g. it belongs to another client): a configuration problem,
                // not a dead grant. Keep the grant; answer from memory for a while instead of asking again.
                alive
                  ? Effect.sync(() =>
                    recentFailures.set(key, {
                      error,
                      refreshToken: Redacted.value(refreshTokenOf(current)),
                      until: clock.unsafeCurrentTimeMillis() + cooldownMillis
                    })
                  ).pipe(Effect.zipRight(clearIntentFor(key, current, written)))
                  : markReauthRequired(key, current, written.version, error)
              ),
              Effect.flatMap(({ error }) => Effect.fail(error))
            )
          }
          // The server surely did not rotate: drop the intent. After a timeout, a reset or a garbled 2xx it may
          // have, so the intent stays for the next holder to resolve.
          if (error._tag === "InvalidClient" && outcome.attempts.count > 0) {
            // Wrong credentials fail every grant of this client alike: pause the client instead of asking again.
            clientPause = { error, until: clock.unsafeCurrentTimeMillis() + clientPauseMillis }
          }
          // A 2xx whose outcome could not be stored keeps the intent too: the next holder must learn of the rotation.
          const clearIntent = ambiguous(error) || written.answered
            ? Effect.void
            : clearIntentFor(key, current, written)
          const now = clock.unsafeCurrentTimeMillis()
          // Honour a Retry-After across flights too: until then, callers get this error without a request.
          const notBefore = "retryAfterMillis" in error && error.retryAfterMillis !== undefined
            ? now + error.retryAfterMillis
            : undefined
          if (notBefore !== undefined && current.refreshToken !== undefined) {
            recentFailures.set(key, { error, refreshToken: Redacted.value(current.refreshToken), until: notBefore })
          }
          if (trigger._tag === "due" && error.retryable && !isExpired(current, now)) {
            // The token still works: serve it and try again shortly instead of failing the caller.
            remember(key, current, Math.min(current.expiresAt - 1000, Math.max(now + staleRetryMillis, notBefore ?? 0)))
            outcome.value = "served_stale"
            outcome.failureTag = error._tag
            return Effect.as(
              Effect.all([
                clearIntent,
                spanEvent(Telemetry.Events.servedStale, { [Telemetry.Attributes.errorType]: error._tag }),
                Effect.logWarning(`renew: refresh failed, serving the still-valid access token: ${error.message}`)
              ], { discard: true }),
              current
            )
          }
          return Effect.zipRight(clearIntent, Effect.fail(error))
        })
      )
    }

    const withLockTraced = <A, E, R>(
      key: string,
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | Errors.LockTimeout | Errors.StoreError, R> =>
      Effect.gen(function*() {
        const span = yield* Effect.makeSpan(Telemetry.SpanNames.lockWait, { captureStackTrace: false })
        const requestedAt = clock.unsafeCurrentTimeMillis()
        let ended = false
        const endWait = (exit: Exit.Exit<unknown, unknown>) =>
          Effect.suspend(() => {
            if (ended) return Effect.void
            ended = true
            span.end(clock.unsafeCurrentTimeNanos(), exit)
            return Metric.update(Telemetry.lockWait, clock.unsafeCurrentTimeMillis() - requestedAt)
          })
        return yield* store.withLock(key, () => Effect.zipRight(endWait(Exit.void), effect)).pipe(
          Effect.onExit((exit) => endWait(exit))
        )
      })

    /** One refresh of one key, shared by every caller that asks while it runs. */
    const runFlight = (key: string, trigger: Trigger, flight: Flight): Effect.Effect<Grant, Errors.RefreshError> => {
      const outcome: Outcome = { value: "cached", attempts: { count: 0, sentAt: 0, ambiguous: false } }
      return Effect.gen(function*(): Effect.fn.Return<Grant, Errors.RefreshError> {
        const before = yield* load(key)
        if (usable(key, before, trigger, clock.unsafeCurrentTimeMillis())) {
          remember(key, before)
          return before
        }
        return yield* withLockTraced(
          key,
          Effect.gen(function*() {
            // Someone may have refreshed while we waited for the lock: read again.
            const current = yield* load(key)
            if (usable(key, current, trigger, clock.unsafeCurrentTimeMillis())) {
              remember(key, current)
              return current
            }
            return yield* refreshLocked(key, current, trigger, outcome)
          })
        ).pipe(
          // SF-4: the holder may have stored a fresh grant while we waited; use it rather than fail.
          Effect.catchTag("LockTimeout", (timeout) =>
            Effect.flatMap(load(key), (grant) =>
              usable(key, grant, trigger, clock.unsafeCurrentTimeMillis())
                ? Effect.as(Effect.sync(() => remember(key, grant)), grant)
                : Effect.fail(timeout)))
        )
      }).pipe(
        Effect.onExit((exit) => {
          if (Exit.isFailure(exit)) {
            outcome.value = Exit.isInterrupted(exit) ? "interrupted" : failureTag(exit)
            outcome.failureTag = outcome.value
          }
          const attempts = outcome.attempts.count
          // Only refreshes that reached the token endpoint say anything about its health.
          // The monitor runs user hooks (webhooks): never inline in this finalizer, never able to change the outcome.
          const report = attempts > 0 && outcome.value !== "interrupted" && Option.isSome(monitor)
            ? Effect.asVoid(Effect.forkIn(
              Effect.interruptible(
                monitor.value.record(endpoint.clientId, outcome.value === "success" ? undefined : outcome.failureTag)
              ).pipe(Effect.catchAllCause((cause) => Effect.logWarning("renew: the failure-rate monitor failed", cause))),
              scope
            ))
            : Effect.void
          return Effect.all([
            Effect.annotateCurrentSpan({
              [Telemetry.Attributes.outcome]: outcome.value,
              [Telemetry.Attributes.attempts]: attempts,
              [Telemetry.Attributes.waiters]: flight.waiters
            }),
            Metric.increment(Metric.tagged(Telemetry.refreshes, "outcome", outcome.value)),
            logOutcome(exit, outcome.value, attempts, trigger),
            report
          ], { discard: true })
        }),
        // No stack trace: it costs an Error per refresh, and the span names the place already.
        Effect.withSpan(Telemetry.SpanNames.refresh, {
          captureStackTrace: false,
          attributes: {
            [Telemetry.Attributes.grantKeyHash]: Telemetry.hashKey(key),
            [Telemetry.Attributes.clientId]: endpoint.clientId,
            [Telemetry.Attributes.serverAddress]: serverAddress,
            [Telemetry.Attributes.trigger]: trigger._tag
          }
        }),
        Effect.annotateLogs({ [Telemetry.Attributes.grantKeyHash]: Telemetry.hashKey(key) })
      )
    }

    /** Joins the key's flight, or starts it in the engine's scope so no single caller owns it. */
    const joinFlight = (key: string, trigger: Trigger): Effect.Effect<Grant, Errors.RefreshError> =>
      Effect.flatMap(
        Effect.uninterruptible(Effect.suspend(() => {
          flushHits()
          const existing = flights.get(key)
          if (existing !== undefined) {
            existing.waiters++
            return Effect.succeed(existing)
          }
          const flight: Flight = { deferred: Deferred.unsafeMake(FiberId.none), waiters: 1 }
          flights.set(key, flight)
          // Registration and fork are atomic; the flight itself stays interruptible (timeouts, shutdown). Its completion
          // is installed outside that boundary, so even a flight interrupted before it starts completes its Deferred.
          return Effect.as(
            Effect.forkIn(
              Effect.onExit(Effect.interruptible(runFlight(key, trigger, flight)), (exit) =>
                Effect.suspend(() => {
                  // Leave the map first, so a caller arriving after completion hits the cache or starts anew.
                  if (flights.get(key) === flight) flights.delete(key)
                  return Deferred.done(flight.deferred, exit)
                })),
              scope
            ),
            flight
          )
        })),
        (flight) => Deferred.await(flight.deferred)
      )

    const due: Trigger = { _tag: "due" }
    const forced: Trigger = { _tag: "forced" }

    const getGrant = (key: string): Effect.Effect<Grant, Errors.RefreshError> =>
      Effect.suspend(() => {
        const grant = cached(key)
        return grant !== undefined ? Effect.succeed(grant) : joinFlight(key, due)
      })

    const getAccessToken = (key: string): Effect.Effect<Redacted.Redacted<string>, Errors.RefreshError> =>
      Effect.suspend(() => {
        const grant = cached(key)
        return grant !== undefined
          ? Effect.succeed(accessTokenOf(grant))
          : Effect.map(joinFlight(key, due), accessTokenOf)
      })

    const setGrant = (key: string, input: GrantInput) =>
      Effect.gen(function*() {
        const current = yield* store.get(key)
        const version = Option.match(current, { onNone: () => undefined, onSome: (grant) => grant.version })
        const grant = yield* learnRefreshTokenExpiry(
          yield* grantFromInput(input, { now: clock.unsafeCurrentTimeMillis(), defaultLifetime, version: 0 })
        )
        const written = yield* store.compareAndSet(key, version, grant)
        remember(key, written)
        lastForcedAt.delete(key)
        recentFailures.delete(key)
        return written
      }).pipe(Effect.retry({ times: 3, while: (error) => error._tag === "StaleWrite" }))

    return Refresher.of({
      getAccessToken,
      getGrant,
      refresh: (key) => joinFlight(key, forced),
      invalidate: (key, accessToken) => joinFlight(key, { _tag: "rejected", accessToken: Redacted.value(accessToken) }),
      setGrant,
      removeGrant: (key) => Effect.zipRight(store.delete(key), Effect.sync(() => void cache.delete(key))),
      unsafeCachedAccessToken: (key) => cached(key)?.accessToken
    })
  })

const failureTag = (exit: Exit.Exit<unknown, Errors.RefreshError>): string =>
  Exit.isFailure(exit)
    ? Option.match(Cause.failureOption(exit.cause), { onNone: () => "Defect", onSome: (error) => error._tag })
    : "success"

// Messages of the error family never hold a secret, so they can be logged as they are.
const logOutcome = (
  exit: Exit.Exit<Grant, Errors.RefreshError>,
  outcome: string,
  attempts: number,
  trigger: Trigger
): Effect.Effect<void> => {
  const annotations = { outcome, attempts, trigger: trigger._tag }
  if (Exit.isSuccess(exit)) {
    return outcome === "success"
      ? Effect.annotateLogs(Effect.logInfo(`renew: refreshed access token (${trigger._tag})`), annotations)
      : Effect.void
  }
  if (Exit.isInterrupted(exit)) return Effect.annotateLogs(Effect.logDebug("renew: refresh interrupted"), annotations)
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => Effect.annotateLogs(Effect.logError("renew: refresh died", exit.cause), annotations),
    // Without an attempt the failure was known before any request (a dead or missing grant): not worth a warning.
    onSome: (error) =>
      Effect.annotateLogs(
        (attempts > 0 ? Effect.logWarning : Effect.logDebug)(`renew: refresh failed with ${error._tag}: ${error.message}`),
        annotations
      )
  })
}

const withInvalidGrantReason = (
  error: Errors.InvalidGrant,
  reason: NonNullable<Errors.InvalidGrant["reason"]>
): Errors.InvalidGrant =>
  new Errors.InvalidGrant({
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.oauthError !== undefined ? { oauthError: error.oauthError } : {}),
    ...(error.errorDescription !== undefined ? { errorDescription: error.errorDescription } : {}),
    ...(error.errorUri !== undefined ? { errorUri: error.errorUri } : {}),
    reason
  })

const withoutIntent = (grant: Grant): Grant => {
  const { refreshStartedAt: _, ...rest } = grant
  return new Grant(rest)
}

// Transport failures that happen before the request can have reached the server.
const NOT_SENT = /^(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_TLS)/

/** Failures after which the server may or may not have rotated the refresh token. */
const ambiguous = (error: Errors.RefreshError): boolean =>
  error._tag === "Timeout" || error._tag === "MalformedResponse" ||
  (error._tag === "NetworkError" && !NOT_SENT.test(error.detail))

const noTags: ReadonlyArray<never> = []

// After the current event-loop turn: setImmediate on Node, a zero timeout elsewhere.
const nextTurn: (f: () => void) => void = typeof setImmediate === "function"
  ? (f) => void setImmediate(f)
  : (f) => void setTimeout(f, 0)

const spanEvent = (name: string, attributes: Record<string, unknown>) =>
  Effect.flatMap(
    Effect.option(Effect.currentSpan),
    Option.match({
      onNone: () => Effect.void,
      onSome: (span) => Effect.map(Clock.currentTimeNanos, (now) => span.event(name, now, attributes))
    })
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: RefresherOptions = {}
): Layer.Layer<Refresher, Errors.ConfigurationError, TokenStore | TokenEndpoint> =>
  Layer.scoped(Refresher, make(options))
