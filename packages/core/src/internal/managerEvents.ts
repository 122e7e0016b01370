/**
 * The Promise facade's events: a small listener registry in the style of Node's `EventEmitter` (`on` / `once` /
 * `off`), fed by the engine's `RefreshEvents`. A listener is called with a frozen plain object made of the event's
 * fields only (never a token or a secret); one that throws or rejects is logged and changes nothing else: the other
 * listeners are still called, and the refresh that reported the change has already been stored.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Errors from "../RefreshError.js"
import type { RefreshEvent } from "../RefreshEvents.js"
import type { ReauthReason } from "../Token.js"

/** @internal */
export interface ReauthRequiredEvent {
  readonly type: "reauthRequired"
  readonly key: string
  readonly reason: ReauthReason
  readonly errorTag: string
  readonly message: string
  readonly at: number
}

/** @internal */
export interface FailingEvent {
  readonly type: "failing"
  readonly key: string
  readonly errorTag: string
  readonly message: string
  readonly at: number
}

/** @internal */
export interface RecoveredEvent {
  readonly type: "recovered"
  readonly key: string
  readonly failingSince: number
  readonly message: string
  readonly at: number
}

/** @internal */
export interface EventMap {
  readonly reauthRequired: ReauthRequiredEvent
  readonly failing: FailingEvent
  readonly recovered: RecoveredEvent
}

/** @internal */
export type EventName = keyof EventMap

/** @internal */
export type Listener<K extends EventName> = (event: EventMap[K]) => unknown

const NAMES: ReadonlyArray<EventName> = ["reauthRequired", "failing", "recovered"]

/** The facade's payload: only the event's own fields, copied, so nothing else can ride along. */
export const toPayload = (event: RefreshEvent): EventMap[EventName] => {
  switch (event._tag) {
    case "ReauthRequired":
      return Object.freeze({
        type: "reauthRequired",
        key: event.key,
        reason: event.reason,
        errorTag: event.errorTag,
        message: event.message,
        at: event.at
      })
    case "Failing":
      return Object.freeze({
        type: "failing",
        key: event.key,
        errorTag: event.errorTag,
        message: event.message,
        at: event.at
      })
    case "Recovered":
      return Object.freeze({
        type: "recovered",
        key: event.key,
        failingSince: event.failingSince,
        message: `Refreshes of the grant succeed again (failing since ${new Date(event.failingSince).toISOString()}).`,
        at: event.at
      })
  }
}

/** @internal */
export interface ManagerEvents {
  readonly add: (name: unknown, listener: unknown, once: boolean) => void
  readonly remove: (name: unknown, listener: unknown) => void
  /** Calls every listener of the event's name; never fails. */
  readonly publish: (event: RefreshEvent) => Effect.Effect<void>
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
    publish: (event) =>
      Effect.suspend(() => {
        const payload = toPayload(event)
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
