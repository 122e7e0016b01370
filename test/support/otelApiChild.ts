/**
 * Started by test/observability/OtelBridge.test.ts as
 * `node --import tsx --import test/support/register-src.mjs test/support/otelApiChild.ts`: a plain Node process using
 * the Promise facade, first without any OpenTelemetry SDK, then with a TracerProvider registered after the manager
 * was created. Prints one JSON line with what it saw.
 */
import { TokenManager } from "@renew/core"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { createRequire } from "node:module"
import { sep } from "node:path"

/** Whether `@opentelemetry/api` was loaded (Renew loads it with `require`, so it would be in the require cache). */
const apiLoaded = () =>
  Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes(`${sep}@opentelemetry${sep}api${sep}`))

const endpoint = await startScriptedTokenEndpoint({ clientId: "child", clientSecret: "cs_child-secret" })
const tokens = TokenManager.createTokenManager({
  tokenEndpoint: endpoint.url,
  clientId: "child",
  clientSecret: "cs_child-secret"
})
await tokens.setGrant("k", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
const first = await tokens.getAccessToken("k")
const loadedWithoutSdk = apiLoaded()

// The application starts its SDK only now (ESM imports: they do not touch the require cache).
const { trace } = await import("@opentelemetry/api")
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import("@opentelemetry/sdk-trace-base")
const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
await tokens.refresh("k")
const loadedWithSdk = apiLoaded()

await tokens.dispose()
await endpoint.close()
console.log(JSON.stringify({
  refreshed: first === endpoint.issuedTokens[0]?.accessToken,
  loadedWithoutSdk,
  loadedWithSdk,
  spans: exporter.getFinishedSpans().map((span) => `${span.instrumentationScope.name} ${span.name}`).sort()
}))
