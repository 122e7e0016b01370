/**
 * Canary test: for every row of the error table (./support/errorTable.ts), the client secret, the refresh token sent
 * and the tokens a server returns must not appear in any place an application or a telemetry backend would print:
 * the error's message, String, util.inspect, JSON, its schema encoding, the rendered Cause, any log line, any span
 * attribute, event or recorded exception.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, expect, it } from "@effect/vitest"
import { RefreshError, Token } from "@renew/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"
import * as util from "node:util"
import { CANARY, CLIENT_ID, errorTable, type RowRun, runRow } from "./support/errorTable.js"

const canaries: ReadonlyArray<readonly [string, string]> = [
  ["client secret", CANARY.clientSecret],
  ["refresh token sent", CANARY.refreshToken],
  ["access token returned", CANARY.accessToken],
  ["refresh token returned", CANARY.rotatedRefreshToken],
  // The client_secret_basic credential as it travels in the Authorization header.
  ["Basic credential", Buffer.from(`${CLIENT_ID}:${CANARY.clientSecret}`).toString("base64")]
]

const inspect = (u: unknown): string => util.inspect(u, { depth: 10 })

const assertClean = (where: string, text: string): void => {
  for (const [name, value] of canaries) {
    expect(text.includes(value), `${where} leaks the ${name}: ${text}`).toBe(false)
  }
}

// --- log capture ---------------------------------------------------------------------------------------------------

/** Every log line, rendered the ways a logger would render it. */
const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make<unknown, void>((options) => {
    lines.push(
      [
        Logger.stringLogger.log(options),
        Logger.logfmtLogger.log(options),
        Logger.jsonLogger.log(options),
        inspect(options.message),
        Cause.pretty(options.cause, { renderErrorCause: true }),
        inspect(HashMap.toEntries(options.annotations))
      ].join("\n")
    )
  })
  const provide = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.All)
    )
  return { lines, provide }
}

// --- span capture --------------------------------------------------------------------------------------------------

interface RecordedSpan {
  readonly name: string
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> | undefined }>
  /** What an OpenTelemetry exporter records on failure: the pretty cause and each pretty error. */
  exception: string | undefined
  ended: boolean
}

const makeRecordingTracer = () => {
  const spans: Array<RecordedSpan> = []
  let counter = 0
  const tracer = Tracer.make({
    span(name, parent, context, links, startTime, kind) {
      const record: RecordedSpan = { name, attributes: new Map(), events: [], exception: undefined, ended: false }
      spans.push(record)
      const id = (++counter).toString(16).padStart(16, "0")
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: id,
        traceId: Option.match(parent, { onNone: () => id.padStart(32, "0"), onSome: (p) => p.traceId }),
        parent,
        context,
        status: { _tag: "Started", startTime },
        attributes: record.attributes,
        links,
        sampled: true,
        kind,
        end(_endTime, exit) {
          record.ended = true
          if (Exit.isFailure(exit)) {
            record.exception = [
              Cause.pretty(exit.cause, { renderErrorCause: true }),
              ...Cause.prettyErrors(exit.cause).map((e) => `${e.name}: ${e.message}\n${e.stack ?? ""}`)
            ].join("\n")
          }
        },
        attribute(key, value) {
          record.attributes.set(key, value)
        },
        event(eventName, _startTime, attributes) {
          record.events.push({ name: eventName, attributes })
        },
        addLinks() {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

const renderSpan = (span: RecordedSpan): string =>
  [
    span.name,
    ...[...span.attributes].map(([k, v]) => `${k}=${typeof v === "string" ? v : inspect(v)}`),
    ...span.events.map((e) => `${e.name} ${inspect(e.attributes)}`),
    span.exception ?? ""
  ].join("\n")

// --- the canary run --------------------------------------------------------------------------------------------------

const layers: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["NodeHttpClient.layerUndici", NodeHttpClient.layerUndici],
  ["FetchHttpClient.layer", FetchHttpClient.layer]
]

/** Runs a row the way an application would: inside its own span, logging the outcome (error objects included). */
const observedRun = (row: (typeof errorTable)[number]) => {
  const logs = captureLogs()
  const { spans, tracer } = makeRecordingTracer()
  const program = runRow(row).pipe(
    Effect.tap(({ exit }) =>
      Exit.match(exit, {
        onFailure: (cause) =>
          Effect.logError("refresh failed", cause).pipe(
            Effect.zipRight(Effect.logWarning(Cause.squash(cause))),
            Effect.annotateLogs({ error: Cause.squash(cause) })
          ),
        onSuccess: (response) => Effect.logInfo("refreshed", response).pipe(Effect.annotateLogs({ response }))
      })
    ),
    Effect.withSpan("app.refresh"),
    Effect.withLogSpan("app.refresh"),
    Effect.withTracer(tracer),
    logs.provide
  )
  return Effect.map(program, (run): RowRun & { logs: Array<string>; spans: Array<RecordedSpan> } => ({
    ...run,
    logs: logs.lines,
    spans
  }))
}

for (const [layerName, layer] of layers) {
  describe(`no canary leaks (${layerName})`, () => {
    for (const row of errorTable) {
      it.effect(row.name, () =>
        Effect.gen(function*() {
          const { exit, logs, requests, spans } = yield* observedRun(row)

          // The canaries really were on the wire (when the request reached the scripted server).
          if (row.target === undefined) {
            assert(requests.length === 1)
            expect(requests[0]!.form.refresh_token).toBe(CANARY.refreshToken)
            expect(requests[0]!.headers.authorization).toContain(canaries[4]![1])
          }

          if (Exit.isFailure(exit)) {
            const error = Cause.squash(exit.cause)
            assert(RefreshError.isRefreshError(error))
            expect(error._tag).toBe(row.expectTag)
            assertClean("err.message", error.message)
            assertClean("String(err)", String(error))
            assertClean("util.inspect(err)", inspect(error))
            assertClean("JSON.stringify(err)", JSON.stringify(error))
            assertClean("err.stack", error instanceof Error ? error.stack ?? "" : "")
            if (error._tag !== "ConfigurationError" && error._tag !== "Aborted") {
              assertClean("encoded err", JSON.stringify(Schema.encodeSync(RefreshError.RefreshError)(error)))
            }
            assertClean("Cause.pretty", Cause.pretty(exit.cause, { renderErrorCause: true }))
            assertClean("util.inspect(exit)", inspect(exit))
          } else {
            const response = exit.value
            expect(row.expectTag).toBe("Success")
            for (const text of [String(response), inspect(response), JSON.stringify(response)]) {
              assertClean("token response", text)
              expect(text).toContain("<redacted>")
            }
          }

          // Logs: the application logged the outcome, so there is something to search.
          expect(logs.length).toBeGreaterThanOrEqual(1)
          logs.forEach((line, i) => assertClean(`log line ${i}`, line))

          // Spans: the attempt span was recorded, with attributes.
          const attempt = spans.find((s) => s.name === "renew.refresh.attempt")
          assert(attempt !== undefined, `spans: ${spans.map((s) => s.name).join(", ")}`)
          expect(attempt.ended).toBe(true)
          expect(attempt.attributes.get("oauth.client_id")).toBe(CLIENT_ID)
          if (row.expectTag !== "Success") {
            expect(attempt.attributes.get("error.type")).toBe(row.expectTag)
            assert(attempt.exception !== undefined)
          }
          // The attempt is the request's one CLIENT span: the HTTP client's own span is not recorded.
          expect(spans.some((s) => s.name.startsWith("http.client"))).toBe(false)
          spans.forEach((span) => assertClean(`span ${span.name}`, renderSpan(span)))
        }).pipe(Effect.provide(layer)))
    }
  })
}

// --- the recorders work (a leak would be seen) -----------------------------------------------------------------------

describe("the canary recorders", () => {
  it.effect("capture log lines, span attributes, events and exceptions", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const { spans, tracer } = makeRecordingTracer()
      yield* Effect.gen(function*() {
        yield* Effect.annotateCurrentSpan("leak", CANARY.accessToken)
        yield* Effect.logDebug("a line with", CANARY.clientSecret)
        const span = yield* Effect.currentSpan
        span.event("an event", 0n, { leak: CANARY.refreshToken })
        return yield* Effect.fail(new Error(CANARY.rotatedRefreshToken))
      }).pipe(Effect.withSpan("probe"), Effect.withTracer(tracer), logs.provide, Effect.ignore)
      const probe = spans.find((s) => s.name === "probe")
      assert(probe !== undefined)
      const rendered = renderSpan(probe)
      expect(rendered).toContain(CANARY.accessToken)
      expect(rendered).toContain(CANARY.refreshToken)
      expect(rendered).toContain(CANARY.rotatedRefreshToken)
      expect(logs.lines.join("\n")).toContain(CANARY.clientSecret)
      expect(() => assertClean("probe", rendered)).toThrow()
    }))
})

// --- models --------------------------------------------------------------------------------------------------------

describe("token models print <redacted>", () => {
  const response = new Token.TokenResponse({
    access_token: Redacted.make(CANARY.accessToken),
    token_type: "Bearer",
    expires_in: 3600,
    refresh_token: Redacted.make(CANARY.rotatedRefreshToken),
    scope: "api:read"
  })

  it("TokenResponse", () => {
    for (const text of [String(response), inspect(response), JSON.stringify(response)]) {
      assertClean("TokenResponse", text)
      expect(text).toContain("<redacted>")
    }
    expect(JSON.parse(JSON.stringify(response))).toMatchObject({
      access_token: "<redacted>",
      refresh_token: "<redacted>",
      scope: "api:read"
    })
  })

  it("Token.Grant (from input and from a response)", () => {
    const fromInput = Either.getOrThrow(Token.grantFromInput(
      { accessToken: CANARY.accessToken, refreshToken: CANARY.refreshToken, expiresIn: 3600, scope: "api:read" },
      { now: 1_000_000, defaultLifetime: "1 hour", version: 0 }
    ))
    const fromResponse = Token.grantFromResponse(response, fromInput, { now: 2_000_000, defaultLifetime: "1 hour" })
    for (const grant of [fromInput, fromResponse]) {
      assert(grant instanceof Token.Grant)
      for (const text of [String(grant), inspect(grant), JSON.stringify(grant)]) {
        assertClean("Grant", text)
        expect(text).toContain("<redacted>")
      }
      expect(JSON.parse(JSON.stringify(grant))).toMatchObject({ accessToken: "<redacted>", refreshToken: "<redacted>" })
    }
    // ...while the values are still there for the code that needs them.
    expect(Redacted.value(fromInput.accessToken!)).toBe(CANARY.accessToken)
    expect(Redacted.value(fromResponse.refreshToken!)).toBe(CANARY.rotatedRefreshToken)
  })

  it("a log line and a span attribute carrying a Grant", () =>
    Effect.runPromise(Effect.gen(function*() {
      const logs = captureLogs()
      const { spans, tracer } = makeRecordingTracer()
      const grant = Either.getOrThrow(Token.grantFromInput(
        { accessToken: CANARY.accessToken, refreshToken: CANARY.refreshToken },
        { now: 0, defaultLifetime: "1 hour", version: 0 }
      ))
      yield* Effect.logInfo("grant", grant).pipe(
        Effect.zipRight(Effect.annotateCurrentSpan("grant", grant)),
        Effect.withSpan("app.grant"),
        Effect.withTracer(tracer),
        logs.provide
      )
      expect(logs.lines).toHaveLength(1)
      assertClean("log line", logs.lines[0]!)
      const span = spans.find((s) => s.name === "app.grant")
      assert(span !== undefined)
      expect(span.attributes.has("grant")).toBe(true)
      assertClean("span", renderSpan(span))
    })))
})
