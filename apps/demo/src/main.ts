/**
 * `npm start`: the Renew demo in one Node process, on loopback.
 *
 *   authorization server (oidc-provider)  ←  chaos proxy  ←  client service (Renew)  →  protected API
 *                                       ↖──────────── introspection ─────────────────────┘
 *
 * Ctrl-C (SIGINT) or SIGTERM interrupts the program: every server is a scoped resource, closed in reverse order
 * (client service, Renew's store, API, proxy, authorization server after saving its state), and the telemetry layer
 * last, so the last spans are flushed.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Otel } from "@renew/opentelemetry"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Runtime from "effect/Runtime"
import * as AuthServer from "./authServer.js"
import * as ChaosProxy from "./chaosProxy.js"
import * as Client from "./client.js"
import { ConfigError, type DemoConfig, parseConfig, usage } from "./config.js"
import { event, loggerLayer, storyTracer } from "./output.js"
import * as ResourceApi from "./resourceApi.js"

// The demo's service name in Jaeger, unless OTEL_SERVICE_NAME says otherwise.
const configProvider = ConfigProvider.fromEnv().pipe(
  ConfigProvider.orElse(() => ConfigProvider.fromJson({ OTEL_SERVICE_NAME: "renew-demo" }))
)
const TelemetryLive = Otel.layerConfig.pipe(Layer.provide(Layer.setConfigProvider(configProvider)))

const tracesLine = Effect.map(
  Effect.withConfigProvider(Otel.config, configProvider),
  (resolved) =>
    resolved?.traces === undefined
      ? "not exported (OTEL_EXPORTER_OTLP_ENDPOINT is not set). To see every refresh as a trace in Jaeger: " +
        "docker compose -f apps/demo/docker-compose.yml up -d, then OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 npm start, " +
        "and open http://localhost:16686"
      : `every refresh is a trace, exported to ${resolved.traces.url} as service "${resolved.serviceName}" (Jaeger UI: http://localhost:16686)`
)

const demo = (config: DemoConfig) =>
  Effect.gen(function*() {
    const traces = yield* tracesLine
    // Node callbacks (the proxy, the API) tell their events through the same logger.
    const runtime = yield* Effect.runtime<never>()
    const say = (category: string) => (text: string) => Runtime.runSync(runtime)(event(category, text))
    const issued: Client.Issued = { refreshTokenFingerprint: undefined }

    const auth = yield* AuthServer.start(config)
    const proxy = yield* ChaosProxy.start({
      target: auth.server.issuer,
      log: say("chaos"),
      onRefreshTokenIssued: (refreshToken) => {
        issued.refreshTokenFingerprint = AuthServer.fingerprint(refreshToken)
      }
    })
    const api = yield* ResourceApi.start({ server: auth.server, client: auth.apiClient, log: say("api") })
    return yield* Client.run({ config, auth, proxy, api, issued, traces: traces })
  })

const main = (config: DemoConfig) =>
  Effect.gen(function*() {
    // Registered first, so it runs last: after every server is closed.
    yield* Effect.addFinalizer((exit) =>
      event("demo", Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? "stopped after an error" : "stopped cleanly")
    )
    const tracer = yield* Effect.tracer
    const exporting = (yield* Effect.withConfigProvider(Otel.config, configProvider))?.traces !== undefined
    return yield* demo(config).pipe(
      Effect.withTracer(storyTracer(tracer, { print: config.logFormat === "story", traceIds: exporting })),
      Effect.tapErrorCause((cause) => {
        if (Cause.isInterruptedOnly(cause)) return Effect.void
        const failure = Cause.failureOption(cause)
        return event(
          "error",
          failure._tag === "Some" && failure.value instanceof Error ? failure.value.message : Cause.pretty(cause),
          LogLevel.Error
        )
      })
    )
  }).pipe(
    Effect.scoped,
    Effect.provide(loggerLayer(config.logFormat)),
    // Outermost: closed last, so every span recorded above is flushed.
    Effect.provide(TelemetryLive)
  )

let config: DemoConfig | undefined
try {
  config = parseConfig(process.argv.slice(2), process.env)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`${error.message}\n\n${usage}\n`)
  process.exit(2)
}
if (config === undefined) {
  process.stdout.write(`${usage}\n`)
} else {
  // The story (or logfmt) logger is the only logger: no pretty logger from runMain, and errors are told above.
  NodeRuntime.runMain(main(config), { disableErrorReporting: true, disablePrettyLogger: true })
}
