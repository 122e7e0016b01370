/**
 * A Promise facade for Node code that is not Effect yet. Same engine, same guarantees: single-flight refresh, typed
 * errors (a rejection IS the tagged error: `err._tag === "InvalidGrant"`), retries, telemetry. A fresh cached token
 * is returned without entering the Effect runtime. With `background`, the `RefreshScheduler` keeps every stored grant
 * fresh inside the manager's runtime; `on("reauthRequired" | "failing" | "recovered", listener)` reports a grant's
 * state changes (the engine's `RefreshEvents`).
 *
 * @since 0.1.0
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import * as ManagerEvents from "./internal/managerEvents.js"
import * as Errors from "./RefreshError.js"
import * as RefreshEvents from "./RefreshEvents.js"
import * as Refresher from "./Refresher.js"
import * as RefreshScheduler from "./RefreshScheduler.js"
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
}

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
 * The manager's events and what each listener receives. `at` (and `failingSince`) are epoch milliseconds. With a
 * shared store, each change is reported once, by the replica whose write made it.
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
  /** A valid access token, refreshed first if due. Rejects with a tagged `RefreshError`. */
  readonly getAccessToken: (key: string) => Promise<string>
  /** Refreshes now (subject to the forced-refresh cooldown). */
  readonly refresh: (key: string) => Promise<void>
  readonly removeGrant: (key: string) => Promise<void>
  /**
   * Stops the manager: the background scheduler stops, new calls reject with `EngineClosed`; refreshes already sent
   * to the server finish and are stored (bounded by the per-attempt timeout), then the store is released.
   */
  readonly dispose: () => Promise<void>
  /**
   * Calls `listener` on every such event, in the order listeners were added. A listener that throws (or returns a
   * rejected promise) is logged and changes nothing: the other listeners are still called, and the refresh that
   * reported the change is already stored. Throws `ConfigurationError` for an unknown event name.
   */
  readonly on: <K extends TokenManagerEventName>(event: K, listener: (event: TokenManagerEvents[K]) => unknown) => TokenManager
  /** As `on`, for the next such event only. */
  readonly once: <K extends TokenManagerEventName>(
    event: K,
    listener: (event: TokenManagerEvents[K]) => unknown
  ) => TokenManager
  /** Removes a listener added with `on` or `once` (the most recent registration of it, as `EventEmitter.off`). */
  readonly off: <K extends TokenManagerEventName>(event: K, listener: (event: TokenManagerEvents[K]) => unknown) => TokenManager
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
    timeout: options.timeoutMs !== undefined ? Duration.millis(options.timeoutMs) : undefined
  }
  const valid = TokenEndpoint.validateOptions(endpointOptions)
  if (Either.isLeft(valid)) throw valid.left

  const background = backgroundOptions(options.background)
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
    Layer.provide(RefreshEvents.layer(events.publish))
  )
  const layer: Layer.Layer<Refresher.Refresher, unknown> = background === undefined
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
  const runtime = ManagedRuntime.make(layer)
  if (background !== undefined) {
    // The scheduler runs without any caller: build the engine now. A failure (the store unreachable, a store without a
    // due index) is logged here, and every call rejects with it.
    void Effect.runPromiseExit(runtime.runtimeEffect).then((exit) => {
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
        Effect.runFork(Effect.logError("renew: the TokenManager's background refresh could not start", exit.cause))
      }
    })
  }
  // Resolved on first use; afterwards the cached path never enters the runtime.
  let engine: Refresher.Refresher["Type"] | undefined
  const inFlight = new Map<string, Promise<string>>()

  let disposed = false
  const run = <A>(f: (engine: Refresher.Refresher["Type"]) => Effect.Effect<A, unknown>): Promise<A> => {
    if (disposed) return Promise.reject(new Errors.EngineClosed())
    return runtime.runPromiseExit(Effect.flatMap(Refresher.Refresher, (resolved) => {
      // A call that started before dispose() must not bring the engine back.
      if (!disposed) engine = resolved
      return f(resolved)
    })).then((exit) =>
      Exit.isSuccess(exit)
        ? exit.value
        // A rejection is always a tagged error: an interruption can only come from shutting down.
        : Promise.reject(Cause.isInterruptedOnly(exit.cause) ? new Errors.EngineClosed() : Cause.squash(exit.cause))
    )
  }

  const manager: TokenManager = {
    setGrant: (key, grant) => run((engine) => Effect.asVoid(engine.setGrant(key, grant))),
    getAccessToken: (key) => {
      const hit = engine?.unsafeCachedAccessToken(key)
      if (hit !== undefined) return Promise.resolve(Redacted.value(hit))
      // Callers arriving while a token is being fetched share one promise instead of starting a fiber each.
      let pending = inFlight.get(key)
      if (pending === undefined) {
        pending = run((engine) => Effect.map(engine.getAccessToken(key), Redacted.value)).finally(() =>
          inFlight.delete(key)
        )
        inFlight.set(key, pending)
      }
      return pending
    },
    refresh: (key) => run((engine) => Effect.asVoid(engine.refresh(key))),
    removeGrant: (key) => run((engine) => engine.removeGrant(key)),
    dispose: () => {
      // Stop serving from the cache too: a disposed manager answers nothing.
      disposed = true
      engine = undefined
      return runtime.dispose()
    },
    on: (event, listener) => (events.add(event, listener, false), manager),
    once: (event, listener) => (events.add(event, listener, true), manager),
    off: (event, listener) => (events.remove(event, listener), manager)
  }
  return manager
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
