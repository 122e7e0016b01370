import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { BearerClient, Refresher } from "@renew/core"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { engine, scriptedEndpoint } from "./support/harness.js"

const KEY = "user-7"

/** A resource server that accepts exactly the bearer tokens `accepts` says yes to, and records what it saw. */
const resourceServer = (accepts: (token: string | undefined) => boolean) =>
  Effect.acquireRelease(
    Effect.async<{ url: string; seen: Array<string | undefined>; close: () => Promise<void> }>((resume) => {
      const seen: Array<string | undefined> = []
      const server = createServer((req, res) => {
        const token = req.headers.authorization?.replace(/^Bearer /, "")
        seen.push(token)
        if (accepts(token)) {
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }))
        } else {
          res.writeHead(401, { "www-authenticate": "Bearer error=\"invalid_token\"" }).end()
        }
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({
          url: `http://127.0.0.1:${port}/me`,
          seen,
          close: () => new Promise<void>((done) => server.close(() => done()))
        }))
      })
    }),
    (server) => Effect.promise(() => server.close())
  )

describe("BearerClient", () => {
  it.scopedLive("sends the grant's access token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const api = yield* resourceServer((token) => token === "at_good")
      yield* Effect.gen(function*() {
        yield* (yield* Refresher.Refresher).setGrant(KEY, { accessToken: "at_good", refreshToken: "rt_1", expiresIn: 3600 })
        const client = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer(KEY))
        const response = yield* client.get(api.url)
        assert.strictEqual(response.status, 200)
        assert.deepStrictEqual(api.seen, ["at_good"])
        assert.strictEqual(endpoint.refreshRequests, 0)
      }).pipe(Effect.provide(Layer.merge(engine(endpoint), NodeHttpClient.layerUndici)))
    }))

  it.scopedLive("on a 401 it refreshes once and replays the request with the new token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      // The resource server only knows tokens the authorization server issued: the seeded one was revoked early.
      const api = yield* resourceServer((token) => token !== undefined && token === endpoint.lastIssued()?.accessToken)
      yield* Effect.gen(function*() {
        yield* (yield* Refresher.Refresher).setGrant(KEY, {
          accessToken: "at_revoked_early",
          refreshToken: endpoint.mintRefreshToken(),
          expiresIn: 3600
        })
        const client = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer(KEY))
        const response = yield* client.get(api.url)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(endpoint.refreshRequests, 1)
        assert.deepStrictEqual(api.seen, ["at_revoked_early", endpoint.lastIssued()!.accessToken])
        // Later requests use the refreshed token straight away.
        yield* client.get(api.url)
        assert.strictEqual(api.seen.length, 3)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(Layer.merge(engine(endpoint), NodeHttpClient.layerUndici)))
    }))

  it.scopedLive("a second 401 reaches the caller as an ordinary response, and 401 storms do not become refresh storms", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const api = yield* resourceServer(() => false)
      yield* Effect.gen(function*() {
        yield* (yield* Refresher.Refresher).setGrant(KEY, {
          accessToken: "at_x",
          refreshToken: endpoint.mintRefreshToken(),
          expiresIn: 3600
        })
        const client = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer(KEY))
        const response = yield* client.get(api.url)
        assert.strictEqual(response.status, 401)
        assert.strictEqual(api.seen.length, 2, "one replay only")
        assert.strictEqual(endpoint.refreshRequests, 1)
        const many = yield* Effect.all(Array.from({ length: 20 }, () => client.get(api.url)), { concurrency: 5 })
        assert.isTrue(many.every((r) => r.status === 401))
        assert.strictEqual(endpoint.refreshRequests, 1, "the forced-refresh cooldown absorbs the storm")
        // A cooldown far longer than any stall: the storm is absorbed by the rule, not by how fast this runs.
      }).pipe(Effect.provide(Layer.merge(engine(endpoint, { refresher: { forcedRefreshCooldown: "1 hour" } }), NodeHttpClient.layerUndici)))
    }))

  it.scopedLive("a dead grant surfaces as the typed refresh error", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const api = yield* resourceServer(() => false)
      yield* Effect.gen(function*() {
        yield* (yield* Refresher.Refresher).setGrant(KEY, {
          accessToken: "at_x",
          refreshToken: "rt_never_issued",
          expiresIn: 3600
        })
        const client = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer(KEY))
        const error = yield* Effect.flip(client.get(api.url))
        assert.strictEqual(error._tag, "InvalidGrant")
      }).pipe(Effect.provide(Layer.merge(engine(endpoint), NodeHttpClient.layerUndici)))
    }))
})
