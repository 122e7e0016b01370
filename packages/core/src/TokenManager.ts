/**
 * A Promise facade for Node code that is not Effect yet. Same engine, same guarantees: single-flight refresh, typed
 * errors (a rejection IS the tagged error: `err._tag === "InvalidGrant"`), retries, telemetry. A fresh cached token
 * is returned without entering the Effect runtime. With `background`, the `RefreshScheduler` keeps every stored grant
 * fresh inside the manager's runtime.
 *
 * What a Node library owes its host: logs go where the application says (`logger`: a level, `false`, a function, or
 * pino / winston / console; by default warnings and errors only, as JSON lines on stderr); a caller bounds its own wait
 * (`getAccessToken(key, { signal, deadlineMs })`) without stopping the refresh others wait on; events follow
 * `EventEmitter`'s `on` / `once` / `off` (`refreshed`, `failure`, `reauthRequired`, `failing`, `recovered`, `alert`);
 * and `getGrantInfo(key)` tells a grant's state without a token.
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import * as FailureRateMonitor from "./FailureRateMonitor.js"
import * as CallerWait from "./internal/callerWait.js"
import * as FlightObserver from "./internal/flightObserver.js"
import * as GrantInfoModule from "./internal/grantInfo.js"
import * as ManagerEvents from "./internal/managerEvents.js"
import * as ManagerLogger from "./internal/managerLogger.js"
import * as OtelGlobal from "./internal/otelGlobal.js"
import * as OtelLayer from "./internal/otelLayer.js"
import * as SingleFlight from "./internal/singleFlight.js"
import * as Errors from "./RefreshError.js"
import * as RefreshEvents from "./RefreshEvents.js"
import * as Refresher from "./Refresher.js"
import * as RefreshScheduler from "./RefreshScheduler.js"
import type { ProviderProfile } from "./ProviderProfile.js"
import * as Telemetry from "./Telemetry.js"
import type * as RetryPolicy from "./RetryPolicy.js"
import type { GrantInput } from "./Token.js"
import * as TokenEndpoint from "./TokenEndpoint.js"
import * as TokenStore from "./TokenStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenManagerOptions {
  /** The token endpoint URL (https, or http on loopback). */
  readonly tokenEndpoint: string
  readonly clientId: string
  readonly clientSecret?: string | Redacted.Redacted<string> | undefined
  /** Default: `client_secret_basic` with a secret, `none` without. */
  readonly authMethod?: TokenEndpoint.AuthMethod | undefined
  readonly scope?: string | undefined
  /** Extra form parameters for every refresh request. */
  readonly extraParams?: Readonly<Record<string, string>> | undefined
  /**
   * The provider (`Providers.google`, `Providers.byName("slack")`, ...): how to read its answers, and its defaults for
   * `authMethod` and the lifetime to assume without `expires_in`. `ProviderProfile.managerOptions` fills in
   * `tokenEndpoint` from its URL template.
   */
  readonly profile?: ProviderProfile | undefined
  /**
   * Refresh this many seconds before expiry (never more than half the lifetime). Default 60. With refresh-ahead, the
   * first call past this point starts a background refresh and resolves at once with the current token.
   */
  readonly skewSeconds?: number | undefined
  /** Refresh-ahead's stale point: calls wait for a refresh only when the token has less than this left. Default 5. */
  readonly minValiditySeconds?: number | undefined
  /** Refresh ahead of need (default `true`); `false` makes the first call past `skewSeconds` wait for the refresh. */
  readonly refreshAhead?: boolean | undefined
  /** Lifetime assumed when the server sends no `expires_in`, in seconds. Default 3600. */
  readonly defaultLifetimeSeconds?: number | undefined
  /** Per-attempt timeout in milliseconds. Default 10000. */
  readonly timeoutMs?: number | undefined
  readonly retry?: RetryPolicy.RetryPolicyOptions | Schedule.Schedule<unknown, Errors.RefreshError> | undefined
  /** The longest `Retry-After` honoured, in seconds (longer ones end the retries at once). Default 30. */
  readonly maxRetryAfterSeconds?: number | undefined
  /** After a refresh failed for good, calls on the same refresh token get the error without a request. Default 30. */
  readonly failureCooldownSeconds?: number | undefined
  /** How long the server accepts a rotated refresh token again (Okta, Auth0), in seconds. Default 0. */
  readonly reuseGracePeriodSeconds?: number | undefined
  /**
   * Where grants live: a SQLite file path (durable, shared by the processes of one machine; needs the
   * `@renew/store-sqlite` package), any TokenStore layer (Redis, PostgreSQL, …), or by default memory (lost on
   * restart).
   */
  readonly store?: string | Layer.Layer<TokenStore.TokenStore, unknown> | undefined
  /** The HTTP client. Default: `fetch`. */
  readonly httpClient?: Layer.Layer<HttpClient.HttpClient> | undefined
  /**
   * Keep every grant in the store fresh in the background (the `RefreshScheduler`), without waiting for a caller:
   * `true` for the defaults, or options. Off by default. With a shared store, run it in every replica: each due grant
   * is claimed by one of them per cycle. It starts when the manager is created and stops with `dispose()`.
   */
  readonly background?: boolean | BackgroundOptions | undefined
  /**
   * Spans and metrics through the OpenTelemetry SDK the application registered globally (`NodeSDK.start()`, or a
   * TracerProvider / MeterProvider registered with `@opentelemetry/api`), with the caller's active span as the parent
   * of `renew.refresh`. No SDK is started and `@opentelemetry/api` is not even loaded while none is registered.
   * Default `true`; `false` records nothing through OpenTelemetry.
   */
  readonly telemetry?: boolean | undefined
  /**
   * Where the manager's log lines go. Default `"warn"`: warnings and errors only, one JSON object per line on stderr
   * (`{"time","level","message", ...annotations, "error"?}`); nothing on success.
   *
   * - a level (`"debug"`, `"info"`, `"warn"`, `"error"`): that level and above, JSON lines on stderr;
   * - `false`: nothing;
   * - a function: called with every `LogRecord` (debug included; filter on `record.level`);
   * - an object with `debug`, `info`, `warn` and `error` methods (pino, winston, console): every record, to the method
   *   of its level, so the logger's own level filters. pino gets `(fields, message)`, its convention; any other object
   *   gets the record as one argument.
   *
   * A record never holds a token or a secret. (The Effect API logs through Effect's logger instead: configure it with
   * `Logger` layers.)
   *
   * @since 0.2.0
   */
  readonly logger?: LoggerOption | undefined
  /**
   * The longest a call to `getAccessToken` or `refresh` waits, in milliseconds, unless the call gives its own
   * `deadlineMs`. Past it the call rejects with `Timeout` (`limit: "deadline"`) and the refresh goes on for the
   * others. Default: none (a call waits for the refresh, itself bounded by `timeoutMs` per attempt and the retry
   * policy).
   *
   * @since 0.2.0
   */
  readonly deadlineMs?: number | undefined
  /**
   * The failure-rate alert behind the `alert` event (`FailureRateMonitor`): raised when at least `threshold` (0..1,
   * default 0.5) of the refreshes that reached the token endpoint in the last `windowSeconds` (default 300) failed,
   * with at least `minVolume` of them (default 10); cleared when the ratio falls back below. `false` turns it off.
   *
   * @since 0.2.0
   */
  readonly failureRateAlert?:
    | false
    | {
      readonly windowSeconds?: number | undefined
      readonly threshold?: number | undefined
      readonly minVolume?: number | undefined
    }
    | undefined
}

/**
 * A log record of the manager: `time` (ISO 8601), `level`, `message`, the engine's annotations
 * (`renew.grant.key_hash`, `trigger`, `outcome`, `attempts`, ...), `oauth.client_id`, and `error` (`{ tag, message }`)
 * when the line reports a failure. Never a token or a secret.
 *
 * @since 0.2.0
 * @category logging
 */
export type LogRecord = ManagerLogger.LogRecord

/**
 * @since 0.2.0
 * @category logging
 */
export type LogLevelName = ManagerLogger.LogLevelName

/**
 * What the `logger` option accepts.
 *
 * @since 0.2.0
 * @category logging
 */
export type LoggerOption = ManagerLogger.LoggerOption

/**
 * A call's own bounds on its wait. Leaving does not stop the refresh: the other callers still get its outcome, and a
 * later call does too.
 *
 * @since 0.2.0
 * @category models
 */
export interface CallOptions {
  /** Stop waiting when it aborts: the call rejects with `Aborted` (`name` `"AbortError"`, `cause` the reason). */
  readonly signal?: AbortSignal | undefined
  /** Stop waiting after this many milliseconds: the call rejects with `Timeout` (`limit: "deadline"`). */
  readonly deadlineMs?: number | undefined
}

/**
 * A grant's state as `getGrantInfo` reports it: `fresh`, `due` (past its refresh point), `expired` (no usable access
 * token), `failing` (its last refresh that reached the server failed) or `needs_reauth` (dead until its user
 * authorizes again).
 *
 * @since 0.2.0
 * @category models
 */
export type GrantState = GrantInfoModule.GrantState

/**
 * What `getGrantInfo` tells about a stored grant: times (epoch milliseconds), scope, state, client. Never a token.
 *
 * @since 0.2.0
 * @category models
 */
export type GrantInfo = GrantInfoModule.GrantInfo

/**
 * The `RefreshScheduler`'s options in plain units, and the two engine options that decide when a grant is due for it.
 *
 * @since 0.1.0
 * @category models
 */
export interface BackgroundOptions {
  /** How often this process sweeps the store for due grants, seconds. Default 5. */
  readonly intervalSeconds?: number | undefined
  /** Grants claimed per round trip to the store. Default 100. */
  readonly batchSize?: number | undefined
  /**
   * A claimed grant is not claimed again for this long, seconds: the time its refresh may take, and when a grant whose
   * process died mid-refresh is tried again. Default 120.
   */
  readonly holdSeconds?: number | undefined
  /** Scheduled refreshes in flight at once at the token endpoint, in this process. Default 8. */
  readonly maxConcurrent?: number | undefined
  /** Scheduled refreshes per second at the token endpoint, in this process (a token bucket). Default 20. */
  readonly maxPerSecond?: number | undefined
  /** Server errors in a row (5xx, timeouts, network) that pause the endpoint for every replica. Default 5. */
  readonly serverErrorsBeforePause?: number | undefined
  /** How long such a run pauses the endpoint, seconds. Default 30. */
  readonly serverErrorPauseSeconds?: number | undefined
  /** The longest `Retry-After` of a 429 honoured as a pause of the endpoint for every replica, seconds. Default 300. */
  readonly maxRetryAfterSeconds?: number | undefined
  /**
   * Refresh a grant that has not been refreshed for this long, seconds, even if its access token lasts longer, so an
   * idle refresh token does not expire unused (Google: 6 months; Atlassian: 90 days). Off by default. Give every
   * replica the same value: it is written with each grant.
   */
  readonly keepAliveSeconds?: number | undefined
  /**
   * A grant is due for the scheduler this long before its access token expires (at most half its lifetime), seconds.
   * Default twice `skewSeconds`, so the scheduler refreshes before any caller would have to.
   */
  readonly refreshMarginSeconds?: number | undefined
}

/**
 * A refresh of this process obtained a new access token from the server and stored it: `trigger` (why it ran:
 * `due`, `prefetch`, `scheduled`, `forced`, `rejected`), `attempts`, `expiresAt`, `scope`. One per refresh, however
 * many callers waited on it.
 *
 * @since 0.2.0
 * @category events
 */
export type RefreshedEvent = ManagerEvents.RefreshedEvent

/**
 * A refresh of this process failed: it reached the token endpoint (or the store failed it) and ended without a new
 * token. `errorTag`, `message` and `retryable` are the error's; `servedStale` says whether callers were served the
 * still-valid access token instead. Calls refused without a request (a dead grant, a pause after this failure) add
 * none.
 *
 * @since 0.2.0
 * @category events
 */
export type FailureEvent = ManagerEvents.FailureEvent

/**
 * A grant needs a new authorization: only the user can revive it (email them). `reason` says why when it is known
 * (`expired`, `revoked`, `rotation_lost`, …); `errorTag` and `message` are the error's, never a token or a secret.
 *
 * @since 0.1.0
 * @category events
 */
export type ReauthRequiredEvent = ManagerEvents.ReauthRequiredEvent

/**
 * A grant's refreshes started failing (the first failure that reached the server, after successes).
 *
 * @since 0.1.0
 * @category events
 */
export type FailingEvent = ManagerEvents.FailingEvent

/**
 * A grant's refreshes succeed again after `failing`.
 *
 * @since 0.1.0
 * @category events
 */
export type RecoveredEvent = ManagerEvents.RecoveredEvent

/**
 * The failure-rate alert of the OAuth client was `raised` or `cleared` (see the `failureRateAlert` option): counts over
 * the window, failures by `_tag`, and a message.
 *
 * @since 0.2.0
 * @category events
 */
export type AlertEvent = ManagerEvents.AlertEvent

/**
 * The manager's events and what each listener receives. Every payload is a frozen plain object with `type` and `at`
 * (epoch milliseconds); a grant's events also `key` and `clientId`. With a shared store, each state change
 * (`reauthRequired`, `failing`, `recovered`) is reported once, by the replica whose write made it; `refreshed` and
 * `failure` by the replica that ran the refresh; `alert` by each replica for its own refreshes.
 *
 * @since 0.1.0
 * @category events
 */
export type TokenManagerEvents = ManagerEvents.EventMap

/**
 * @since 0.1.0
 * @category events
 */
export type TokenManagerEventName = ManagerEvents.EventName

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenManager {
  /** Stores a grant obtained elsewhere (e.g. from the authorization-code exchange). */
  readonly setGrant: (key: string, grant: GrantInput) => Promise<void>
  /**
   * A valid access token, refreshed first if due. Rejects with a tagged `RefreshError`; with `options`, also with
   * `Timeout` (`limit: "deadline"`) or `Aborted` when the call stops waiting (the refresh goes on for the others).
   */
  readonly getAccessToken: (key: string, options?: CallOptions) => Promise<string>
  /** Refreshes now (subject to the forced-refresh cooldown). `options` bound the wait as for `getAccessToken`. */
  readonly refresh: (key: string, options?: CallOptions) => Promise<void>
  readonly removeGrant: (key: string) => Promise<void>
  /**
   * The grant's state, times and scope, read from the store (so a replica sees what another wrote); `undefined` when
   * no grant is stored under the key: asking is not a failure. Never a token. Rejects with `StoreError` or
   * `EngineClosed`.
   */
  readonly getGrantInfo: (key: string) => Promise<GrantInfo | undefined>
  /**
   * Stops the manager: the background scheduler stops, new calls reject with `EngineClosed`; refreshes already sent
   * to the server finish and are stored (bounded by the per-attempt timeout), then the store is released.
   */
  readonly dispose: () => Promise<void>
  /**
   * Calls `listener` on every such event, in the order listeners were added. A listener that throws (or returns a
   * rejected promise) is logged and changes nothing: the other listeners are still called, and the refresh that
   * reported it is already stored. Throws `ConfigurationError` for an unknown event name.
   */
  readonly on: <K extends TokenManagerEventName>(event: K, listener: (event: TokenManagerEvents[K]) => unknown) => TokenManager
  /** As `on`, for the next such event only. */
  readonly once: <K extends TokenManagerEventName>(
    event: K,
    listener: (event: TokenManagerEvents[K]) => unknown
  ) => TokenManager
  /** Removes a listener added with `on` or `once` (the most recent registration of it, as `EventEmitter.off`). */
  readonly off: <K extends TokenManagerEventName>(event: K, listener: (event: TokenManagerEvents[K]) => unknown) => TokenManager
  /** How many listeners the event has (as `EventEmitter.listenerCount`). */
  readonly listenerCount: (event: TokenManagerEventName) => number
}

// A variable specifier: core must not depend on the store package (which depends on core) at build time.
const SQLITE_STORE_PACKAGE = "@renew/store-sqlite"

interface SqliteStoreModule {
  readonly SqliteTokenStore: {
    readonly layer: (options: { readonly filename: string }) => Layer.Layer<TokenStore.TokenStore, unknown>
  }
}

const storeLayer = (
  store: TokenManagerOptions["store"]
): Layer.Layer<TokenStore.TokenStore, unknown> => {
  if (store === undefined) return TokenStore.layerMemory
  if (typeof store !== "string") return store
  return Layer.unwrapEffect(
    Effect.tryPromise({
      try: () => import(SQLITE_STORE_PACKAGE) as Promise<SqliteStoreModule>,
      catch: () =>
        new Errors.ConfigurationError({
          option: "store",
          detail: `a file path needs the SQLite store: npm install ${SQLITE_STORE_PACKAGE}`
        })
    }).pipe(Effect.map((module) => module.SqliteTokenStore.layer({ filename: store })))
  )
}

/**
 * Creates a manager. Throws `ConfigurationError` synchronously for a bad option (a malformed or non-https token
 * endpoint, a missing secret for the chosen auth method).
 *
 * @example
 * ```ts
 * import { TokenManager } from "@renew/core"
 *
 * const tokens = TokenManager.createTokenManager({
 *   tokenEndpoint: "https://auth.example.com/oauth/token",
 *   clientId: "my-app",
 *   clientSecret: process.env.CLIENT_SECRET
 * })
 * await tokens.setGrant("user-42", { accessToken, refreshToken, expiresIn: 3600 })
 * const token = await tokens.getAccessToken("user-42")
 * ```
 *
 * @example
 * ```ts
 * import { TokenManager } from "@renew/core"
 *
 * // Every grant in the store kept fresh by this process, and told when one needs the user again.
 * const tokens = TokenManager.createTokenManager({
 *   tokenEndpoint: "https://auth.example.com/oauth/token",
 *   clientId: "my-app",
 *   clientSecret: process.env.CLIENT_SECRET,
 *   store: "./data/grants.db",
 *   background: { intervalSeconds: 5, maxPerSecond: 20 }
 * })
 * tokens.on("reauthRequired", ({ key, reason }) => emailUser(key, reason))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createTokenManager = (options: TokenManagerOptions): TokenManager => {
  const seconds = (value: number | undefined) => (value === undefined ? undefined : Duration.seconds(value))
  const endpointOptions: TokenEndpoint.TokenEndpointOptions = {
    url: options.tokenEndpoint,
    clientId: options.clientId,
    clientSecret: options.clientSecret === undefined
      ? undefined
      : Redacted.isRedacted(options.clientSecret)
      ? options.clientSecret
      : Redacted.make(options.clientSecret),
    authMethod: options.authMethod,
    scope: options.scope,
    extraParams: options.extraParams,
    profile: options.profile,
    // Given explicitly, it wins over the profile's lifetime too.
    defaultLifetime: options.defaultLifetimeSeconds !== undefined ? Duration.seconds(options.defaultLifetimeSeconds) : undefined,
    timeout: options.timeoutMs !== undefined ? Duration.millis(options.timeoutMs) : undefined
  }
  const valid = TokenEndpoint.validateOptions(endpointOptions)
  if (Either.isLeft(valid)) throw valid.left

  const clientId = options.clientId
  const host = new URL(options.tokenEndpoint).host
  const background = backgroundOptions(options.background)
  const alert = alertOptions(options.failureRateAlert)
  const defaultDeadline = options.deadlineMs === undefined ? undefined : CallerWait.checkDeadline(options.deadlineMs)
  const logging = ManagerLogger.make(options.logger, { [Telemetry.Attributes.clientId]: clientId })
  const skewMillis = (options.skewSeconds ?? DEFAULT_SKEW_SECONDS) * 1000
  const events = ManagerEvents.make()

  const engineLayer = Refresher.layer({
    skew: options.skewSeconds !== undefined ? Duration.seconds(options.skewSeconds) : undefined,
    minValidity: seconds(options.minValiditySeconds),
    refreshAhead: options.refreshAhead,
    defaultLifetime: options.defaultLifetimeSeconds !== undefined
      ? Duration.seconds(options.defaultLifetimeSeconds)
      : undefined,
    retry: options.retry,
    maxRetryAfter: seconds(options.maxRetryAfterSeconds),
    failureCooldown: seconds(options.failureCooldownSeconds),
    reuseGracePeriod: seconds(options.reuseGracePeriodSeconds),
    keepAlive: seconds(background?.keepAliveSeconds),
    scheduledRefreshMargin: seconds(background?.refreshMarginSeconds),
    coarseClock: true
  }).pipe(
    // Merged, not only provided: the scheduler works on the same endpoint and store as the engine.
    Layer.provideMerge(TokenEndpoint.layer(endpointOptions).pipe(Layer.provide(options.httpClient ?? FetchHttpClient.layer))),
    Layer.provideMerge(storeLayer(options.store)),
    Layer.provide(RefreshEvents.layer((event) => events.emit(ManagerEvents.fromRefreshEvent(clientId, event)))),
    Layer.provide(Layer.succeed(FlightObserver.FlightObserver, {
      ended: (end) => {
        const payload = ManagerEvents.fromFlightEnd(clientId, end)
        return payload === undefined ? Effect.void : events.emit(payload)
      }
    })),
    Layer.provide(
      alert === undefined ? Layer.empty : FailureRateMonitor.layer({
        window: seconds(alert.windowSeconds),
        threshold: alert.threshold,
        minVolume: alert.minVolume,
        onAlert: (raised) => events.emit(ManagerEvents.fromAlert("raised", raised)),
        onClear: (cleared) => events.emit(ManagerEvents.fromAlert("cleared", cleared))
      })
    )
  )
  const layer: Layer.Layer<Refresher.Refresher | TokenStore.TokenStore, unknown> = background === undefined
    ? engineLayer
    : RefreshScheduler.layer({
      interval: seconds(background.intervalSeconds),
      batchSize: background.batchSize,
      hold: seconds(background.holdSeconds),
      maxConcurrent: background.maxConcurrent,
      maxPerSecond: background.maxPerSecond,
      serverErrorsBeforePause: background.serverErrorsBeforePause,
      serverErrorPause: seconds(background.serverErrorPauseSeconds),
      maxRetryAfter: seconds(background.maxRetryAfterSeconds)
    }).pipe(Layer.provideMerge(engineLayer))
  const telemetry = options.telemetry !== false
  // A background refresh a hit starts (refresh-ahead) is traced under the caller's span too.
  const prefetchParent = telemetry ? OtelGlobal.callerSpan : undefined
  // Provided (not merged) so the logger and the tracer are set before the engine and the fibers it forks while it is
  // built (the scheduler, refresh-ahead) start. Each call passes its caller's span explicitly (below).
  const runtime = ManagedRuntime.make(
    Layer.provide(
      layer,
      telemetry ? Layer.merge(logging.layer, OtelLayer.global({ activeContextAsParent: false })) : logging.layer
    )
  )
  if (background !== undefined) {
    // The scheduler runs without any caller: build the engine now. A failure (the store unreachable, a store without a
    // due index) is logged here, and every call rejects with it.
    void Effect.runPromiseExit(runtime.runtimeEffect).then((exit) => {
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
        logging.log("error", "renew: the TokenManager's background refresh could not start", exit.cause)
      }
    })
  }
  // Resolved on first use; afterwards the cached path never enters the runtime.
  let engine: Refresher.Refresher["Type"] | undefined
  const inFlight = new Map<string, { readonly promise: Promise<string>; readonly sharers: { count: number } }>()

  let disposed = false
  const run = <A>(
    f: (engine: Refresher.Refresher["Type"]) => Effect.Effect<A, unknown, TokenStore.TokenStore>,
    signal?: AbortSignal
  ): Promise<A> => {
    if (disposed) return Promise.reject(new Errors.EngineClosed())
    const call = Effect.flatMap(Refresher.Refresher, (resolved) => {
      // A call that started before dispose() must not bring the engine back.
      if (!disposed) engine = resolved
      return f(resolved)
    })
    // The caller's active OpenTelemetry span, read now (the runtime runs the call on its own schedule).
    const parent = telemetry ? OtelGlobal.callerSpan() : undefined
    return runtime.runPromiseExit(
      parent === undefined ? call : Effect.withParentSpan(call, parent),
      signal === undefined ? undefined : { signal }
    ).then((exit) =>
      Exit.isSuccess(exit)
        ? exit.value
        // A rejection is always a tagged error: an interruption can only come from shutting down.
        : Promise.reject(Cause.isInterruptedOnly(exit.cause) ? new Errors.EngineClosed() : Cause.squash(exit.cause))
    )
  }

  /**
   * A wait for the engine bounded by the call's options, `undefined` without any. The wait runs in a fiber of its own
   * (a flight's joiner, which detaches alone); the bounds are kept outside the manager's runtime, so they count from
   * the call even while the runtime is still being built (a store still connecting). Refused at once for bad options
   * or a signal already aborted.
   */
  const bounded = <A>(
    callOptions: CallOptions | undefined,
    wait: (engine: Refresher.Refresher["Type"]) => Effect.Effect<A, Errors.RefreshError>
  ): Promise<A> | undefined => {
    let limits: CallerWait.CallerLimits
    try {
      limits = CallerWait.callerLimits(callOptions, defaultDeadline)
    } catch (error) {
      return Promise.reject(error)
    }
    if (limits.signal?.aborted === true) return Promise.reject(Errors.Aborted.fromSignal(limits.signal))
    if (limits.deadlineMillis === undefined && limits.signal === undefined) return undefined
    const leave = new AbortController()
    const waiting = run(wait, leave.signal)
    return Effect.runPromiseExit(
      CallerWait.waitWithin(Effect.tryPromise({ try: () => waiting, catch: (error) => error }), limits, host)
    ).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      // The caller leaves: its joiner is interrupted, the refresh goes on.
      leave.abort()
      return Promise.reject(Cause.squash(exit.cause))
    })
  }

  const manager: TokenManager = {
    setGrant: (key, grant) => run((engine) => Effect.asVoid(engine.setGrant(key, grant))),
    getAccessToken: (key, callOptions) => {
      const hit = engine?.unsafeCachedAccessToken(key, prefetchParent)
      if (hit !== undefined) return Promise.resolve(Redacted.value(hit))
      const limited = bounded(callOptions, (engine) => Effect.map(engine.getAccessToken(key), Redacted.value))
      if (limited !== undefined) return limited
      // Callers arriving while a token is being fetched share one promise instead of starting a fiber each; the flight
      // counts them in `renew.single_flight.waiters`.
      const pending = inFlight.get(key)
      if (pending !== undefined) {
        pending.sharers.count++
        return pending.promise
      }
      const sharers = { count: 0 }
      const promise = run((engine) =>
        Effect.map(Effect.locally(engine.getAccessToken(key), SingleFlight.sharedBy, sharers), Redacted.value)
      ).finally(() => inFlight.delete(key))
      inFlight.set(key, { promise, sharers })
      return promise
    },
    refresh: (key, callOptions) =>
      bounded(callOptions, (engine) => Effect.asVoid(engine.refresh(key))) ??
        run((engine) => Effect.asVoid(engine.refresh(key))),
    removeGrant: (key) => run((engine) => engine.removeGrant(key)),
    getGrantInfo: (key) =>
      run(() =>
        Effect.gen(function*() {
          const stored = yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.get(key))
          if (Option.isNone(stored)) return undefined
          return GrantInfoModule.grantInfo(key, clientId, stored.value, yield* Clock.currentTimeMillis, skewMillis)
        })
      ),
    dispose: () => {
      // Stop serving from the cache too: a disposed manager answers nothing.
      disposed = true
      engine = undefined
      return runtime.dispose()
    },
    on: (event, listener) => (events.add(event, listener, false), manager),
    once: (event, listener) => (events.add(event, listener, true), manager),
    off: (event, listener) => (events.remove(event, listener), manager),
    listenerCount: (event) => events.count(event)
  }
  return manager
}

/** The Refresher's default `skew`, for `getGrantInfo`'s due point. */
const DEFAULT_SKEW_SECONDS = 60

/** `failureRateAlert` checked at once; `undefined` when off. */
const alertOptions = (value: unknown): Exclude<TokenManagerOptions["failureRateAlert"], false> | undefined => {
  if (value === false) return undefined
  if (value === undefined) return {}
  const refuse = (option: string, detail: string): never => {
    throw new Errors.ConfigurationError({ option, detail })
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refuse("failureRateAlert", "must be false or an object of options")
  }
  const record = value as Record<string, unknown>
  const keys = ["windowSeconds", "threshold", "minVolume"]
  for (const name of Object.keys(record)) {
    if (!keys.includes(name) && record[name] !== undefined) {
      refuse(`failureRateAlert.${name}`, `is not an option; the options are ${keys.join(", ")}`)
    }
  }
  const { minVolume, threshold, windowSeconds } = record
  if (windowSeconds !== undefined && !(typeof windowSeconds === "number" && Number.isFinite(windowSeconds) && windowSeconds > 0)) {
    refuse("failureRateAlert.windowSeconds", "must be a positive number of seconds")
  }
  if (threshold !== undefined && !(typeof threshold === "number" && threshold > 0 && threshold <= 1)) {
    refuse("failureRateAlert.threshold", "must be a ratio in (0, 1]")
  }
  if (minVolume !== undefined && !(typeof minVolume === "number" && Number.isInteger(minVolume) && minVolume > 0)) {
    refuse("failureRateAlert.minVolume", "must be a positive whole number")
  }
  return record as Exclude<TokenManagerOptions["failureRateAlert"], false>
}

const BACKGROUND_SECONDS = [
  "intervalSeconds",
  "holdSeconds",
  "serverErrorPauseSeconds",
  "maxRetryAfterSeconds",
  "keepAliveSeconds"
] as const
const BACKGROUND_COUNTS = ["batchSize", "maxConcurrent", "maxPerSecond", "serverErrorsBeforePause"] as const
const BACKGROUND_KEYS: ReadonlyArray<string> = [...BACKGROUND_SECONDS, ...BACKGROUND_COUNTS, "refreshMarginSeconds"]

/**
 * `background` checked at once, as the other options are (plain JavaScript gets no type check): a misspelt option
 * would otherwise be ignored without a word.
 */
const backgroundOptions = (value: unknown): BackgroundOptions | undefined => {
  if (value === undefined || value === false) return undefined
  if (value === true) return {}
  const refuse = (option: string, detail: string) => {
    throw new Errors.ConfigurationError({ option, detail })
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return refuse("background", "must be true, false or an object of options")
  }
  const record = value as Record<string, unknown>
  for (const name of Object.keys(record)) {
    if (!BACKGROUND_KEYS.includes(name) && record[name] !== undefined) {
      refuse(`background.${name}`, `is not an option; the options are ${BACKGROUND_KEYS.join(", ")}`)
    }
  }
  const isNumber = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n)
  for (const name of BACKGROUND_SECONDS) {
    const n = record[name]
    if (n !== undefined && !(isNumber(n) && n > 0)) refuse(`background.${name}`, "must be a positive number of seconds")
  }
  for (const name of BACKGROUND_COUNTS) {
    const n = record[name]
    if (n !== undefined && !(isNumber(n) && Number.isInteger(n) && n > 0)) {
      refuse(`background.${name}`, "must be a positive whole number")
    }
  }
  const margin = record.refreshMarginSeconds
  if (margin !== undefined && !(isNumber(margin) && margin >= 0)) {
    refuse("background.refreshMarginSeconds", "must be a number of seconds, 0 or more")
  }
  return record as BackgroundOptions
}
