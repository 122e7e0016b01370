/**
 * The engine: hands out access tokens by grant key, refreshing them when due.
 *
 * - A fresh token is served from memory: no fiber, no store read (internal/grantCache.ts).
 * - A due token is refreshed once per key, however many callers ask, in a flight of its own (internal/singleFlight.ts).
 * - A flight reads the grant again under its lease, records a refresh-in-flight intent, and writes the rotated grant
 *   (compare-and-set) before any caller sees it (internal/refreshFlight.ts, internal/intent.ts). A sent refresh token
 *   is waited for, never abandoned, not even by shutdown (internal/exchange.ts).
 * - What a failure leads to is decided by one pure table (internal/failurePolicy.ts): retry, serve the still-valid
 *   token, pause, mark the grant dead, keep the intent.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { FailureRateMonitor } from "./FailureRateMonitor.js"
import type { Attempts } from "./internal/exchange.js"
import * as FlightObserver from "./internal/flightObserver.js"
import * as GrantCache from "./internal/grantCache.js"
import * as Intent from "./internal/intent.js"
import { learnRefreshTokenExpiry } from "./internal/diagnosis.js"
import type { FlightContext, Trigger } from "./internal/refreshFlight.js"
import { remember, runFlight, withDueTime } from "./internal/refreshFlight.js"
import * as RefreshGuards from "./internal/refreshGuards.js"
import type { Outcome } from "./internal/refreshTelemetry.js"
import { traceFlight } from "./internal/refreshTelemetry.js"
import * as SingleFlight from "./internal/singleFlight.js"
import * as Errors from "./RefreshError.js"
import * as RefreshEvents from "./RefreshEvents.js"
import * as RefresherSettings from "./internal/refresherSettings.js"
import type * as RetryPolicy from "./RetryPolicy.js"
import * as Telemetry from "./Telemetry.js"
import type { Grant, GrantInput } from "./Token.js"
import { grantFromInput } from "./Token.js"
import { TokenEndpoint } from "./TokenEndpoint.js"
import { TokenStore } from "./TokenStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RefresherOptions {
  /**
   * Refresh this long before expiry; never more than half the token's lifetime. Default 60 seconds. With
   * refresh-ahead (the default) this is the prefetch point: the first call past it starts a background refresh and
   * is answered at once with the current token.
   */
  readonly skew?: Duration.DurationInput | undefined
  /**
   * Refresh-ahead's stale point: callers wait for the refresh only once the access token is valid for less than this
   * (and never serve one valid for less). Past the prefetch point (`skew`) and before this one, every caller gets the
   * current token while one background refresh runs; a failed one is retried per the failure policy, and callers see
   * the error only from here. Default 5 seconds.
   */
  readonly minValidity?: Duration.DurationInput | undefined
  /**
   * Refresh ahead of need (default `true`). `false`: the first caller past the `skew` point waits for the refresh,
   * with everyone who joins it.
   */
  readonly refreshAhead?: boolean | undefined
  /**
   * For the `RefreshScheduler`: a grant written by this engine comes due this long before its access token expires
   * (never more than half its lifetime), a little earlier by a jitter drawn from its key, so grants issued together
   * do not come due together. Default: twice `skew`, so the scheduler refreshes before any caller would.
   */
  readonly scheduledRefreshMargin?: Duration.DurationInput | undefined
  /**
   * For the `RefreshScheduler` (SC-2): a grant not refreshed for this long comes due even if its access token lasts
   * longer, so an idle refresh token does not expire unused (Google: 6 months; Atlassian: 90 days). Off by default:
   * for some providers a refresh has side effects.
   */
  readonly keepAlive?: Duration.DurationInput | undefined
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
  /**
   * The longest server-requested pause (`Retry-After`) honoured, for the default retry policy and your own schedule
   * alike: a longer one ends the retries at once, and refreshes of the grant pause this long at most. Default 30 s.
   */
  readonly maxRetryAfter?: Duration.DurationInput | undefined
  /**
   * After a refresh failed for good (e.g. `InvalidScope`), calls on the same refresh token get the same error without
   * a request for this long (ER-3); a forced refresh, or a grant stored meanwhile, is not held back. Default 30 s.
   */
  readonly failureCooldown?: Duration.DurationInput | undefined
  /**
   * How long the server accepts a rotated refresh token again (Okta's grace period, Auth0's reuse interval). Only
   * within it is a refresh whose outcome is unknown (a timeout after sending, a broken connection) retried with the
   * same refresh token at once; otherwise the next refresh resolves it. Default 0: the server detects reuse.
   */
  readonly reuseGracePeriod?: Duration.DurationInput | undefined
  /**
   * Keys the grant-key label of spans and logs (HMAC-SHA-256), so user ids cannot be enumerated back from traces.
   * Give every replica the same value. Default: derived from the client secret (the client id for a public client).
   */
  readonly keyHashSecret?: Redacted.Redacted<string> | undefined
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
   * Refreshes the grant if its scheduled refresh time (`refreshDueAt`) has passed, else returns it as stored: what the
   * `RefreshScheduler` runs for each grant it claimed. `links` go on the refresh's span (the claiming batch).
   */
  readonly refreshDue: (
    key: string,
    options?: { readonly links?: ReadonlyArray<Tracer.SpanLink> | undefined }
  ) => Effect.Effect<Grant, Errors.RefreshError>
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
  /**
   * The cached access token if it is fresh, synchronously; `undefined` otherwise. For facades with their own runtime:
   * `prefetchParent` gives the caller's span when this call starts a background refresh (refresh-ahead), so that
   * refresh is traced under the call that started it.
   */
  readonly unsafeCachedAccessToken: (
    key: string,
    prefetchParent?: () => Tracer.AnySpan | undefined
  ) => Redacted.Redacted<string> | undefined
}>() {}

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
    const events = yield* Effect.serviceOption(RefreshEvents.RefreshEvents)
    const observer = yield* Effect.serviceOption(FlightObserver.FlightObserver)
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    const settings = yield* RefresherSettings.resolve(options, store)
    // Hits past a grant's prefetch point hand its key to the prefetcher below (synchronously: the hit may come from
    // the facade's own runtime), which starts a background flight.
    const prefetchRequests = yield* Queue.unbounded<readonly [key: string, parent: Tracer.AnySpan | undefined]>()
    const cache = GrantCache.make(clock, {
      coarse: options.coarseClock === true,
      onPrefetch: (key, parent) => void Queue.unsafeOffer(prefetchRequests, [key, parent])
    })
    const guards = RefreshGuards.make(settings.forcedCooldownMillis)
    yield* Effect.addFinalizer(() => Effect.sync(cache.flushHits))
    const flights = yield* SingleFlight.make<Grant, Errors.RefreshError>()
    const context: FlightContext = {
      store,
      endpoint,
      cache,
      guards,
      intent: Intent.make(store),
      limiter: yield* Effect.makeSemaphore(settings.maxConcurrent),
      schedule: settings.schedule,
      settings: settings.policy,
      skewMillis: settings.skewMillis,
      minValidityMillis: settings.minValidityMillis,
      refreshAhead: settings.refreshAhead,
      defaultLifetimeMillis: settings.defaultLifetimeMillis,
      reuseGraceMillis: settings.reuseGraceMillis,
      isClosed: flights.isClosed,
      unknownOutcomes: new Map(),
      rotates: new Map(),
      serverRotation: { last: undefined },
      due: settings.due,
      publish: (event) =>
        Effect.zipRight(
          logEvent(event),
          Option.match(events, {
            onNone: () => Effect.void,
            // A user's handler never holds up or fails a refresh.
            onSome: (handler) =>
              Effect.asVoid(Effect.forkIn(
                handler.publish(event).pipe(
                  Effect.catchAllCause((cause) => Effect.logWarning("renew: the RefreshEvents handler failed", cause))
                ),
                scope
              ))
          })
        )
    }
    const serverAddress = new URL(endpoint.url).hostname
    const label = options.keyHashSecret !== undefined
      ? Telemetry.grantKeyHasher(options.keyHashSecret)
      : endpoint.grantKeyLabel ?? Telemetry.grantKeyHasher(Redacted.make(`public-client:${endpoint.clientId}`))

    // Per-key bookkeeping of keys that are never asked for again must not grow for ever.
    yield* Effect.sync(() => {
      cache.sweep()
      guards.sweep(clock.unsafeCurrentTimeMillis())
    }).pipe(Effect.repeat(Schedule.spaced(Duration.minutes(1))), Effect.delay(Duration.minutes(1)), Effect.forkScoped)

    const traced = { clientId: endpoint.clientId, serverAddress, label, scope, monitor }
    /** One refresh of one key, shared by every caller that asks while it runs. */
    const flight = (key: string, trigger: Trigger) => (shared: SingleFlight.Flight) => {
      const outcome: Outcome = { value: "cached" }
      const attempts: Attempts = { sent: 0, unknownOutcome: undefined, answered: false }
      const run = traceFlight(runFlight(context, key, trigger, attempts, outcome), traced, {
        key,
        trigger: trigger._tag,
        links: trigger._tag === "scheduled" ? trigger.links : [],
        attempts,
        outcome,
        waiters: () => SingleFlight.waitersOf(shared)
      })
      return Option.isNone(observer)
        ? run
        : Effect.onExit(run, (exit) => observe(observer.value, { key, trigger: trigger._tag, attempts, outcome, exit }))
    }

    /** Tells the observer how a flight ended, off the flight's path: like an events handler, it never holds it up. */
    const observe = (
      target: FlightObserver.FlightObserver["Type"],
      ended: {
        readonly key: string
        readonly trigger: string
        readonly attempts: Attempts
        readonly outcome: Outcome
        readonly exit: Exit.Exit<Grant, Errors.RefreshError>
      }
    ) =>
      Effect.suspend(() => {
        const { exit, outcome } = ended
        const failure = Exit.isSuccess(exit)
          ? outcome.servedStaleError !== undefined ? { error: outcome.servedStaleError, servedStale: true } : undefined
          : Option.match(Cause.failureOption(exit.cause), {
            onNone: () => undefined,
            onSome: (error) => ({ error, servedStale: false })
          })
        const refreshed = Exit.isSuccess(exit) && outcome.value === "success" ? exit.value : undefined
        if (failure === undefined && refreshed === undefined) return Effect.void
        return Effect.asVoid(Effect.forkIn(
          target.ended({
            key: ended.key,
            trigger: ended.trigger,
            attempts: ended.attempts.sent,
            refreshed,
            failure,
            at: clock.unsafeCurrentTimeMillis()
          }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("renew: the refresh observer failed", cause))),
          scope
        ))
      })

    // A background refresh that failed without deciding when to ask again (a pause answered it, or the failure is
    // not one to serve through) asks again after the stale-retry interval, until the stale point; a dead grant never.
    const prefetch: Trigger = { _tag: "prefetch" }
    yield* Queue.take(prefetchRequests).pipe(
      Effect.flatMap(([key, parent]) =>
        flights.spawn(key, (shared) => {
          const background = flight(key, prefetch)(shared).pipe(
            Effect.tapError((error) =>
              Effect.sync(() => {
                if (error._tag === "InvalidGrant" || error._tag === "EngineClosed") return
                cache.rearm(key, clock.unsafeCurrentTimeMillis() + settings.policy.staleRetryMillis)
              })
            )
          )
          // Traced under the call whose hit started it, when the facade knows it.
          return parent === undefined ? background : Effect.withParentSpan(background, parent)
        })
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const joinFlight = (key: string, trigger: Trigger) =>
      Effect.suspend(() => {
        cache.flushHits()
        return flights.join(key, flight(key, trigger))
      })
    const due: Trigger = { _tag: "due" }
    const getGrant = (key: string): Effect.Effect<Grant, Errors.RefreshError> =>
      Effect.suspend(() => {
        const grant = cache.get(key)
        return grant !== undefined ? Effect.succeed(grant) : joinFlight(key, due)
      })

    const setGrant = (key: string, input: GrantInput) =>
      Effect.gen(function*() {
        const current = yield* store.get(key)
        const version = Option.match(current, { onNone: () => undefined, onSome: (grant) => grant.version })
        const built = yield* grantFromInput(input, {
          now: clock.unsafeCurrentTimeMillis(),
          defaultLifetime: endpoint.defaultLifetimeMillis ?? settings.defaultLifetimeMillis,
          version: 0
        })
        const written = yield* store.compareAndSet(
          key,
          version,
          withDueTime(context, key, yield* learnRefreshTokenExpiry(endpoint, built))
        )
        remember(context, key, written)
        guards.forget(key)
        context.unknownOutcomes.delete(key)
        context.rotates.delete(key)
        return written
      }).pipe(Effect.retry({ times: 3, while: (error) => error._tag === "StaleWrite" }))

    return Refresher.of({
      // The cached path builds one effect and nothing else.
      getAccessToken: (key) =>
        Effect.suspend(() => {
          const grant = cache.get(key)
          return grant !== undefined ? Effect.succeed(accessTokenOf(grant)) : Effect.map(joinFlight(key, due), accessTokenOf)
        }),
      getGrant,
      refresh: (key) => joinFlight(key, { _tag: "forced" }),
      refreshDue: (key, options) => joinFlight(key, { _tag: "scheduled", links: options?.links ?? [] }),
      invalidate: (key, accessToken) => joinFlight(key, { _tag: "rejected", accessToken: Redacted.value(accessToken) }),
      setGrant,
      removeGrant: (key) =>
        Effect.zipRight(store.delete(key), Effect.sync(() => (cache.delete(key), guards.forget(key)))),
      unsafeCachedAccessToken: (key, prefetchParent) =>
        flights.isClosed() ? undefined : cache.get(key, prefetchParent)?.accessToken
    })
  })

/** Every event is logged, whether or not a handler listens. */
const logEvent = (event: RefreshEvents.RefreshEvent): Effect.Effect<void> => {
  switch (event._tag) {
    case "ReauthRequired":
      return Effect.logWarning(`renew: the grant needs a new authorization (${event.reason}): ${event.message}`)
    case "Failing":
      return Effect.logWarning(`renew: the grant's refreshes are failing: ${event.message}`)
    case "Recovered":
      return Effect.logInfo("renew: the grant's refreshes succeed again")
  }
}

// Grants handed to callers always carry an access token: one without is never usable, so it is refreshed first.
const accessTokenOf = (grant: Grant): Redacted.Redacted<string> => grant.accessToken!

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: RefresherOptions = {}
): Layer.Layer<Refresher, Errors.ConfigurationError, TokenStore | TokenEndpoint> =>
  Layer.scoped(Refresher, make(options))
