/**
 * A plain Node service (no Effect) instrumented with the OpenTelemetry Node SDK. Renew records its spans and metrics
 * through the SDK the application started; a refresh started by a request shows inside that request's trace.
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_METRICS_EXPORTER=otlp \
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... REFRESH_TOKEN=... \
 *   npx tsx examples/node-otel.ts
 */
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api"
import { NodeSDK, type NodeSDKConfiguration } from "@opentelemetry/sdk-node"
import { TokenManager } from "@renew/core"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export const start = async (env: Record<string, string | undefined>, sdkOptions: Partial<NodeSDKConfiguration> = {}) => {
  // The SDK first: it registers the global TracerProvider and MeterProvider that Renew records through.
  const sdk = new NodeSDK({ serviceName: "orders-api", ...sdkOptions })
  sdk.start()

  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: env.TOKEN_URL!,
    clientId: env.CLIENT_ID!,
    clientSecret: env.CLIENT_SECRET
    // telemetry: false would keep Renew out of the SDK.
  })
  // As stored when the user signed in an hour ago: the access token has expired, the first request refreshes it.
  await tokens.setGrant("user-42", { accessToken: "at_signed_in", refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })

  // With @opentelemetry/instrumentation-http the SDK opens this SERVER span itself; here it is done by hand.
  const tracer = trace.getTracer("orders-api")
  const server = createServer((req, res) =>
    tracer.startActiveSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER }, async (span) => {
      try {
        const accessToken = await tokens.getAccessToken("user-42") // renew.refresh is a child of this span
        res.end(`calling the API with a token of ${accessToken.length} characters`)
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR })
        res.statusCode = 502
        res.end((error as { _tag?: string })._tag)
      } finally {
        span.end()
      }
    })
  )
  await new Promise<void>((resolve) => server.listen(Number(env.PORT ?? 0), "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise((resolve) => server.close(resolve))
      await tokens.dispose()
      await sdk.shutdown() // flushes the last spans and metrics
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  start(process.env).then(async (service) => {
    console.log(await (await fetch(`${service.url}/orders`)).text())
    await service.close()
  }, () => process.exit(1))
}
