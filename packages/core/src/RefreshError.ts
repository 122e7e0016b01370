/**
 * The tagged error family: one `_tag` per cause a user must act on differently. Every error says what happened and
 * what to do (`message`), whether retrying can help (`retryable`), and carries the server's OAuth fields when it sent
 * them. No error ever holds a token, a secret, or an object that could contain one.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { TypeId } from "./internal/errorTypeId.js"
import {
  type Aborted,
  ConfigurationError,
  EngineClosed,
  GrantNotFound,
  LockTimeout,
  NoRefreshToken,
  StaleWrite,
  StoreError
} from "./internal/localErrors.js"
import {
  InvalidClient,
  InvalidGrant,
  InvalidRequest,
  InvalidScope,
  MalformedResponse,
  NetworkError,
  RateLimited,
  ServerError,
  Timeout,
  UnauthorizedClient,
  UnsupportedGrantType
} from "./internal/serverErrors.js"

/**
 * `TypeId`, the brand every Renew error carries (see `isRefreshError`).
 *
 * @since 0.1.0
 */
export * from "./internal/errorTypeId.js"
/**
 * The errors raised by the engine itself: `ConfigurationError`, `EngineClosed`, `GrantNotFound`, `NoRefreshToken`,
 * `StoreError`, `LockTimeout`, `StaleWrite`.
 *
 * @since 0.1.0
 */
export * from "./internal/localErrors.js"
/**
 * The errors that come from the token endpoint's answer (or its absence): `InvalidGrant`, `InvalidClient`,
 * `UnauthorizedClient`, `InvalidScope`, `InvalidRequest`, `UnsupportedGrantType`, `RateLimited`, `ServerError`,
 * `NetworkError`, `Timeout`, `MalformedResponse`.
 *
 * @since 0.1.0
 */
export * from "./internal/serverErrors.js"

/**
 * Everything a refresh can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type RefreshError =
  | InvalidGrant
  | InvalidClient
  | UnauthorizedClient
  | InvalidScope
  | InvalidRequest
  | UnsupportedGrantType
  | RateLimited
  | ServerError
  | NetworkError
  | Timeout
  | MalformedResponse
  | NoRefreshToken
  | GrantNotFound
  | StoreError
  | LockTimeout
  | StaleWrite
  | EngineClosed

/**
 * A schema for the whole family, to encode and decode failures (the CLI prints them as JSON, stores may persist the
 * last failure).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RefreshError: Schema.Union<[
  typeof InvalidGrant,
  typeof InvalidClient,
  typeof UnauthorizedClient,
  typeof InvalidScope,
  typeof InvalidRequest,
  typeof UnsupportedGrantType,
  typeof RateLimited,
  typeof ServerError,
  typeof NetworkError,
  typeof Timeout,
  typeof MalformedResponse,
  typeof NoRefreshToken,
  typeof GrantNotFound,
  typeof StoreError,
  typeof LockTimeout,
  typeof StaleWrite,
  typeof EngineClosed
]> = Schema.Union(
  InvalidGrant,
  InvalidClient,
  UnauthorizedClient,
  InvalidScope,
  InvalidRequest,
  UnsupportedGrantType,
  RateLimited,
  ServerError,
  NetworkError,
  Timeout,
  MalformedResponse,
  NoRefreshToken,
  GrantNotFound,
  StoreError,
  LockTimeout,
  StaleWrite,
  EngineClosed
)

/**
 * Whether `u` is an error of the family: a `RefreshError`, a `ConfigurationError` (refused before any request) or
 * `Aborted` (the caller's signal; not a failure of the refresh).
 *
 * @since 0.1.0
 * @category guards
 */
export const isRefreshError = (u: unknown): u is RefreshError | ConfigurationError | Aborted =>
  Predicate.hasProperty(u, TypeId)

/**
 * Whether retrying the same request could succeed.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (error: RefreshError): boolean => error.retryable

