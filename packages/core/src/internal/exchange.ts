/**
 * The token requests of one flight, made under the grant's lease (a refresh token, once sent, is waited for):
 * - a sent attempt runs to its answer (bounded by its own timeout) and a 2xx is stored, whatever happens to the
 *   flight meanwhile (shutdown waits for it);
 * - before every further attempt the lease is confirmed: a holder that lost it sends nothing more (fencing);
 * - an attempt whose outcome is unknown (a timeout after sending, a reset, an unreadable answer) is not re-presented
 *   unless that is known to be safe: the server says the token is still active, the grant is known not to rotate,
 *   or the server's declared reuse grace period still covers it.
 * The flight runs uninterruptibly; `interruptible` marks the only places where shutdown may stop it (waiting for a
 * permit, sleeping between attempts), before anything is sent.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Redacted from "effect/Redacted"
import * as Errors from "../RefreshError.js"
import type { Grant, TokenResponse } from "../Token.js"
import type { TokenEndpoint } from "../TokenEndpoint.js"
import type { Lease } from "../TokenStore.js"
import type { UnknownOutcome } from "./failurePolicy.js"
import { unknownOutcomeOf } from "./failurePolicy.js"
import { gaveUp } from "./refreshTelemetry.js"

/** What one flight's attempts did, for the failure policy and telemetry. @internal */
export interface Attempts {
  sent: number
  unknownOutcome: UnknownOutcome | undefined
  /** The server answered 2xx (the refresh token may be rotated, stored or not). */
  answered: boolean
}

/** Whether a refresh token whose last presentation has an unknown outcome may be presented again. @internal */
export type Representation = "resolved" | "within_grace" | "unsafe"

/** @internal */
export interface ExchangeContext {
  readonly endpoint: TokenEndpoint["Type"]
  readonly limiter: Effect.Semaphore
  readonly schedule: Schedule.Schedule<unknown, Errors.RefreshError>
  readonly lease: Lease
  readonly isClosed: () => boolean
  readonly interruptible: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly mayRepresent: (sentAt: number) => Effect.Effect<Representation>
  /** Stores the answer; runs right after it, never interrupted. */
  readonly store: (response: TokenResponse, sentAt: number) => Effect.Effect<Grant, Errors.RefreshError>
  /** Stores the new refresh token of a 2xx that was otherwise unusable: the only copy of the grant's next one. */
  readonly keepRotated: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<void, Errors.RefreshError>
}

/**
 * Runs `effect` in a fiber of its own and waits for it: interrupting the caller does not stop it, but its own
 * timeouts still do.
 *
 * @internal
 */
export const detached = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.forkDaemon(Effect.interruptible(effect)), Fiber.join)

/** @internal */
export const exchange = (
  context: ExchangeContext,
  refreshToken: Redacted.Redacted<string>,
  attempts: Attempts
): Effect.Effect<Grant, Errors.RefreshError> =>
  Effect.gen(function*() {
    const driver = yield* Schedule.driver(context.schedule)
    let lastSentAt = 0
    let lastError: Errors.RefreshError | undefined
    while (true) {
      if (context.isClosed()) return yield* new Errors.EngineClosed()
      if (lastError !== undefined && (context.lease.isLost() || !(yield* context.lease.confirm))) {
        // Another holder may be refreshing with the same token by now: stop, and report what we last saw.
        yield* Effect.logWarning("renew: lost the grant's lease between attempts; no further attempt from this holder")
        yield* gaveUp(attempts.sent, lastError._tag, "lease_lost")
        return yield* Effect.fail(lastError)
      }
      yield* context.interruptible(context.limiter.take(1))
      const sentAt = yield* Clock.currentTimeMillis
      attempts.sent++
      const answer = yield* detached(context.endpoint.refresh({ refreshToken, attempt: attempts.sent })).pipe(
        Effect.either,
        Effect.ensuring(context.limiter.release(1))
      )
      if (Either.isRight(answer)) {
        attempts.answered = true
        return yield* context.store(answer.right, sentAt)
      }
      const error = answer.left
      lastError = error
      if (error._tag === "MalformedResponse" && error.rotatedRefreshToken !== undefined) {
        // The server rotated, and we know to what: keep it, and send nothing more with the consumed token.
        attempts.answered = true
        yield* context.keepRotated(error.rotatedRefreshToken)
        attempts.answered = false
        return yield* Effect.fail(error)
      }
      const unknown = unknownOutcomeOf(error)
      if (unknown !== undefined) {
        attempts.unknownOutcome = unknown
        lastSentAt = sentAt
      }
      if (attempts.unknownOutcome !== undefined && error.retryable) {
        const representation = yield* context.mayRepresent(lastSentAt)
        if (representation === "unsafe") {
          yield* gaveUp(attempts.sent, error._tag, "unknown_outcome")
          return yield* Effect.fail(error)
        }
        if (representation === "resolved") attempts.unknownOutcome = undefined
      }
      const next = yield* context.interruptible(Effect.either(driver.next(error)))
      if (Either.isLeft(next)) return yield* Effect.fail(error)
    }
  })
