/**
 * A Promise facade for Node code that is not Effect yet. Same engine, same guarantees: single-flight refresh, typed
 * errors (a rejection IS the tagged error: `err._tag === "InvalidGrant"`), retries, telemetry. A fresh cached token
 * is returned without entering the Effect runtime.
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
import * as Errors from "./RefreshError.js"
import * as Refresher from "./Refresher.js"
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
}

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
   * Stops the manager: new calls reject with `EngineClosed`; refreshes already sent to the server finish and are
   * stored (bounded by the per-attempt timeout), then the store is released.
   */
  readonly dispose: () => Promise<void>
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
 * const accessToken = await tokens.getAccessToken("user-42")
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

  const layer = Refresher.layer({
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
    coarseClock: true
  }).pipe(
    Layer.provide(TokenEndpoint.layer(endpointOptions)),
    Layer.provide(options.httpClient ?? FetchHttpClient.layer),
    Layer.provide(storeLayer(options.store))
  )
  const runtime = ManagedRuntime.make(layer)
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

  return {
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
    }
  }
}
