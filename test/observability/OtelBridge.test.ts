/**
 * The bridge from Effect spans to the OpenTelemetry API (`OpenTelemetry.layerTracer`, `layerGlobal`, and the Promise
 * facade through it): status per OpenTelemetry's conventions, no deployment paths in anything exported, and no
 * `@opentelemetry/api` loaded by an application that has no SDK.
 */
import * as OtelApi from "@opentelemetry/api"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { OpenTelemetry } from "@renew/core"
import { Cause, Effect, Fiber } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "vitest"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

const recorded = () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const run = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.runPromiseExit(Effect.provide(effect, OpenTelemetry.layerTracer(OtelApi, provider)))
  return { exporter, run, span: (name: string) => exporter.getFinishedSpans().find((span) => span.name === name)! }
}

describe("OpenTelemetry bridge", () => {
  it("the instrumentation scope is @renew/core at package.json's version; other spans keep a scope of their own", async () => {
    const manifest = JSON.parse(Fs.readFileSync(`${ROOT}/packages/core/package.json`, "utf8"))
    assert.deepStrictEqual(OpenTelemetry.scope, { name: "@renew/core", version: manifest.version })
    const { run, span } = recorded()
    await run(Effect.withSpan(Effect.void, "renew.refresh").pipe(Effect.withSpan("app.handler")))
    assert.strictEqual(span("renew.refresh").instrumentationScope.name, "@renew/core")
    assert.strictEqual(span("renew.refresh").parentSpanContext?.spanId, span("app.handler").spanContext().spanId)
    assert.strictEqual(span("app.handler").instrumentationScope.name, "effect")
  })

  it("success and interruption stay UNSET; a failure is ERROR with error.type and an exception event without a stack", async () => {
    const { run, span } = recorded()
    class Refused extends Error {
      readonly _tag = "Refused"
    }
    await run(Effect.withSpan(Effect.void, "ok"))
    await run(Effect.withSpan(Effect.fail(new Refused("the server said no")), "failed"))
    await run(Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.withSpan(Effect.never, "interrupted"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
    }))
    assert.strictEqual(span("ok").status.code, OtelApi.SpanStatusCode.UNSET)
    assert.strictEqual(span("interrupted").status.code, OtelApi.SpanStatusCode.UNSET)
    const failed = span("failed")
    assert.deepStrictEqual(failed.status, { code: OtelApi.SpanStatusCode.ERROR, message: "the server said no" })
    assert.strictEqual(failed.attributes["error.type"], "Refused")
    assert.deepStrictEqual(failed.events.map((e) => [e.name, e.attributes]), [
      ["exception", { "exception.type": "Refused", "exception.message": "the server said no" }]
    ])
  })

  it("no absolute path in a defect's stack, a captured span stack, or a logged cause", async () => {
    const { exporter, run, span } = recorded()
    const defect = new TypeError("unexpected")
    assert.include(defect.stack!, ROOT, "the stack really holds absolute paths")
    await run(
      Effect.logError("renew: refresh died", Cause.die(defect)).pipe(
        Effect.zipRight(Effect.die(defect)),
        // The default captureStackTrace: a `code.stacktrace` attribute.
        Effect.withSpan("died")
      )
    )
    const died = span("died")
    assert.strictEqual(died.attributes["error.type"], "TypeError")
    const exception = died.events.find((e) => e.name === "exception")!
    assert.include(String(exception.attributes!["exception.stacktrace"]), "OtelBridge.test.ts:")
    assert.include(String(died.attributes["code.stacktrace"]), "OtelBridge.test.ts:")
    const logged = died.events.find((e) => e.name === "renew: refresh died")!
    assert.include(String(logged.attributes!["effect.cause"]), "unexpected")
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => [s.attributes, s.events, s.status]))
    assert.notInclude(text, ROOT)
    assert.notInclude(text, "file://")
  })

  it("without an SDK the facade never loads @opentelemetry/api; an SDK started later is picked up", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--import", `${ROOT}/test/support/register-src.mjs`, `${ROOT}/test/support/otelApiChild.ts`],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    assert.strictEqual(code, 0, stderr)
    const line = stdout.split("\n").find((l) => l.startsWith("{\"refreshed\""))
    assert.isDefined(line, stdout)
    assert.deepStrictEqual(JSON.parse(line!), {
      refreshed: true,
      loadedWithoutSdk: false,
      loadedWithSdk: true,
      spans: ["@renew/core renew.lock.wait", "@renew/core renew.refresh", "@renew/core renew.refresh.attempt"]
    })
  })

  it("layerGlobal does nothing while no provider is registered", async () => {
    const registered = (globalThis as { [key: symbol]: { trace?: unknown } | undefined })[
      Symbol.for("opentelemetry.js.api.1")
    ]
    assert.isUndefined(registered?.trace, "no TracerProvider registered in this process")
    const nativeSpan = await Effect.runPromise(Effect.makeSpan("renew.refresh").pipe(Effect.map((span) => span.constructor)))
    const spanUnderLayer = await Effect.runPromise(Effect.provide(
      Effect.map(Effect.makeSpan("renew.refresh"), (span) => span.constructor),
      OpenTelemetry.layerGlobal
    ))
    assert.strictEqual(spanUnderLayer, nativeSpan, "Effect's own span while no provider is registered")
  })
})
