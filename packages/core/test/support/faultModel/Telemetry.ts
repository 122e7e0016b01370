/**
 * Everything an engine writes for humans, collected as text for I6: every log line (all levels, formatted as a
 * logfmt logger would, cause included) and every span (name, attributes, events, and the failure it ended with, as
 * an exporter would record it).
 */
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Tracer from "effect/Tracer"
import * as Util from "node:util"

export interface Collected {
  readonly texts: Array<string>
  readonly logger: Logger.Logger<unknown, void>
  readonly tracer: Tracer.Tracer
}

const show = (value: unknown): string => typeof value === "string" ? value : Util.inspect(value, { depth: 6 })

export const make = (): Collected => {
  const texts: Array<string> = []
  const logger = Logger.make<unknown, void>((options) => {
    texts.push(Logger.logfmtLogger.log(options))
    if (!Cause.isEmpty(options.cause)) texts.push(Util.inspect(options.cause, { depth: 6 }))
  })
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind, options) => {
      const attributes = new Map<string, unknown>(Object.entries(options?.attributes ?? {}))
      texts.push(`span ${name} ${[...attributes].map(([k, v]) => `${k}=${show(v)}`).join(" ")}`)
      const id = String(++ids)
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: "fault-model",
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          ;(span as { status: Tracer.SpanStatus }).status = { _tag: "Ended", startTime, endTime, exit }
          if (Exit.isFailure(exit)) texts.push(`span ${name} failed: ${Cause.pretty(exit.cause)}`)
        },
        attribute: (key, value) => {
          attributes.set(key, value)
          texts.push(`span ${name} ${key}=${show(value)}`)
        },
        event: (eventName, _time, eventAttributes) =>
          texts.push(`span ${name} event ${eventName} ${show(eventAttributes ?? {})}`),
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { texts, logger, tracer }
}

/** Every log line, down to debug, goes to the collector instead of the console. */
export const loggerLayer = (collected: Collected): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, collected.logger), Logger.minimumLogLevel(LogLevel.All))
