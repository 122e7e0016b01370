/**
 * examples/node-otel.ts (the README's OpenTelemetry Node SDK example), run for real: its NodeSDK with an in-memory
 * span exporter, a loopback token endpoint, one request to its node:http server.
 */
import * as OtelApi from "@opentelemetry/api"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { afterAll, assert, describe, it } from "vitest"
import { start } from "../../examples/node-otel.js"

afterAll(() => {
  OtelApi.trace.disable()
  OtelApi.metrics.disable()
  OtelApi.context.disable()
  OtelApi.propagation.disable()
})

describe("examples/node-otel.ts", () => {
  it("the refresh a request started is a child of the request's span", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })
    const spans = new InMemorySpanExporter()
    const service = await start(
      { TOKEN_URL: endpoint.url, CLIENT_ID: "my-app", CLIENT_SECRET: "s3cret-value", REFRESH_TOKEN: endpoint.mintRefreshToken() },
      { spanProcessors: [new SimpleSpanProcessor(spans)], metricReaders: [], logRecordProcessors: [], autoDetectResources: false }
    )
    let finished: ReturnType<typeof spans.getFinishedSpans> = []
    try {
      const response = await fetch(`${service.url}/orders`)
      assert.strictEqual(response.status, 200)
      assert.include(await response.text(), "calling the API")
      // Read before close(): shutting the SDK down empties the in-memory exporter.
      finished = spans.getFinishedSpans()
    } finally {
      await service.close()
      await endpoint.close()
    }
    assert.strictEqual(endpoint.refreshRequests, 1)
    const request = finished.find((span) => span.name === "GET /orders")!
    const refresh = finished.find((span) => span.name === "renew.refresh")!
    assert.isDefined(request)
    assert.isDefined(refresh)
    assert.strictEqual(refresh.parentSpanContext?.spanId, request.spanContext().spanId)
    assert.strictEqual(refresh.spanContext().traceId, request.spanContext().traceId)
  })
})
