/**
 * The Promise facade's `logger` option: where the engine's log lines go when the application is not Effect. The engine
 * logs through Effect's logger; the facade's runtime replaces Effect's default one (an INFO line per refresh on
 * stdout) with one that turns each line into a plain record and hands it to the application's choice:
 *
 * - a level (`"warn"` by default): records at that level and above, one JSON line each, on stderr (what a library
 *   owes the process that hosts it: quiet on success, parseable by any log collector);
 * - `false`: nothing;
 * - a function: every record, debug included (the function filters by `record.level`);
 * - an object with `debug` / `info` / `warn` / `error` (pino, winston, console, ...): every record, to the method of
 *   its level; the logger's own level filters. pino is called in its own convention, `warn(fields, message)`; any
 *   other object gets the whole record as one argument (winston, console, and most loggers take that).
 *
 * A record holds the message, the engine's log annotations (the grant key's hash, the trigger, the outcome, ...), the
 * client id, and an `error` (`_tag` and message) when the line carries a failure. Messages of the error family never
 * hold a secret, and nothing else from a cause is copied (no stack, no object that could hold a token).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Errors from "../RefreshError.js"

/** @internal */
export type LogLevelName = "debug" | "info" | "warn" | "error"

/** @internal */
export interface LogRecord {
  /** ISO 8601. */
  readonly time: string
  readonly level: LogLevelName
  readonly message: string
  /** The failure the line reports, if any: its `_tag` and message. */
  readonly error?: { readonly tag: string; readonly message: string } | undefined
  /** The engine's annotations (`renew.grant.key_hash`, `trigger`, `outcome`, `attempts`, ...) and `oauth.client_id`. */
  readonly [field: string]: unknown
}

/** @internal */
export interface LoggerObject {
  readonly debug: (...args: Array<any>) => unknown
  readonly info: (...args: Array<any>) => unknown
  readonly warn: (...args: Array<any>) => unknown
  readonly error: (...args: Array<any>) => unknown
}

/** @internal */
export type LoggerOption = LogLevelName | false | ((record: LogRecord) => void) | LoggerObject

const LEVELS: ReadonlyArray<LogLevelName> = ["debug", "info", "warn", "error"]

const effectLevel: Record<LogLevelName, LogLevel.LogLevel> = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warn: LogLevel.Warning,
  error: LogLevel.Error
}

const levelName = (level: LogLevel.LogLevel): LogLevelName => {
  switch (level._tag) {
    case "Info":
      return "info"
    case "Warning":
      return "warn"
    case "Error":
    case "Fatal":
      return "error"
    default:
      return "debug"
  }
}

type Sink = (record: LogRecord) => void

// pino marks its loggers with this registered symbol (`pino.symbols.serializersSym`).
const PINO = Symbol.for("pino.serializers")

/** The option checked at once, as the other options are: a wrong one would otherwise lose every log line. */
const sinkOf = (option: unknown): { readonly sink: Sink | undefined; readonly minimum: LogLevelName } => {
  if (option === undefined) return { sink: stderrJson, minimum: "warn" }
  if (option === false) return { sink: undefined, minimum: "warn" }
  if (typeof option === "string" && (LEVELS as ReadonlyArray<string>).includes(option)) {
    return { sink: stderrJson, minimum: option as LogLevelName }
  }
  if (typeof option === "function") return { sink: option as Sink, minimum: "debug" }
  if (typeof option === "object" && option !== null) {
    const target = option as Record<string | symbol, unknown>
    const missing = LEVELS.filter((level) => typeof target[level] !== "function")
    if (missing.length === 0) {
      const logger = option as LoggerObject
      if (PINO in target) {
        return {
          sink: ({ level, message, time: _time, ...fields }) => void logger[level](fields, message),
          minimum: "debug"
        }
      }
      return { sink: (record) => void logger[record.level](record), minimum: "debug" }
    }
    throw new Errors.ConfigurationError({
      option: "logger",
      detail: `an object logger needs debug, info, warn and error methods; this one has no ${missing.join(", ")}`
    })
  }
  throw new Errors.ConfigurationError({
    option: "logger",
    detail: `must be a level (${LEVELS.join(", ")}), false, a function, or an object with debug, info, warn and error`
  })
}

const stderrJson: Sink = (record) => {
  const line = `${JSON.stringify(record)}\n`
  const stderr = (globalThis as { process?: { stderr?: { write?: (text: string) => unknown } } }).process?.stderr
  if (typeof stderr?.write === "function") stderr.write(line)
  else console.error(line.trimEnd())
}

const text = (value: unknown): string => {
  if (typeof value === "string") return value
  if (value instanceof Error) return value.message
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const fieldValue = (value: unknown): unknown =>
  value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? value
    : text(value)

/** The failure a log line carries: tag and message only. */
const errorOf = (cause: Cause.Cause<unknown>): LogRecord["error"] => {
  if (Cause.isEmpty(cause) || Cause.isInterruptedOnly(cause)) return undefined
  const found = Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause))
  if (Option.isNone(found)) return undefined
  const error = found.value
  if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
    return { tag: error._tag, message: text(error) }
  }
  return { tag: error instanceof Error ? error.name : "Defect", message: text(error) }
}

/** @internal */
export interface ManagerLogger {
  /** Installs the logger on the manager's runtime (before the engine is built, so its fibers use it too). */
  readonly layer: Layer.Layer<never>
  /** Logs from outside the runtime (the facade's own lines). */
  readonly log: (level: LogLevelName, message: string, cause?: Cause.Cause<unknown>) => void
}

/**
 * Throws `ConfigurationError` for an option that is none of the accepted forms. `fields` go into every record.
 *
 * @internal
 */
export const make = (option: unknown, fields: Readonly<Record<string, string>>): ManagerLogger => {
  const { minimum, sink } = sinkOf(option)
  const minimumLevel = effectLevel[minimum]
  const deliver = (record: LogRecord) => {
    if (sink === undefined) return
    try {
      sink(record)
    } catch {
      // A broken application logger must not break a refresh; there is nowhere left to report it.
    }
  }
  const record = (
    level: LogLevelName,
    date: Date,
    message: string,
    annotations: Iterable<readonly [string, unknown]>,
    cause: Cause.Cause<unknown>
  ): LogRecord => {
    const entry: Record<string, unknown> = { time: date.toISOString(), level, message, ...fields }
    for (const [name, value] of annotations) entry[name] = fieldValue(value)
    const error = errorOf(cause)
    if (error !== undefined) entry.error = error
    return entry as LogRecord
  }
  const logger = Logger.make(({ annotations, cause, date, logLevel, message }) => {
    if (sink === undefined) return
    const parts = Array.isArray(message) ? message : [message]
    deliver(record(levelName(logLevel), date, parts.map(text).join(" "), HashMap.toEntries(annotations), cause))
  })
  return {
    // Only the default logger is replaced: others (a span's log events) keep working at the same minimum level.
    layer: Layer.mergeAll(
      Logger.replace(Logger.defaultLogger, sink === undefined ? Logger.none : logger),
      Logger.minimumLogLevel(minimumLevel),
      // A refresh runs in a fiber of its own and fails it with its error, which every caller receives: that fiber's
      // failure is handled, not worth Effect's "unhandled error" line.
      Layer.setUnhandledErrorLogLevel(Option.none())
    ),
    log: (level, message, cause = Cause.empty) => {
      if (sink === undefined || LogLevel.lessThan(effectLevel[level], minimumLevel)) return
      deliver(record(level, new Date(), message, [], cause))
    }
  }
}
