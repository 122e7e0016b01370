/**
 * The observability contract: span names, attribute keys and metrics. Backend-agnostic: they reach OpenTelemetry only
 * when the application provides a tracer and a metrics exporter (see `@renew/opentelemetry`).
 *
 * Labels are bounded values only (outcome, error tag, client id). Never a grant key, a user id or a secret.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * @since 0.1.0
 * @category span names
 */
export const SpanNames = {
  /** One per refresh, shared by every caller waiting on it. */
  refresh: "renew.refresh",
  /** One per HTTP attempt, child of `renew.refresh`. */
  attempt: "renew.refresh.attempt",
  /** Waiting for the grant's (possibly cross-process) refresh lock. */
  lockWait: "renew.lock.wait",
  /** One per batch of due grants a `RefreshScheduler` claimed; each grant's `renew.refresh` links to it. */
  schedulerBatch: "renew.scheduler.batch"
} as const

/**
 * @since 0.1.0
 * @category attributes
 */
export const Attributes = {
  /** A hash of the grant key: keys are often user ids, which must not land in traces. */
  grantKeyHash: "renew.grant.key_hash",
  clientId: "oauth.client_id",
  serverAddress: "server.address",
  /** `success`, `cached` (another writer had refreshed), `served_stale`, or the error `_tag`. */
  outcome: "renew.outcome",
  /**
   * `due` (a caller waited), `prefetch` (refresh-ahead, in the background), `scheduled` (the RefreshScheduler),
   * `forced`, or `rejected` (a resource server answered 401).
   */
  trigger: "renew.trigger",
  /** Grants in a scheduler's batch. */
  batchSize: "renew.scheduler.batch_size",
  attempts: "renew.attempts",
  waiters: "renew.single_flight.waiters",
  attempt: "renew.attempt",
  httpStatus: "http.response.status_code",
  oauthError: "oauth.error",
  errorType: "error.type",
  retryDelayMillis: "renew.retry.delay_ms",
  retryAfterMillis: "renew.retry.retry_after_ms"
} as const

/**
 * @since 0.1.0
 * @category span events
 */
export const Events = {
  /** A retry was scheduled after a failed attempt. */
  retry: "renew.retry",
  /** No further attempt: the error is terminal, or the attempt or time budget is spent. */
  giveUp: "renew.retry.give_up",
  /** A due refresh failed transiently while the current access token was still valid: served it. */
  servedStale: "renew.served_stale"
} as const

/**
 * Refreshes by outcome (`success`, `cached`, `served_stale`, or the error `_tag`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshes = Metric.counter("renew_refresh_total", {
  description: "Token refreshes by outcome",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const attemptDuration = Metric.histogram(
  "renew_refresh_attempt_duration_ms",
  MetricBoundaries.fromIterable([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]),
  "Duration of one token endpoint attempt, milliseconds"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const retries = Metric.counter("renew_refresh_retries_total", {
  description: "Retries scheduled after a failed attempt",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const lockWait = Metric.histogram(
  "renew_lock_wait_ms",
  MetricBoundaries.fromIterable([1, 5, 10, 50, 100, 500, 1000, 5000, 30000]),
  "Time spent waiting for a grant's refresh lock, milliseconds"
)

/**
 * The exposure window (DU-5): from the token endpoint's 2xx to the rotated grant being stored. A process dying inside
 * it leaves a refresh-in-flight intent for the next holder to resolve.
 *
 * @since 0.1.0
 * @category metrics
 */
export const persistLag = Metric.histogram(
  "renew_refresh_persist_lag_ms",
  MetricBoundaries.fromIterable([0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000]),
  "From the token endpoint's answer to the rotated grant being stored, milliseconds"
)

/**
 * Access tokens served from memory without any I/O.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheHits = Metric.counter("renew_token_cache_hits_total", {
  description: "Access tokens served from the in-memory cache",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const reauthRequired = Metric.counter("renew_grants_reauth_required_total", {
  description: "Grants marked as needing a new authorization",
  incremental: true
})

/**
 * A short, stable label for a value that is NOT guessable (a token): FNV-1a 64-bit over UTF-16 code units, in hex.
 * Unkeyed, so never use it for grant keys: a key is often a user id, and `user-73519` is enumerated back from its FNV
 * hash in a fraction of a second. Grant keys get `grantKeyHasher`.
 *
 * @since 0.1.0
 * @category attributes
 */
export const hashKey = (key: string): string => {
  let hash = 0xcbf29ce484222325n
  for (let i = 0; i < key.length; i++) {
    hash ^= BigInt(key.charCodeAt(i))
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return hash.toString(16).padStart(16, "0")
}

/**
 * The grant-key label of spans and log lines (`renew.grant.key_hash`): HMAC-SHA-256 of the key under `secret`, first
 * 16 hex digits. Keyed by something every replica shares and outsiders don't — `Refresher`'s `keyHashSecret`, or by
 * default a value derived from the OAuth client secret — so a grant's traces correlate across replicas while nobody
 * without the secret can enumerate user ids back from the label. A public client (no secret) should set
 * `keyHashSecret`; without it the label is keyed by the client id, which is public.
 *
 * @since 0.2.0
 * @category attributes
 */
export const grantKeyHasher = (secret: Redacted.Redacted<string>): (key: string) => string => {
  const hmacKey = Crypto.createHash("sha256").update("renew/grant-key-hash/v1\u0000").update(Redacted.value(secret))
    .digest()
  return (key) => Crypto.createHmac("sha256", hmacKey).update(key).digest("hex").slice(0, 16)
}

/**
 * Grants due and not yet claimed, as the last sweep of this replica's `RefreshScheduler` saw them.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerBacklog = Metric.gauge("renew_scheduler_backlog", {
  description: "Grants due for a scheduled refresh and not claimed yet"
})

/**
 * How overdue the oldest unclaimed grant was at the last sweep, milliseconds (0 when none is due).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerOldestOverdue = Metric.gauge("renew_scheduler_oldest_overdue_ms", {
  description: "How long the oldest due grant has waited for its scheduled refresh, milliseconds"
})

/**
 * Grants in the store's due index (alive, with a refresh token), by the last sweep.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerScheduled = Metric.gauge("renew_scheduler_scheduled_grants", {
  description: "Grants kept fresh by the scheduler"
})

/**
 * Refresh lag: from a grant's due time to its scheduled refresh ending, milliseconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerLag = Metric.histogram(
  "renew_scheduler_refresh_lag_ms",
  MetricBoundaries.fromIterable([10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000]),
  "From a grant's scheduled refresh time to the refresh ending, milliseconds"
)

/**
 * Scheduled refreshes by outcome (`success`, `cached` when someone refreshed first, or the error `_tag`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerRefreshes = Metric.counter("renew_scheduler_refresh_total", {
  description: "Scheduled refreshes of claimed grants by outcome",
  incremental: true
})

/**
 * Sweeps by how they ended: `drained` (nothing due was left), `overran` (stopped at the end of its period),
 * `paused` (the issuer is paused for the fleet).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerSweeps = Metric.counter("renew_scheduler_sweeps_total", {
  description: "Scheduler sweeps by how they ended",
  incremental: true
})
