/**
 * @since 0.1.0
 */

/**
 * HttpClient middleware for calling a resource server with the grant's access token: it adds
 * `Authorization: Bearer …`, and when the resource server answers 401 it asks the Refresher to refresh (once, and only
 * if nobody did already) and replays the request once. A second 401 reaches the caller as an ordinary response.
 *
 * @since 0.1.0
 */
export * as BearerClient from "./BearerClient.js"

/**
 * Raises an alert when refreshes start failing: over a sliding window, per OAuth client, when the failure ratio
 * crosses a threshold with at least a minimum number of refreshes, and clears it when the ratio recovers (or the
 * window empties). The alert is a hook you provide (a webhook, a pager), a log line and a gauge.
 *
 * Provide the layer next to the Refresher; the Refresher reports every refresh that reached the token endpoint.
 *
 * @since 0.1.0
 */
export * as FailureRateMonitor from "./FailureRateMonitor.js"

/**
 * Renew's spans and metrics through an OpenTelemetry SDK the application registered globally (`NodeSDK.start()`):
 * the instrumentation scope `@renew/core`, HTTP semantic conventions on the one CLIENT span per attempt, and the
 * metric names with their units.
 *
 * @since 0.2.0
 */
export * as OpenTelemetry from "./OpenTelemetry.js"

/**
 * A provider's dialect as data: its URLs (with tenant or instance templates), auth method, rotation, lifetimes, the
 * errors it answers outside RFC 6749 and what its error codes mean, every fact with the public source it comes from.
 *
 * @since 0.3.0
 */
export * as ProviderProfile from "./ProviderProfile.js"

/**
 * The catalogue of provider profiles: `Providers.google`, `Providers.byName(name)`, `Providers.all`.
 *
 * @since 0.3.0
 */
export * as Providers from "./Providers.js"

/**
 * The tagged error family: one `_tag` per cause a user must act on differently. Every error says what happened and
 * what to do (`message`), whether retrying can help (`retryable`), and carries the server's OAuth fields when it sent
 * them. No error ever holds a token, a secret, or an object that could contain one.
 *
 * @since 0.1.0
 */
export * as RefreshError from "./RefreshError.js"

/**
 * Events on a grant's state changes only (OB-1): it needs re-authorization, it started failing, it recovered. Each is
 * reported by the engine whose store write made the change, so replicas sharing a store report each change once. No
 * event carries a token or a secret.
 *
 * @since 0.1.0
 */
export * as RefreshEvents from "./RefreshEvents.js"

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
export * as Refresher from "./Refresher.js"

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
export * as RefreshScheduler from "./RefreshScheduler.js"

/**
 * When to try a failed refresh again. Only retryable causes are retried (network, timeout, 5xx, 429); a terminal one
 * (`InvalidGrant`, `InvalidClient`, …) never is. Backoff is capped exponential with jitter, bounded in attempts and
 * in total time, and a server's `Retry-After` is never undercut.
 *
 * @since 0.1.0
 */
export * as RetryPolicy from "./RetryPolicy.js"

/**
 * The observability contract: span names, attribute keys and metrics. Backend-agnostic: they reach OpenTelemetry only
 * when the application provides a tracer and a metrics exporter (see `@renew/opentelemetry`).
 *
 * Labels are bounded values only (outcome, error tag, client id). Never a grant key, a user id or a secret.
 *
 * @since 0.1.0
 */
export * as Telemetry from "./Telemetry.js"

/**
 * Token and grant models: the RFC 6749 §5.1 token response as it arrives on the wire, the stored grant, and the
 * expiry arithmetic that decides when a grant is due for refresh.
 *
 * @since 0.1.0
 */
export * as Token from "./Token.js"

/**
 * The RFC 6749 §6 refresh request over `@effect/platform`'s HttpClient (Fetch, Node or Undici: whichever layer the
 * application provides). One call is one HTTP attempt, classified into a token response or one tagged error; retries
 * are the Refresher's job.
 *
 * @since 0.1.0
 */
export * as TokenEndpoint from "./TokenEndpoint.js"

/**
 * A Promise facade for Node code that is not Effect yet. Same engine, same guarantees: single-flight refresh, typed
 * errors (a rejection IS the tagged error: `err._tag === "InvalidGrant"`), retries, telemetry. A fresh cached token
 * is returned without entering the Effect runtime. With `background`, the `RefreshScheduler` keeps every stored grant
 * fresh inside the manager's runtime; `on("reauthRequired" | "failing" | "recovered", listener)` reports a grant's
 * state changes (the engine's `RefreshEvents`).
 *
 * @since 0.1.0
 */
export * as TokenManager from "./TokenManager.js"

/**
 * The storage port. Grants are read, written by compare-and-set on their version, deleted, and refreshed under a
 * per-grant lock that a store may back with a cross-process lease (SQLite, Redis, PostgreSQL). An in-memory layer
 * lives here.
 *
 * @since 0.1.0
 */
export * as TokenStore from "./TokenStore.js"
