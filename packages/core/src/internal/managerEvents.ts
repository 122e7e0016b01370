/**
 * The Promise facade's events: a small listener registry in the style of Node's `EventEmitter` (`on` / `once` /
 * `off`), fed by the engine's `RefreshEvents` (state changes), the flight observer (each refresh's end) and the
 * failure-rate monitor (alerts). A listener is called with a frozen plain object made of the event's fields only
 * (never a token or a secret); one that throws or rejects is logged and changes nothing else: the other listeners are
 * still called, and the refresh that reported the change has already been stored.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { FailureRateAlert } from "../FailureRateMonitor.js"
import * as Errors from "../RefreshError.js"
import type { RefreshEvent } from "../RefreshEvents.js"
import type { ReauthReason } from "../Token.js"
import type { FlightEnd } from "./flightObserver.js"

/** Why a refresh ran. @internal */
export type Trigger = "due" | "prefetch" | "scheduled" | "forced" | "rejected"

/** What every grant's event carries. @internal */
export interface GrantEventFields {
  /** The grant's key, as given to `setGrant`. */
  readonly key: string
  /** The OAuth client the grant belongs to. */
  readonly clientId: string
  /** When it happened, epoch milliseconds. */
  readonly at: number
}

/** @internal */
export interface RefreshedEvent extends GrantEventFields {
  readonly type: "refreshed"
  readonly trigger: Trigger
  /** Requests it took (retries included). */
  readonly attempts: number
  /** When the new access token expires, epoch milliseconds. */
  readonly expiresAt: number
  /** The scope the server granted, when known. */
  readonly scope: string | undefined
}

/** @internal */
export interface FailureEvent extends GrantEventFields {
  readonly type: "failure"
  readonly trigger: Trigger
  /** Requests it took (retries included); 0 when it failed at the store. */
  readonly attempts: number
  readonly errorTag: string
  readonly message: string
  readonly retryable: boolean
  /** Whether callers were served the still-valid access token instead of the error. */
  readonly servedStale: boolean
}

/** @internal */
export interface ReauthRequiredEvent extends GrantEventFields {
  readonly type: "reauthRequired"
  readonly reason: ReauthReason
  readonly errorTag: string
  readonly message: string
}

/** @internal */
export interface FailingEvent extends GrantEventFields {
  readonly type: "failing"
  readonly errorTag: string
  readonly message: string
}

/** @internal */
export interface RecoveredEvent extends GrantEventFields {
  readonly type: "recovered"
  readonly failingSince: number
  readonly message: string
}

/** @internal */
export interface AlertEvent {
  readonly type: "alert"
  /** `raised` when the failure ratio crossed the threshold, `cleared` when it fell back below. */
  readonly state: "raised" | "cleared"
  readonly clientId: string
  /** Refreshes that failed in the window, and all refreshes in it (only those that reached the token endpoint). */
  readonly failures: number
  readonly total: number
  readonly ratio: number
  /** Failures by error `_tag`. */
  readonly byTag: Readonly<Record<string, number>>
  readonly windowMillis: number
  readonly message: string
  readonly at: number
}

/** @internal */
export interface EventMap {
  readonly refreshed: RefreshedEvent
  readonly failure: FailureEvent
  readonly reauthRequired: ReauthRequiredEvent
  readonly failing: FailingEvent
  readonly recovered: RecoveredEvent
  readonly alert: AlertEvent
}

/** @internal */
export type EventName = keyof EventMap

/** @internal */
export type Listener<K extends EventName> = (event: EventMap[K]) => unknown

/** @internal */
export const NAMES: ReadonlyArray<EventName> = ["refreshed", "failure", "reauthRequired", "failing", "recovered", "alert"]

/** The facade's payload of an engine event: only the event's own fields, copied, so nothing else can ride along. */
export const fromRefreshEvent = (
  clientId: string,
  event: RefreshEvent
): ReauthRequiredEvent | FailingEvent | RecoveredEvent => {
  switch (event._tag) {
    case "ReauthRequired":
      return Object.freeze({
        type: "reauthRequired",
        key: event.key,
        clientId,
        reason: event.reason,
        errorTag: event.errorTag,
        message: event.message,
        at: event.at
      })
    case "Failing":
      return Object.freeze({
        type: "failing",
        key: event.key,
        clientId,
        errorTag: event.errorTag,
        message: event.message,
        at: event.at
      })
    case "Recovered":
      return Object.freeze({
        type: "recovered",
        key: event.key,
        clientId,
        failingSince: event.failingSince,
        message: `Refreshes of the grant succeed again (failing since ${new Date(event.failingSince).toISOString()}).`,
        at: event.at
      })
  }
}

/**
 * A refresh's end as the facade reports it, if at all. A failure is reported when the refresh did something that
 * failed: it reached the token endpoint, or the store failed it. A call refused without either (a grant already
 * marked dead or missing, a pause after an earlier failure, shutdown) is the caller's rejection only: the failure
 * behind it was reported when it happened, and every later call would otherwise repeat it.
 */
export const fromFlightEnd = (clientId: string, end: FlightEnd): RefreshedEvent | FailureEvent | undefined => {
  const trigger = end.trigger as Trigger
  if (end.refreshed !== undefined) {
    return Object.freeze({
      type: "refreshed",
      key: end.key,
      clientId,
      trigger,
      attempts: end.attempts,
      expiresAt: end.refreshed.expiresAt,
      scope: end.refreshed.scope,
      at: end.at
    })
  }
  const failure = end.failure
  if (failure === undefined) return undefined
  const tag = failure.error._tag
  if (end.attempts === 0 && tag !== "StoreError" && tag !== "LockTimeout" && tag !== "StaleWrite") return undefined
  return Object.freeze({
    type: "failure",
    key: end.key,
    clientId,
    trigger,
    attempts: end.attempts,
    errorTag: tag,
    message: failure.error.message,
    retryable: failure.error.retryable,
    servedStale: failure.servedStale,
    at: end.at
  })
}

/** @internal */
export const fromAlert = (state: AlertEvent["state"], alert: FailureRateAlert): AlertEvent => {
  const causes = Object.entries(alert.byTag).map(([tag, n]) => `${tag}: ${n}`).join(", ")
  const window = `${Math.round(alert.windowMillis / 1000)} s`
  return Object.freeze({
    type: "alert",
    state,
    clientId: alert.clientId,
    failures: alert.failures,
    total: alert.total,
    ratio: alert.ratio,
    byTag: Object.freeze({ ...alert.byTag }),
    windowMillis: alert.windowMillis,
    message: state === "raised"
      ? `${alert.failures} of ${alert.total} refreshes of OAuth client ${alert.clientId} failed in the last ${window}${
        causes === "" ? "" : ` (${causes})`
      }: check the token endpoint and the client's credentials.`
      : `Refreshes of OAuth client ${alert.clientId} succeed again: ${alert.failures} of ${alert.total} failed in the last ${window}.`,
    at: alert.at
  })
}

/** @internal */
export interface ManagerEvents {
  readonly add: (name: unknown, listener: unknown, once: boolean) => void
  readonly remove: (name: unknown, listener: unknown) => void
  readonly count: (name: unknown) => number
  /** Calls every listener of the event's name; never fails. */
  readonly emit: (payload: EventMap[EventName]) => Effect.Effect<void>
}

// Plain JavaScript callers get no type check: a misspelt event name would never fire, so it is refused.
const checkName = (name: unknown): EventName => {
  if (typeof name === "string" && (NAMES as ReadonlyArray<string>).includes(name)) return name as EventName
  throw new Errors.ConfigurationError({
    option: "event",
    detail: `${JSON.stringify(String(name))} is not an event of the TokenManager; use one of ${NAMES.join(", ")}`
  })
}

const checkListener = (listener: unknown): ((event: unknown) => unknown) => {
  if (typeof listener === "function") return listener as (event: unknown) => unknown
  throw new Errors.ConfigurationError({ option: "listener", detail: "must be a function" })
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"

/** @internal */
export const make = (): ManagerEvents => {
  const listeners = new Map<EventName, Array<{ readonly listener: (event: unknown) => unknown; readonly once: boolean }>>()

  const failed = (name: EventName) => (cause: Cause.Cause<unknown>) =>
    Effect.logWarning(`renew: a '${name}' listener of the TokenManager threw; the refresh is not affected`, cause)

  /**
   * Calls the listener now (listeners run in the order they were added, as with `emit`); what is left to do is
   * returned: log its failure, or wait for the promise an async listener returned and log its rejection (an
   * unhandled rejection would end a Node process).
   */
  const call = (name: EventName, listener: (event: unknown) => unknown, payload: unknown): Effect.Effect<void> => {
    let result: unknown
    try {
      result = listener(payload)
    } catch (error) {
      return failed(name)(Cause.die(error))
    }
    return isThenable(result)
      ? Effect.promise(() => Promise.resolve(result)).pipe(Effect.asVoid, Effect.catchAllCause(failed(name)))
      : Effect.void
  }

  return {
    add: (name, listener, once) => {
      const checked = checkName(name)
      const fn = checkListener(listener)
      const list = listeners.get(checked) ?? []
      list.push({ listener: fn, once })
      listeners.set(checked, list)
    },
    remove: (name, listener) => {
      const list = listeners.get(checkName(name))
      if (list === undefined) return
      // As EventEmitter.off: the most recently added registration of that listener goes.
      const index = list.map((entry) => entry.listener).lastIndexOf(checkListener(listener))
      if (index >= 0) list.splice(index, 1)
    },
    count: (name) => listeners.get(checkName(name))?.length ?? 0,
    emit: (payload) =>
      Effect.suspend(() => {
        const list = listeners.get(payload.type)
        if (list === undefined || list.length === 0) return Effect.void
        // A snapshot: listeners added or removed by a listener take effect from the next event.
        const current = list.slice()
        for (const entry of current) {
          if (entry.once) list.splice(list.indexOf(entry), 1)
        }
        const rest = current.map((entry) => call(payload.type, entry.listener, payload))
        return Effect.all(rest, { concurrency: "unbounded", discard: true })
      })
  }
}
