/**
 * One reading of the options every shared store has (lease TTL, lock wait, encryption) and of its per-call timeout,
 * with the same defaults, bounds and errors on SQLite, Redis and PostgreSQL.
 *
 * - Durations are read as whole milliseconds, rounded up (a lease is never shorter than asked).
 * - `leaseTtl`: default 30 s, from 30 ms to 24 h. It is renewed every third of itself while held.
 * - `lockWaitTimeout`: default twice the lease TTL, at most 24 h.
 * - A per-call timeout (Redis `commandTimeout`, PostgreSQL `queryTimeout`) is at most a third of the lease TTL, so a
 *   renewal ends before the lease could lapse.
 * - The waiters' longest sleep between attempts is a tenth of the TTL, between 5 and 200 ms.
 *
 * @since 0.1.0
 */
import { RefreshError, type TokenStore } from "@renew/core"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { type Cipher, type Encryption, makeCipher } from "./Cipher.js"
import { parameters } from "./Lease.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions {
  /** Lease lifetime. Default 30 seconds; renewed every third of it while a refresh runs. */
  readonly leaseTtl?: Duration.DurationInput | undefined
  /** How long to wait for another process's lease before `LockTimeout`. Default: twice the lease TTL. */
  readonly lockWaitTimeout?: Duration.DurationInput | undefined
  readonly encryption?: Encryption | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Normalized {
  readonly lease: TokenStore.LeaseParameters
  /** The longest a waiter sleeps between two attempts. */
  readonly maxPollMillis: number
  readonly cipher: Cipher | undefined
}

/** @since 0.1.0 */
export const MIN_LEASE_TTL_MILLIS = 30
/** @since 0.1.0 */
export const MAX_MILLIS = 24 * 60 * 60 * 1000

const invalid = (option: string, detail: string) => new RefreshError.ConfigurationError({ option, detail })

/**
 * `input` as whole milliseconds (rounded up), within `[min, max]`; `fallback` when absent.
 *
 * @since 0.1.0
 * @category constructors
 */
export const millis = (
  option: string,
  input: Duration.DurationInput | undefined,
  fallback: number,
  min = 0,
  max = MAX_MILLIS
): Either.Either<number, RefreshError.ConfigurationError> => {
  if (input === undefined) return Either.right(fallback)
  let value: number
  try {
    value = Math.ceil(Duration.toMillis(Duration.decode(input)))
  } catch {
    return Either.left(invalid(option, "is not a duration (e.g. \"30 seconds\", or a number of milliseconds)"))
  }
  if (!(value >= min && value <= max)) {
    return Either.left(invalid(option, `must be between ${min} ms and ${max} ms (got ${value} ms)`))
  }
  return Either.right(value)
}

/**
 * Reads the common options.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalize = (options: CommonOptions): Either.Either<Normalized, RefreshError.ConfigurationError> =>
  Either.gen(function*() {
    const ttl = yield* millis("leaseTtl", options.leaseTtl, 30_000, MIN_LEASE_TTL_MILLIS)
    const wait = yield* millis("lockWaitTimeout", options.lockWaitTimeout, Math.min(ttl * 2, MAX_MILLIS))
    const cipher = yield* makeCipher(options.encryption)
    return { lease: parameters(ttl, wait), maxPollMillis: Math.max(5, Math.min(200, Math.floor(ttl / 10))), cipher }
  })

/**
 * A per-call timeout: `fallback` (capped at a third of the lease TTL) when absent; refused above a third of it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const callTimeout = (
  option: string,
  input: Duration.DurationInput | undefined,
  fallback: number,
  lease: TokenStore.LeaseParameters
): Either.Either<number, RefreshError.ConfigurationError> => {
  const cap = Math.floor(lease.ttlMillis / 3)
  return Either.flatMap(millis(option, input, Math.min(fallback, cap), 1), (value) =>
    value > cap
      ? Either.left(invalid(
        option,
        `must be at most a third of leaseTtl (${lease.ttlMillis} ms), so a lease renewal ends before the lease can lapse`
      ))
      : Either.right(value))
}
