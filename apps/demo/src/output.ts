/**
 * How the demo tells its story: one human-readable line per event on stdout.
 *
 * - The demo's own events (API calls, chaos, authorizations) are Effect log lines annotated with `event`.
 * - Refreshes are told from Renew's `renew.refresh` spans: a line when one ends (trigger, outcome, attempts,
 *   duration, the error's `_tag` and message) and a line for each retry Renew schedules (its `renew.retry` events).
 *   The tracer is wrapped, not replaced: with OTEL_EXPORTER_OTLP_ENDPOINT set the same spans go to Jaeger.
 * - Renew's events (a grant needs re-authorization, started failing, recovered) are told as `event` lines, from the
 *   `RefreshEvents` hook.
 * - `--log-format logfmt` prints Effect's logfmt lines with trace ids instead (`Otel.logger`), Renew's own log lines
 *   included.
 *
 * Nothing here ever prints a token or a secret: Renew's messages never hold one, and the demo prints none.
 */
import type { RefreshEvents } from "@renew/core"
import { Otel } from "@renew/opentelemetry"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

const timeOf = (date: Date): string =>
  `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}:${
    String(date.getSeconds()).padStart(2, "0")
  }.${String(date.getMilliseconds()).padStart(3, "0")}`

/** Writes one story line: `HH:MM:SS.mmm  category  text`. */
export const writeLine = (category: string, text: string, date: Date = new Date()): void => {
  process.stdout.write(`${timeOf(date)}  ${category.padEnd(8)} ${text}\n`)
}

/** Writes lines as they are (the startup banner). */
export const writeRaw = (text: string): void => {
  process.stdout.write(`${text}\n`)
}

/** "8 ms", "1.21 s". */
export const formatMillis = (millis: number): string =>
  millis < 1000 ? `${Math.round(millis)} ms` : `${(millis / 1000).toFixed(2)} s`

/** A demo event: a log line the story logger prints as `category text`. */
export const event = (category: string, text: string, level: LogLevel.LogLevel = LogLevel.Info): Effect.Effect<void> =>
  Effect.logWithLevel(level, text).pipe(Effect.annotateLogs("event", category))

/** What the demo can do about a failure, after Renew's own remedy (the error's message). */
export const demoRemedy = (tag: string): string | undefined => {
  switch (tag) {
    case "InvalidGrant":
    case "GrantNotFound":
    case "NoRefreshToken":
      return "demo: POST /admin/reauthorize (or open /login)"
    case "InvalidClient":
      return "demo: POST /admin/chaos/restore-secret"
    case "NetworkError":
      return "demo: POST /admin/chaos/restore-network"
    default:
      return undefined
  }
}

const messageText = (message: unknown): string =>
  Array.isArray(message) ? message.map((part) => (typeof part === "string" ? part : String(part))).join(" ") : String(message)

// Renew's log lines about a refresh's outcome (the refresh span tells the same, with the duration) and about a grant's
// state changes (the event line tells the same).
const toldElsewhere = [
  "renew: refreshed access token",
  "renew: refresh failed with",
  "renew: refresh failed, serving the still-valid access token",
  "renew: refresh interrupted",
  "renew: the grant needs a new authorization",
  "renew: the grant's refreshes are failing",
  "renew: the grant's refreshes succeed again"
]

/** The story logger: demo events as `category text`; Renew's other lines (alerts, warnings) as `renew …`. */
export const storyLogger: Logger.Logger<unknown, void> = Logger.make(({ annotations, cause, date, logLevel, message }) => {
  const text = messageText(message)
  const category = HashMap.get(annotations, "event")
  if (Option.isSome(category)) {
    writeLine(String(category.value), text, date)
    return
  }
  if (toldElsewhere.some((prefix) => text.startsWith(prefix))) return
  const label = text.startsWith("renew: failure-rate alert")
    ? "alert"
    : logLevel._tag === "Error" || logLevel._tag === "Fatal"
    ? "error"
    : logLevel._tag === "Warning"
    ? "warning"
    : text.startsWith("renew: ")
    ? "renew"
    : "info"
  const details = Cause.isEmpty(cause) ? "" : ` ${Cause.pretty(cause)}`
  writeLine(label, `${text}${details}`, date)
})

/** The logger layer for a log format. */
export const loggerLayer = (format: "story" | "logfmt"): Layer.Layer<never> =>
  format === "logfmt" ? Otel.logger : Logger.replace(Logger.defaultLogger, storyLogger)

// --- a grant's state changes, from Renew's RefreshEvents ---------------------------------------------------------

export const eventCounts = { reauthRequired: 0, failing: 0, recovered: 0 }

/** One `event` line per state change of a grant, with what to do in the demo. */
export const tellEvent = (change: RefreshEvents.RefreshEvent): Effect.Effect<void> => {
  switch (change._tag) {
    case "ReauthRequired": {
      eventCounts.reauthRequired++
      const remedy = demoRemedy(change.errorTag)
      return event(
        "event",
        `reauthRequired ${change.key} (${change.reason}): ${change.message}${remedy === undefined ? "" : `  → ${remedy}`}`,
        LogLevel.Warning
      )
    }
    case "Failing": {
      eventCounts.failing++
      return event("event", `failing ${change.key} (${change.errorTag}): ${change.message}`, LogLevel.Warning)
    }
    case "Recovered": {
      eventCounts.recovered++
      return event(
        "event",
        `recovered ${change.key}: refreshes succeed again after ${formatMillis(change.at - change.failingSince)} of failures`
      )
    }
  }
}

// --- refreshes, from Renew's spans -------------------------------------------------------------------------------

export interface RefreshCounts {
  ok: number
  failed: number
  servedStale: number
  notNeeded: number
  retries: number
  readonly byTrigger: Record<string, number>
  readonly failuresByTag: Record<string, number>
}

export const refreshCounts: RefreshCounts = {
  ok: 0,
  failed: 0,
  servedStale: 0,
  notNeeded: 0,
  retries: 0,
  byTrigger: {},
  failuresByTag: {}
}

const triggerLabel = (trigger: unknown): string => (trigger === "rejected" ? "rejected-401" : String(trigger ?? "due"))

const attemptsText = (attempts: number): string => `${attempts} attempt${attempts === 1 ? "" : "s"}`

interface FailureLike {
  readonly _tag: string
  readonly message: string
}

const failureOf = (exit: Exit.Exit<unknown, unknown>): FailureLike | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) return undefined
  const error = failure.value as Partial<FailureLike>
  return { _tag: String(error._tag ?? "Error"), message: String(error.message ?? "") }
}

/**
 * Wraps a tracer so that every `renew.refresh` span is also told on stdout (when `print`), and counted.
 * The wrapped tracer's spans are returned as they are, behind a proxy that watches `event` and `end`.
 */
export const storyTracer = (inner: Tracer.Tracer, options: { readonly print: boolean; readonly traceIds: boolean }) =>
  Tracer.make({
    context: (f, fiber) => inner.context(f, fiber),
    span(name, parent, context, links, startTime, kind, spanOptions) {
      const span = inner.span(name, parent, context, links, startTime, kind, spanOptions)
      if (name !== "renew.refresh") return span
      let staleTag: string | undefined
      let staleMessage: string | undefined
      const trigger = () => triggerLabel(span.attributes.get("renew.trigger"))
      const traceSuffix = () => (options.traceIds ? `  trace=${span.traceId}` : "")
      const onEvent = (eventName: string, attributes: Record<string, unknown> | undefined) => {
        if (eventName === "renew.retry") {
          refreshCounts.retries++
          if (!options.print) return
          const retryAfter = attributes?.["renew.retry.retry_after_ms"]
          writeLine(
            "refresh",
            `${trigger()}: attempt ${attributes?.["renew.attempt"]} failed with ${attributes?.["error.type"]}, retrying in ${
              formatMillis(Number(attributes?.["renew.retry.delay_ms"]))
            }${typeof retryAfter === "number" ? ` (the server asked for Retry-After: ${formatMillis(retryAfter)})` : ""}`
          )
        } else if (eventName === "renew.served_stale") {
          staleTag = String(attributes?.["error.type"] ?? "")
        } else if (eventName.startsWith("renew: refresh failed, serving the still-valid access token: ")) {
          // Effect records log lines written inside a span as span events.
          staleMessage = eventName.slice("renew: refresh failed, serving the still-valid access token: ".length)
        }
      }
      const onEnd = (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
        const label = trigger()
        refreshCounts.byTrigger[label] = (refreshCounts.byTrigger[label] ?? 0) + 1
        const outcome = String(span.attributes.get("renew.outcome") ?? "")
        const attempts = Number(span.attributes.get("renew.attempts") ?? 0)
        const startedAt = span.status._tag === "Started" || span.status._tag === "Ended" ? span.status.startTime : endTime
        const took = formatMillis(Number(endTime - startedAt) / 1e6)
        const failure = failureOf(exit)
        let line: string | undefined
        if (outcome === "success") {
          refreshCounts.ok++
          line = `${label}: ok${attempts > 1 ? ` after ${attemptsText(attempts)}` : ""} in ${took}`
        } else if (outcome === "served_stale") {
          refreshCounts.servedStale++
          line = `${label}: failed with ${staleTag ?? "a transient error"} after ${
            attemptsText(attempts)
          } in ${took}; serving the still-valid access token and trying again shortly — ${staleMessage ?? ""}`
        } else if (outcome === "cached") {
          refreshCounts.notNeeded++
          line = label === "forced"
            ? `forced: not needed (refreshed less than the forced-refresh cooldown ago)`
            : `${label}: not needed (a newer access token was already stored)`
        } else if (outcome === "interrupted") {
          line = `${label}: interrupted`
        } else if (failure !== undefined) {
          refreshCounts.failed++
          refreshCounts.failuresByTag[failure._tag] = (refreshCounts.failuresByTag[failure._tag] ?? 0) + 1
          // A failure without a request (a dead grant, a paused client) is told by the call that hit it.
          if (attempts > 0) {
            const remedy = demoRemedy(failure._tag)
            line = `${label}: FAILED ${failure._tag} after ${attemptsText(attempts)} in ${took} — ${failure.message}${
              remedy === undefined ? "" : `  → ${remedy}`
            }`
          }
        }
        if (options.print && line !== undefined) writeLine("refresh", `${line}${traceSuffix()}`)
      }
      return new Proxy(span, {
        get(target, property, receiver) {
          if (property === "event") {
            return (eventName: string, time: bigint, attributes?: Record<string, unknown>) => {
              target.event(eventName, time, attributes)
              onEvent(eventName, attributes)
            }
          }
          if (property === "end") {
            return (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
              target.end(endTime, exit)
              onEnd(endTime, exit)
            }
          }
          return Reflect.get(target, property, receiver)
        }
      })
    }
  })
