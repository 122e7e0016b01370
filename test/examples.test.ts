import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { program, RenewLive } from "../examples/effect-app.js"
import { run } from "../examples/node-promise.js"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"

// The README's examples, run for real against loopback servers.
describe("examples", () => {
  it.live("examples/effect-app.ts refreshes, then calls the API with the new token", () =>
    Effect.gen(function*() {
      const endpoint = yield* Effect.acquireRelease(
        Effect.promise(() => startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })),
        (e) => Effect.promise(() => e.close())
      )
      const seen: Array<string | undefined> = []
      const api = yield* Effect.acquireRelease(
        Effect.async<{ url: string; close: () => void }>((resume) => {
          const server = createServer((req, res) => {
            seen.push(req.headers.authorization)
            res.writeHead(req.headers.authorization === `Bearer ${endpoint.lastIssued()?.accessToken}` ? 200 : 401).end()
          }).listen(0, "127.0.0.1", () =>
            resume(Effect.succeed({
              url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/me`,
              close: () => server.close()
            })))
        }),
        (server) => Effect.sync(() => server.close())
      )
      const status = yield* program({ refreshToken: endpoint.mintRefreshToken(), apiUrl: api.url }).pipe(
        Effect.provide(
          RenewLive({ tokenUrl: endpoint.url, clientId: "my-app", clientSecret: Redacted.make("s3cret-value") }).pipe(
            Layer.provide(NodeHttpClient.layerUndici)
          )
        )
      )
      assert.strictEqual(status, 200)
      assert.strictEqual(endpoint.refreshRequests, 1)
      assert.deepStrictEqual(seen, [`Bearer ${endpoint.lastIssued()!.accessToken}`])
    }).pipe(Effect.scoped))

  it("examples/node-promise.ts gets one access token for two concurrent callers", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })
    try {
      const token = await run({
        TOKEN_URL: endpoint.url,
        CLIENT_ID: "my-app",
        CLIENT_SECRET: "s3cret-value",
        REFRESH_TOKEN: endpoint.mintRefreshToken()
      })
      assert.strictEqual(token, endpoint.lastIssued()!.accessToken)
      assert.strictEqual(endpoint.refreshRequests, 1)
    } finally {
      await endpoint.close()
    }
  })
})
