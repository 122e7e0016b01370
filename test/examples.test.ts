import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { program, RenewLive } from "../examples/effect-app.js"
import { run } from "../examples/node-promise.js"
import { run as runProviderProfile } from "../examples/provider-profile.js"
import { run as runBackground } from "../examples/background-refresh.js"
import { run as runService } from "../examples/node-service.js"
import type { TokenManager } from "@renew/core"
import * as Scheduler from "../examples/scheduler.js"
import { RefreshEvents, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

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

  it("examples/provider-profile.ts: Slack's token_type bot is a token, its ok:false is an InvalidGrant with Slack's remedy", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })
    try {
      const env = { TOKEN_URL: endpoint.url, CLIENT_ID: "my-app", CLIENT_SECRET: "s3cret-value" }
      endpoint.script({ kind: "issue", expiresIn: 43200, extra: { ok: true, token_type: "bot" } })
      const ok = await runProviderProfile({ ...env, REFRESH_TOKEN: endpoint.mintRefreshToken() })
      assert.strictEqual(ok.token, endpoint.lastIssued()!.accessToken)
      endpoint.script({ kind: "respond", status: 200, body: { ok: false, error: "invalid_refresh_token" } })
      const dead = await runProviderProfile({ ...env, REFRESH_TOKEN: endpoint.mintRefreshToken() })
      assert.strictEqual(dead.providerCode, "invalid_refresh_token")
      assert.include(dead.reinstall ?? "", "installed again")
    } finally {
      await endpoint.close()
    }
  })

  it("examples/node-service.ts: logs to the given function, reports the refresh, gives up on a hung endpoint", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })
    try {
      const env = { TOKEN_URL: endpoint.url, CLIENT_ID: "my-app", CLIENT_SECRET: "s3cret-value" }
      const records: Array<TokenManager.LogRecord> = []
      const served = await runService({ ...env, REFRESH_TOKEN: endpoint.mintRefreshToken() }, {
        log: (record) => void records.push(record)
      })
      assert.strictEqual(served.accessToken, endpoint.lastIssued()!.accessToken)
      assert.strictEqual(served.state, "fresh")
      // A grant stored with only a refresh token is refreshed at once, in the background ("prefetch"); the call joins it.
      assert.deepStrictEqual(served.reported, ["refreshed user-42 (prefetch)"])
      assert.isDefined(records.find((r) => r.message === "renew: refreshed access token (prefetch)"))
      // The token endpoint hangs: the call stops waiting at its 2 s deadline and the handler answers without a token.
      endpoint.script({ kind: "hang" })
      const hung = await runService({ ...env, REFRESH_TOKEN: endpoint.mintRefreshToken() }, { log: () => undefined })
      assert.isUndefined(hung.accessToken)
      assert.strictEqual(hung.state, "expired")
    } finally {
      await endpoint.close()
    }
  })

  it("examples/background-refresh.ts: the scheduler refreshes the grant while nobody asks", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })
    try {
      const env = { TOKEN_URL: endpoint.url, CLIENT_ID: "my-app", CLIENT_SECRET: "s3cret-value" }
      const live = await runBackground({ ...env, REFRESH_TOKEN: endpoint.mintRefreshToken() })
      assert.strictEqual(live.accessToken, endpoint.lastIssued()!.accessToken)
      assert.strictEqual(endpoint.refreshRequests, 1)
      assert.deepStrictEqual(live.reported, [])
      // A refresh token the server does not know: the scheduler finds the grant dead and says so, once.
      const dead = await runBackground({ ...env, REFRESH_TOKEN: "rt_unknown_to_the_server" }, { waitMs: 60_000 })
      assert.isUndefined(dead.accessToken)
      assert.deepStrictEqual(dead.reported, ["reauthRequired user-42 (invalid_grant)"])
      assert.strictEqual(endpoint.refreshRequests, 2)
    } finally {
      await endpoint.close()
    }
  })

  it.live("examples/scheduler.ts refreshes a grant in the SQLite store with no caller, and reports a dead one", () =>
    Effect.gen(function*() {
      const endpoint = yield* Effect.acquireRelease(
        Effect.promise(() => startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "s3cret-value" })),
        (e) => Effect.promise(() => e.close())
      )
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-scheduler-example-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const events: Array<RefreshEvents.RefreshEvent> = []
      const live = Scheduler.RenewLive({
        tokenUrl: endpoint.url,
        clientId: "my-app",
        clientSecret: Redacted.make("s3cret-value"),
        store: SqliteTokenStore.layer({ filename: Path.join(dir, "grants.db") }),
        onEvent: (event) => Effect.zipRight(Scheduler.onEvent(event), Effect.sync(() => void events.push(event)))
      })
      const [version, dead] = yield* Effect.all([
        Scheduler.seedAndWait("user-42", endpoint.mintRefreshToken()),
        Scheduler.seedAndWait("user-7", "rt_unknown_to_the_server")
      ], { concurrency: 2 }).pipe(Effect.provide(live))
      assert.isAbove(version ?? 0, 1, "stored, then refreshed")
      assert.isUndefined(dead)
      assert.strictEqual(endpoint.refreshRequests, 2)
      assert.deepStrictEqual(events.map((event) => [event._tag, event.key]), [["ReauthRequired", "user-7"]])
      const stored = yield* Effect.flatMap(
        SqliteTokenStore.make({ filename: Path.join(dir, "grants.db") }),
        (store: TokenStore.TokenStore["Type"]) => store.get("user-42")
      )
      assert.strictEqual(
        stored._tag === "Some" ? Redacted.value(stored.value.accessToken!) : undefined,
        endpoint.lastIssued()!.accessToken
      )
    }).pipe(Effect.scoped))
})
