/**
 * One refresh of one grant, as the single flight runs it: read the grant, stop if a guard says so, take the grant's
 * lease, read again, record the intent, exchange the refresh token, and on failure carry out the failure policy's
 * decision. The flight is uninterruptible except while it waits (see exchange.ts): shutdown never abandons a sent
 * refresh token.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import type * as Tracer from "effect/Tracer"
import type { RefreshEvent } from "../RefreshEvents.js"
import * as Errors from "../RefreshError.js"
import * as Telemetry from "../Telemetry.js"
import { Grant, grantFromResponse, refreshAt } from "../Token.js"
import type { TokenEndpoint } from "../TokenEndpoint.js"
import type { Lease, TokenStore } from "../TokenStore.js"
import { dueAtOf } from "../TokenStore.js"
import type { DuePolicy } from "./duePolicy.js"
import { refreshDueAt } from "./duePolicy.js"
import { isActive, learnRefreshTokenExpiry, verdictOn } from "./diagnosis.js"
import type { Attempts, Representation } from "./exchange.js"
import { detached, exchange } from "./exchange.js"
import type { PolicySettings, UnknownOutcome } from "./failurePolicy.js"
import { decide, needsVerdict, rereadsStore } from "./failurePolicy.js"
import type { GrantCache } from "./grantCache.js"
import type * as Intent from "./intent.js"
import { withoutIntent } from "./intent.js"
import type { RefreshGuards } from "./refreshGuards.js"
import type { Outcome } from "./refreshTelemetry.js"
import { spanEvent, withLockTraced } from "./refreshTelemetry.js"

/** @internal */
export type Trigger =
  | { readonly _tag: "due" }
  /** A background refresh started by a hit past the prefetch point: nobody waits on it. */
  | { readonly _tag: "prefetch" }
  /** The RefreshScheduler's refresh of a claimed grant; the span links to the claiming batch. */
  | { readonly _tag: "scheduled"; readonly links: ReadonlyArray<Tracer.SpanLink> }
  | { readonly _tag: "forced" }
  | { readonly _tag: "rejected"; readonly accessToken: string }

/** Everything a flight needs from its engine. @internal */
export interface FlightContext {
  readonly store: TokenStore["Type"]
  readonly endpoint: TokenEndpoint["Type"]
  readonly cache: GrantCache
  readonly guards: RefreshGuards
  readonly intent: ReturnType<typeof Intent.make>
  readonly limiter: Effect.Semaphore
  readonly schedule: Schedule.Schedule<unknown, Errors.RefreshError>
  readonly settings: PolicySettings
  readonly skewMillis: number
  /** Refresh-ahead's stale point, before expiry (0 with refresh-ahead off). */
  readonly minValidityMillis: number
  readonly refreshAhead: boolean
  readonly defaultLifetimeMillis: number
  readonly reuseGraceMillis: number
  readonly isClosed: () => boolean
  /** Per key: why the last refresh that kept its intent has no known outcome (for the recovery's message). */
  readonly unknownOutcomes: Map<string, UnknownOutcome>
  /** Per key: whether the server rotated the refresh token on the last refresh (learned, never assumed). */
  readonly rotates: Map<string, boolean>
  /**
   * Whether the server rotated on the last refresh of any grant: rotation is a setting of the server or of the OAuth
   * client, so a grant this engine has not refreshed yet is judged by it.
   */
  readonly serverRotation: { last: boolean | undefined }
  /** When the scheduler refreshes each grant written. */
  readonly due: DuePolicy
  /** Reports a state change (off the flight's path). */
  readonly publish: (event: RefreshEvent) => Effect.Effect<void>
}

/** The scheduler's retry of a failing grant: after as long as it has been failing, within these bounds. */
const MIN_RETRY_MILLIS = 30_000
const MAX_RETRY_MILLIS = 3_600_000

/** A refresh nobody waits on. */
const isBackground = (trigger: Trigger) => trigger._tag === "prefetch" || trigger._tag === "scheduled"

/** `grant` with the time the scheduler should refresh it. @internal */
export const withDueTime = (context: Pick<FlightContext, "due">, key: string, grant: Grant): Grant =>
  new Grant({ ...grant, refreshDueAt: refreshDueAt(context.due, key, grant) })

/** The grant under `key`, failing for a missing or dead one. @internal */
export const load = (store: TokenStore["Type"], key: string): Effect.Effect<Grant, Errors.RefreshError> =>
  Effect.flatMap(
    store.get(key),
    Option.match({
      onNone: (): Effect.Effect<Grant, Errors.RefreshError> => Effect.fail(new Errors.GrantNotFound()),
      onSome: (grant): Effect.Effect<Grant, Errors.RefreshError> =>
        grant.reauthRequired === undefined
          ? Effect.succeed(grant)
          : Effect.fail(
            new Errors.InvalidGrant(grant.reauthRequired === "invalid_grant" ? {} : { reason: grant.reauthRequired })
          )
    })
  )

/** Whether the stored grant serves this trigger as it is. @internal */
export const usable = (context: FlightContext, key: string, grant: Grant, trigger: Trigger, now: number): boolean => {
  if (grant.accessToken === undefined) return false
  switch (trigger._tag) {
    // A caller is served until the stale point (a background refresh is asked for past the prefetch point) ...
    case "due":
      return now < staleAt(context, grant)
    // ... which that refresh must not take as an answer.
    case "prefetch":
      return now < refreshAt(grant, context.skewMillis)
    // A claimed grant someone refreshed since it came due is left alone.
    case "scheduled":
      return now < Math.min(grant.refreshDueAt ?? dueAtOf(grant) ?? Infinity, refreshAt(grant, context.skewMillis))
    // A forced refresh (or a 401) may be answered with the stored grant, but never with an expired access token.
    case "rejected":
      return now < grant.expiresAt &&
        (Redacted.value(grant.accessToken) !== trigger.accessToken || context.guards.forcedRecently(key, now))
    case "forced":
      return now < grant.expiresAt && context.guards.forcedRecently(key, now)
  }
}

/** @internal */
export const runFlight = (
  context: FlightContext,
  key: string,
  trigger: Trigger,
  attempts: Attempts,
  outcome: Outcome
): Effect.Effect<Grant, Errors.RefreshError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const { guards, store } = context
      const clock = yield* Effect.clock
      const before = yield* restore(load(store, key))
      if (usable(context, key, before, trigger, clock.unsafeCurrentTimeMillis())) return remember(context, key, before)
      // A pause answers without a request and changes nothing: only flights that sent may set one.
      const paused = before.refreshToken === undefined
        ? undefined
        : guards.check(key, Redacted.value(before.refreshToken), trigger._tag, clock.unsafeCurrentTimeMillis())
      if (paused !== undefined) return yield* Effect.fail(paused)
      // The lock is taken interruptibly (its lease renewal runs beside the body and must stop with it); the body
      // protects itself again.
      return yield* restore(withLockTraced(store, key, (lease) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(load(store, key), (current) =>
            usable(context, key, current, trigger, clock.unsafeCurrentTimeMillis())
              ? Effect.succeed(remember(context, key, current))
              : refreshLocked(context, { key, current, trigger, lease, attempts, outcome, restore }))
        ))).pipe(
          // SF-4: the holder may have stored a fresh grant while we waited.
          Effect.catchTag("LockTimeout", (timeout) => rereadOr(context, key, trigger, timeout, undefined))
        )
    })
  )

/**
 * Until when the cached grant is served: the prefetch point without refresh-ahead, else the stale point
 * (`minValidity` before expiry, never before the prefetch point). @internal
 */
export const staleAt = (context: Pick<FlightContext, "skewMillis" | "minValidityMillis" | "refreshAhead">, grant: Grant) => {
  const prefetchAt = refreshAt(grant, context.skewMillis)
  return context.refreshAhead ? Math.max(prefetchAt, grant.expiresAt - context.minValidityMillis) : prefetchAt
}

/** Caches `grant`: served until its stale point, a background refresh asked for past its prefetch point. @internal */
export const remember = (context: FlightContext, key: string, grant: Grant): Grant => {
  context.cache.set(key, grant, staleAt(context, grant), refreshAt(grant, context.skewMillis))
  // A grant read already past its prefetch point (a cold cache) asks for its background refresh now.
  context.cache.prefetchIfDue(key)
  return grant
}

/** Serves a grant someone stored meanwhile (a version other than `seen`) if it serves the trigger; else fails. */
const rereadOr = (
  context: FlightContext,
  key: string,
  trigger: Trigger,
  error: Errors.RefreshError,
  seen: number | undefined
): Effect.Effect<Grant, Errors.RefreshError> =>
  Effect.flatMap(Effect.all([Effect.option(load(context.store, key)), Clock.currentTimeMillis]), ([stored, now]) =>
    Option.isSome(stored) && stored.value.version !== seen && usable(context, key, stored.value, trigger, now)
      ? Effect.succeed(remember(context, key, stored.value))
      : Effect.fail(error))

interface Locked {
  readonly key: string
  /** The grant as read under the lease. */
  readonly current: Grant
  readonly trigger: Trigger
  readonly lease: Lease
  readonly attempts: Attempts
  readonly outcome: Outcome
  readonly restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const refreshLocked = (context: FlightContext, locked: Locked): Effect.Effect<Grant, Errors.RefreshError> => {
  const { attempts, current, key, outcome, trigger } = locked
  const { endpoint, intent } = context
  const held: Intent.Held = { version: current.version, intent: false }
  let recovering: Errors.InvalidGrant["lostAfter"] | undefined
  return Effect.gen(function*() {
    const refreshToken = current.refreshToken
    if (refreshToken === undefined) return yield* new Errors.NoRefreshToken()
    const now = yield* Clock.currentTimeMillis
    if (trigger._tag === "forced" || trigger._tag === "rejected") context.guards.noteForced(key, now)
    // An earlier refresh without a recorded outcome (its intent is still there): the server may have rotated this
    // token (DU-4). This process may know why it has none.
    const earlier = current.refreshStartedAt !== undefined ? context.unknownOutcomes.get(key) ?? "unrecorded" : undefined
    if (earlier !== undefined) {
      // Ask the server first if we can: a token it calls active was not rotated, and this is a plain refresh. Any
      // other answer is settled by one presentation (a server with a reuse grace period still accepts it).
      const active = yield* detached(endpoint.introspect(refreshToken))
      // A server seen not to rotate cannot have consumed the token: a plain refresh, nothing to recover.
      if ((Option.isNone(active) || !active.value.active) && !knownNotToRotate(context, key)) recovering = earlier
      if (recovering !== undefined) {
        yield* Effect.logWarning(
          `renew: an earlier refresh of this grant has no recorded outcome (${recovering}); retrying once with the stored refresh token`
        )
      }
    }
    // Every store records the intent, a memory store too: engines sharing it must learn of an unknown outcome.
    yield* intent.begin(key, current, held, now)
    return yield* exchange({
      endpoint,
      limiter: context.limiter,
      schedule: context.schedule,
      lease: locked.lease,
      isClosed: context.isClosed,
      interruptible: locked.restore,
      mayRepresent: (sentAt) => mayRepresent(context, key, refreshToken, sentAt),
      keepRotated: (rotated) =>
        Effect.map(
          intent.persist(key, held, withoutIntent(new Grant({ ...current, refreshToken: rotated }))),
          (stored) => {
            // The next refresh uses the new token; the record we hold is no longer ours to change.
            held.version = stored.version
            held.intent = false
          }
        ),
      store: (response, sentAt) =>
        Effect.gen(function*() {
          const answeredAt = yield* Clock.currentTimeMillis
          const answered = grantFromResponse(response, current, {
            now: sentAt,
            // The endpoint's own (its provider's) lifetime wins: it is per client.
            defaultLifetime: endpoint.defaultLifetimeMillis ?? context.defaultLifetimeMillis
          })
          const next = withDueTime(context, key, yield* detached(learnRefreshTokenExpiry(endpoint, answered)))
          const stored = yield* intent.persist(key, held, next)
          if (current.failingSince !== undefined) {
            yield* context.publish({ _tag: "Recovered", key, failingSince: current.failingSince, at: answeredAt })
          }
          yield* Metric.update(Telemetry.persistLag, ((yield* Clock.currentTimeMillis) - answeredAt) / 1000)
          const rotated = response.refresh_token !== undefined &&
            Redacted.value(response.refresh_token) !== Redacted.value(refreshToken)
          context.rotates.set(key, rotated)
          context.serverRotation.last = rotated
          context.unknownOutcomes.delete(key)
          outcome.value = "success"
          return remember(context, key, stored)
        })
    }, refreshToken, attempts)
  }).pipe(
    Effect.catchAll((error) => onFailure(context, locked, held, recovering, error))
  )
}

/** The server answered the last refresh of this grant (or, for a grant not refreshed yet, of any) without rotating. */
const knownNotToRotate = (context: FlightContext, key: string): boolean =>
  (context.rotates.get(key) ?? context.serverRotation.last) === false

/** Whether a refresh token whose last presentation has an unknown outcome may be presented again. */
const mayRepresent = (
  context: FlightContext,
  key: string,
  refreshToken: Redacted.Redacted<string>,
  sentAt: number
): Effect.Effect<Representation> =>
  Effect.gen(function*() {
    if (knownNotToRotate(context, key)) return "resolved"
    if ((yield* Clock.currentTimeMillis) - sentAt < context.reuseGraceMillis) return "within_grace"
    return (yield* detached(isActive(context.endpoint, refreshToken))) ? "resolved" : "unsafe"
  })

/** Carries out the failure policy's decision. */
const onFailure = (
  context: FlightContext,
  locked: Locked,
  held: Intent.Held,
  recovering: Errors.InvalidGrant["lostAfter"] | undefined,
  error: Errors.RefreshError
): Effect.Effect<Grant, Errors.RefreshError> =>
  Effect.gen(function*() {
    const { attempts, current, key, outcome, trigger } = locked
    const { guards, intent } = context
    if (rereadsStore(error)) {
      const stored = yield* Effect.either(rereadOr(context, key, trigger, error, held.version))
      if (stored._tag === "Right") return stored.right
    }
    const now = yield* Clock.currentTimeMillis
    const facts = {
      error,
      trigger: trigger._tag,
      attemptsSent: attempts.sent,
      unknownOutcome: attempts.unknownOutcome,
      answered: attempts.answered,
      recovering,
      accessTokenExpiresAt: current.accessToken !== undefined ? current.expiresAt : undefined,
      now
    }
    const verdict = needsVerdict(facts) ? yield* detached(verdictOn(context.endpoint, current, now)) : undefined
    const decision = decide({ ...facts, verdict }, context.settings)
    const report = { key, errorTag: decision.error._tag, message: decision.error.message, at: now }
    if (decision.markReauth !== undefined) {
      if (yield* intent.markReauth(key, current, held, decision.markReauth)) {
        yield* context.publish({ _tag: "ReauthRequired", reason: decision.markReauth, ...report })
      }
      // A background refresh leaves the still-valid token served until its stale point (then callers get the error);
      // anything else stops serving it at once.
      if (!isBackground(trigger)) context.cache.delete(key)
    } else if (decision.intent === "clear") {
      // The first failure that reached the server records the grant as failing (the writer reports it), and the
      // scheduler's next try backs off with the time it has been failing.
      const failing = attempts.sent > 0 && current.failingSince === undefined
      const failingSince = current.failingSince ?? (attempts.sent > 0 ? now : undefined)
      const after = failingSince === undefined ? current : new Grant({
        ...current,
        failingSince,
        refreshDueAt: now + Math.min(Math.max(now - failingSince, MIN_RETRY_MILLIS), MAX_RETRY_MILLIS)
      })
      if ((yield* intent.clear(key, after, held)) && failing) yield* context.publish({ _tag: "Failing", ...report })
    }
    if (decision.intent === "keep" && attempts.unknownOutcome !== undefined) {
      context.unknownOutcomes.set(key, attempts.unknownOutcome)
    } else {
      context.unknownOutcomes.delete(key)
    }
    if (decision.pauseClientUntil !== undefined) guards.pauseClient(decision.error, decision.pauseClientUntil)
    if (decision.replayUntil !== undefined && current.refreshToken !== undefined) {
      guards.pauseGrant(key, {
        error: decision.error,
        refreshToken: Redacted.value(current.refreshToken),
        until: decision.replayUntil,
        bindsForced: decision.replayBindsForced
      })
    }
    if (decision.serveStaleUntil !== undefined) {
      // A background refresh keeps serving the token until its stale point and asks again at `serveStaleUntil`.
      if (isBackground(trigger)) context.cache.set(key, current, staleAt(context, current), decision.serveStaleUntil)
      else context.cache.set(key, current, decision.serveStaleUntil)
      outcome.value = "served_stale"
      outcome.failureTag = error._tag
      outcome.servedStaleError = error
      yield* spanEvent(Telemetry.Events.servedStale, { [Telemetry.Attributes.errorType]: error._tag })
      yield* Effect.logWarning(`renew: refresh failed, serving the still-valid access token: ${error.message}`)
      return current
    }
    return yield* Effect.fail(decision.error)
  })
