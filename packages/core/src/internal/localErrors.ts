/**
 * The causes found on our side (nothing to refresh with, storage, locks, shutdown, configuration). Re-exported by
 * RefreshError.ts, which is the public module.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { seconds } from "./errorText.js"
import { TypeId } from "./errorTypeId.js"

/**
 * The grant has no refresh token.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoRefreshToken extends Schema.TaggedError<NoRefreshToken>("@renew/core/NoRefreshToken")(
  "NoRefreshToken",
  {}
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return "The access token is due but the grant has no refresh token. Authorize again, asking for offline access (e.g. the offline_access scope) so the server issues a refresh token."
  }
}

/**
 * No grant is stored under the key.
 *
 * @since 0.1.0
 * @category errors
 */
export class GrantNotFound extends Schema.TaggedError<GrantNotFound>("@renew/core/GrantNotFound")("GrantNotFound", {}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return "No grant is stored under this key. Authorize first and store the grant (Refresher.setGrant / TokenManager.setGrant)."
  }
}

/**
 * The token store failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("@renew/core/StoreError")("StoreError", {
  operation: Schema.String,
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `The token store failed during ${this.operation}: ${this.detail}. Check the store's health and configuration; no grant was overwritten.`
  }
}

/**
 * Another holder kept the grant's refresh lock longer than we were willing to wait.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>("@renew/core/LockTimeout")("LockTimeout", {
  waitedMillis: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return true
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Waited ${
      seconds(this.waitedMillis)
    } for another process to finish refreshing this grant. Retry later; if it persists, look for a stuck holder of the lease.`
  }
}

/**
 * A compare-and-set write lost: the grant changed since it was read. Nothing was overwritten.
 *
 * @since 0.1.0
 * @category errors
 */
export class StaleWrite extends Schema.TaggedError<StaleWrite>("@renew/core/StaleWrite")("StaleWrite", {
  expectedVersion: Schema.optional(Schema.Number),
  actualVersion: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    const found = this.actualVersion === undefined ? "it was deleted" : `found version ${this.actualVersion}`
    return `Another writer changed this grant first (expected version ${
      this.expectedVersion ?? "none"
    }, ${found}); nothing was overwritten. Read the grant again.`
  }
}

/**
 * The engine is shutting down or has shut down (`dispose()`, or the Refresher layer's scope closed): no new refresh
 * is started. Refreshes already sent were allowed to finish and were stored.
 *
 * @since 0.2.0
 * @category errors
 */
export class EngineClosed extends Schema.TaggedError<EngineClosed>("@renew/core/EngineClosed")("EngineClosed", {}) {
  /** @since 0.2.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.2.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.2.0 */
  override get message(): string {
    return "The token engine has been shut down (dispose() or its scope closed); no new refresh is started. Create a new engine to continue."
  }
}

/**
 * The caller stopped waiting: the `AbortSignal` it passed (the Promise facade's `getAccessToken(key, { signal })`)
 * was aborted. Nothing failed, so this is not a `RefreshError`: the refresh the caller waited for goes on for the
 * other callers, and a later call gets its outcome. `cause` is the signal's `reason`; `name` is `"AbortError"`, as for
 * `fetch` and the Node APIs that take a signal, so an existing `error.name === "AbortError"` check keeps working.
 *
 * @since 0.2.0
 * @category errors
 */
export class Aborted extends Schema.TaggedError<Aborted>("@renew/core/Aborted")("Aborted", {}) {
  /** @since 0.2.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.2.0 */
  get retryable(): boolean {
    // The caller chose to stop: retrying is its decision, not a remedy.
    return false
  }
  /** @since 0.2.0 */
  override get message(): string {
    return "The caller stopped waiting for the access token (its AbortSignal was aborted); the refresh goes on for other callers. Call again if the token is still needed."
  }
  /**
   * The error for an aborted `signal`, with its `reason` as `cause`.
   *
   * @since 0.2.0
   */
  static fromSignal(signal: AbortSignal): Aborted {
    const error = new Aborted()
    // Not a schema field: the reason is the caller's own value and is never encoded.
    Object.defineProperty(error, "cause", { value: signal.reason, configurable: true, writable: true })
    return error
  }
}
// The Node convention for "the caller aborted" (fetch, timers/promises, stream.pipeline).
Object.defineProperty(Aborted.prototype, "name", { value: "AbortError", configurable: true, writable: true })

/**
 * Configuration refused before any request was made (a malformed or non-https token endpoint, a bad option).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationError
  extends Schema.TaggedError<ConfigurationError>("@renew/core/ConfigurationError")("ConfigurationError", {
    option: Schema.String,
    detail: Schema.String
  })
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get retryable(): boolean {
    return false
  }
  /** @since 0.1.0 */
  override get message(): string {
    return `Invalid configuration for ${this.option}: ${this.detail}.`
  }
}
