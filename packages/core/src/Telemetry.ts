/**
 * The observability contract: span names, attribute keys and metrics. Backend-agnostic: they reach OpenTelemetry
 * through the application's global TracerProvider and MeterProvider (the Promise facade, `OpenTelemetry.layerGlobal`)
 * or through `@renew/opentelemetry`'s exporter. Metric names and units follow OpenTelemetry's conventions: dotted
 * names, durations in seconds, the unit in the unit field.
 *
 * Labels are bounded values only (outcome, error tag, client id). Never a grant key, a user id or a secret.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as MetricBridge from "./internal/metricBridge.js"

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
  /** The token endpoint's host, without scheme or port (OpenTelemetry HTTP semantic conventions). */
  serverAddress: "server.address",
  serverPort: "server.port",
  httpMethod: "http.request.method",
  /** The token endpoint's URL; query values are replaced by `REDACTED`. */
  urlFull: "url.full",
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
  /** Callers that waited on this refresh, the one that started it included (joiners are counted, not linked). */
  waiters: "renew.single_flight.waiters",
  attempt: "renew.attempt",
  httpStatus: "http.response.status_code",
  oauthError: "oauth.error",
  errorType: "error.type",
  retryDelayMillis: "renew.retry.delay_ms",
  retryAfterMillis: "renew.retry.retry_after_ms",
  /** How a scheduler sweep ended (metric attribute of `renew.scheduler.sweeps`). */
  sweepEnded: "renew.scheduler.ended"
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
 * Refreshes by outcome (attribute `renew.outcome`: `success`, `cached`, `served_stale`, or the error `_tag`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const refreshes = MetricBridge.counter({
  name: "renew.refreshes",
  unit: "{refresh}",
  description: "Token refreshes by outcome"
})

/**
 * Duration of one token endpoint attempt, seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const attemptDuration = MetricBridge.histogram({
  name: "renew.refresh.attempt.duration",
  unit: "s",
  description: "Duration of one token endpoint attempt",
  boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const retries = MetricBridge.counter({
  name: "renew.refresh.retries",
  unit: "{retry}",
  description: "Retries scheduled after a failed attempt"
})

/**
 * Time spent waiting for a grant's refresh lock, seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockWait = MetricBridge.histogram({
  name: "renew.lock.wait.duration",
  unit: "s",
  description: "Time spent waiting for a grant's refresh lock",
  boundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]
})

/**
 * The exposure window (DU-5): from the token endpoint's 2xx to the rotated grant being stored, seconds. A process
 * dying inside it leaves a refresh-in-flight intent for the next holder to resolve.
 *
 * @since 0.1.0
 * @category metrics
 */
export const persistLag = MetricBridge.histogram({
  name: "renew.refresh.persist.duration",
  unit: "s",
  description: "From the token endpoint's answer to the rotated grant being stored",
  boundaries: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
})

/**
 * Access tokens served from memory without any I/O.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheHits = MetricBridge.counter({
  name: "renew.token.cache_hits",
  unit: "{token}",
  description: "Access tokens served from the in-memory cache"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const reauthRequired = MetricBridge.counter({
  name: "renew.grant.reauth_required",
  unit: "{grant}",
  description: "Grants marked as needing a new authorization"
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
export const schedulerBacklog = MetricBridge.gauge({
  name: "renew.scheduler.backlog",
  unit: "{grant}",
  description: "Grants due for a scheduled refresh and not claimed yet"
})

/**
 * How overdue the oldest unclaimed grant was at the last sweep, seconds (0 when none is due).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerOldestOverdue = MetricBridge.gauge({
  name: "renew.scheduler.oldest_overdue",
  unit: "s",
  description: "How long the oldest due grant has waited for its scheduled refresh"
})

/**
 * Grants in the store's due index (alive, with a refresh token), by the last sweep.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerScheduled = MetricBridge.gauge({
  name: "renew.scheduler.grants",
  unit: "{grant}",
  description: "Grants kept fresh by the scheduler"
})

/**
 * Refresh lag: from a grant's due time to its scheduled refresh ending, seconds.
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerLag = MetricBridge.histogram({
  name: "renew.scheduler.refresh_lag",
  unit: "s",
  description: "From a grant's scheduled refresh time to the refresh ending",
  boundaries: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]
})

/**
 * Scheduled refreshes by outcome (attribute `renew.outcome`: `success`, `cached` when someone refreshed first, or the
 * error `_tag`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerRefreshes = MetricBridge.counter({
  name: "renew.scheduler.refreshes",
  unit: "{refresh}",
  description: "Scheduled refreshes of claimed grants by outcome"
})

/**
 * Sweeps by how they ended (attribute `renew.scheduler.ended`): `drained` (nothing due was left), `overran` (stopped
 * at the end of its period), `paused` (the issuer is paused for the fleet).
 *
 * @since 0.1.0
 * @category metrics
 */
export const schedulerSweeps = MetricBridge.counter({
  name: "renew.scheduler.sweeps",
  unit: "{sweep}",
  description: "Scheduler sweeps by how they ended"
})
