/**
 * The fleet herd (SF-1, SF-2, SF-3): 4 separate OS processes (test/fleet/child.ts) × 1,000 concurrent callers ask for
 * the access token of ONE expired grant kept in a shared store (Redis, then PostgreSQL). Exactly one token request
 * reaches the server, and every caller of every process gets the same new access token: the winner refreshes under
 * the lease, the others find the new grant when they re-read under the lease.
 *
 * Against the scripted loopback endpoint (started here; children get its URL in RENEW_TOKEN_URL), and against the real
 * oidc-provider fixture with refresh-token rotation and reuse detection on: a second refresher presenting the old
 * refresh token would have revoked the grant, so "a further refresh works" proves nobody did.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { type AuthServer, startAuthServer } from "@renew/auth-server-fixture"
import { Refresher, Token, TokenEndpoint, TokenStore } from "@renew/core"
import { PgTokenStore } from "@renew/store-postgres"
import { RedisTokenStore } from "@renew/store-redis"
import { Context, Effect, Layer, Logger, LogLevel, Redacted, type Scope } from "effect"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import { Engine, Services } from "@renew/store-testkit"
import { type ChildEvent, spawnChild } from "../support/fleetChild.js"

const { CLIENT_ID, CLIENT_SECRET, scriptedEndpoint } = Engine

const redis = await Services.redis()
const postgres = await Services.postgres()
Services.skipNotice(redis, postgres)

const CHILDREN = 4
const CALLERS = 1000
const NAMESPACE_REDIS = `renew-fleet:${process.pid}:${Date.now()}:`
const NAMESPACE_PG = `renew_fleet_${process.pid}_${Date.now().toString(36)}`

const fingerprint = (token: string) => createHash("sha256").update(token).digest("hex").slice(0, 16)

interface Backend {
  readonly kind: "redis" | "postgres"
  readonly url: string
  readonly namespace: string
  readonly layer: Layer.Layer<TokenStore.TokenStore, unknown>
}

const backends: ReadonlyArray<Backend & { readonly available: boolean }> = [
  {
    kind: "redis",
    available: redis.available,
    url: Services.REDIS_URL,
    namespace: NAMESPACE_REDIS,
    layer: RedisTokenStore.layer({ url: Redacted.make(Services.REDIS_URL), prefix: NAMESPACE_REDIS })
  },
  {
    kind: "postgres",
    available: postgres.available,
    url: Services.DATABASE_URL,
    namespace: NAMESPACE_PG,
    layer: PgTokenStore.layer({ url: Redacted.make(Services.DATABASE_URL), schema: NAMESPACE_PG, maxConnections: 2 })
  }
]

const quietStore = (backend: Backend) =>
  backend.layer.pipe(Layer.orDie, Layer.provide(Logger.minimumLogLevel(LogLevel.Error)))

/** Stores an expired grant holding `refreshToken`. */
const seed = (backend: Backend, key: string, refreshToken: string) =>
  Effect.flatMap(TokenStore.TokenStore, (store) =>
    store.compareAndSet(
      key,
      undefined,
      new Token.Grant({
        accessToken: Redacted.make("at_initial_expired"),
        refreshToken: Redacted.make(refreshToken),
        tokenType: "Bearer",
        issuedAt: Date.now() - 120_000,
        expiresAt: Date.now() - 60_000,
        version: 0
      })
    )).pipe(Effect.provide(quietStore(backend)))

interface HerdOutcome {
  readonly results: ReadonlyArray<ChildEvent>
  /** From "go" to the last child's last caller served. */
  readonly wallMs: number
}

/** Starts the children, waits until all are ready, releases them at once, and collects their results. */
const runHerd = (
  backend: Backend,
  key: string,
  endpoint: { readonly url: string; readonly clientId: string; readonly clientSecret: string; readonly authMethod: string }
): Effect.Effect<HerdOutcome, never, Scope.Scope> =>
  Effect.gen(function*() {
    const children = Array.from({ length: CHILDREN }, () =>
      spawnChild({
        RENEW_STORE: backend.kind,
        RENEW_STORE_URL: backend.url,
        RENEW_NAMESPACE: backend.namespace,
        RENEW_MODE: "herd",
        RENEW_KEY: key,
        RENEW_CALLERS: String(CALLERS),
        RENEW_TOKEN_URL: endpoint.url,
        RENEW_CLIENT_ID: endpoint.clientId,
        RENEW_CLIENT_SECRET: endpoint.clientSecret,
        RENEW_AUTH_METHOD: endpoint.authMethod
      }))
    yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.signal("SIGKILL"))))
    yield* Effect.promise(() => Promise.all(children.map((child) => child.waitFor("ready"))))
    const started = performance.now()
    for (const child of children) child.go()
    const results = yield* Effect.promise(() => Promise.all(children.map((child) => child.waitFor("result"))))
    const wallMs = performance.now() - started
    yield* Effect.promise(() => Promise.all(children.map((child) => child.exited)))
    return { results, wallMs }
  })

const assertEveryCallerServed = (outcome: HerdOutcome, expectedToken: string) => {
  const expected = fingerprint(expectedToken)
  for (const result of outcome.results) {
    assert.deepStrictEqual(result["errors"], {}, "no caller failed")
    assert.strictEqual(result["served"], CALLERS)
    assert.deepStrictEqual(result["tokens"], { [expected]: CALLERS }, "every caller got the one new access token")
    // SF-2: the process's callers were coalesced before the distributed lock: at most one lock sequence each.
    assert.isAtMost(Number(result["lockCalls"]), 1)
  }
}

const report = (label: string, outcome: HerdOutcome, requests: number) =>
  console.log(
    `[fleet] ${label}: ${CHILDREN}×${CALLERS} callers, ${requests} token request(s), wall ${outcome.wallMs.toFixed(0)} ms, ` +
      `per child ${outcome.results.map((r) => Number(r["elapsedMs"]).toFixed(0)).join("/")} ms`
  )

for (const backend of backends) {
  describe.runIf(backend.available)(`fleet herd on ${backend.kind}`, () => {
    it.scopedLive(`${CHILDREN} processes × ${CALLERS} callers on one expired grant: one token request, every caller served (SF-1)`, () =>
      Effect.gen(function*() {
        const endpoint = yield* scriptedEndpoint({ latencyMs: 100 })
        const key = `herd-scripted-${Date.now()}`
        yield* seed(backend, key, endpoint.mintRefreshToken())
        const outcome = yield* runHerd(backend, key, {
          url: endpoint.url,
          clientId: CLIENT_ID,
          clientSecret: CLIENT_SECRET,
          authMethod: "client_secret_basic"
        })
        report(`${backend.kind}, scripted endpoint`, outcome, endpoint.refreshRequests)
        assert.strictEqual(endpoint.refreshRequests, 1, "exactly one token request across the fleet")
        assertEveryCallerServed(outcome, endpoint.lastIssued()!.accessToken)
      }), { timeout: 240_000 })

    it.scopedLive("with rotation and reuse detection (oidc-provider): one token request, every caller served, the grant stays alive", () =>
      Effect.gen(function*() {
        const server: AuthServer = yield* Effect.acquireRelease(
          Effect.promise(() => startAuthServer({ rotation: true, accessTokenTtlSeconds: 300 })),
          (server) => Effect.promise(() => server.close())
        )
        const client = server.clients.basic
        const obtained = yield* Effect.promise(() => server.obtainGrant())
        server.resetCounters()
        const key = `herd-oidc-${Date.now()}`
        yield* seed(backend, key, obtained.refreshToken)
        const outcome = yield* runHerd(backend, key, {
          url: server.tokenEndpoint,
          clientId: client.clientId,
          clientSecret: client.clientSecret,
          authMethod: client.authMethod
        })
        report(`${backend.kind}, oidc-provider with rotation`, outcome, server.tokenRequests.refresh)
        assert.strictEqual(server.tokenRequests.refresh, 1, "exactly one token request across the fleet")
        const stored = yield* Effect.flatMap(TokenStore.TokenStore, (store) => store.get(key)).pipe(
          Effect.provide(quietStore(backend)),
          Effect.map((grant) => grant._tag === "Some" ? grant.value : undefined)
        )
        assert.isDefined(stored)
        assertEveryCallerServed(outcome, Redacted.value(stored!.accessToken!))
        assert.notStrictEqual(Redacted.value(stored!.refreshToken!), obtained.refreshToken, "the refresh token was rotated")
        // The grant is alive: the rotated refresh token works (a double refresh would have tripped reuse detection and
        // revoked the whole grant).
        const next = yield* Effect.flatMap(Refresher.Refresher, (refresher) => refresher.refresh(key)).pipe(
          Effect.provide(
            Refresher.layer({ forcedRefreshCooldown: 0 }).pipe(
              Layer.provide(TokenEndpoint.layer({
                url: server.tokenEndpoint,
                clientId: client.clientId,
                clientSecret: Redacted.make(client.clientSecret)
              })),
              Layer.provide(NodeHttpClient.layerUndici),
              Layer.provide(quietStore(backend)),
              Layer.orDie
            )
          )
        )
        assert.strictEqual(server.tokenRequests.refresh, 2)
        assert.isAbove(next.version, stored!.version)
        const introspection = yield* Effect.promise(() => server.introspect(Redacted.value(next.refreshToken!)))
        assert.isTrue(introspection.active)
      }), { timeout: 240_000 })
  })
}

afterAll(async () => {
  if (redis.available) {
    const client = new Redis(Services.REDIS_URL)
    const keys = await client.keys(`${NAMESPACE_REDIS}*`)
    if (keys.length > 0) await client.del(...keys)
    client.disconnect()
  }
  if (postgres.available) {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(PgClient.layer({ url: Redacted.make(Services.DATABASE_URL), maxConnections: 1 }))
      yield* Context.get(context, SqlClient.SqlClient).unsafe(`DROP SCHEMA IF EXISTS ${NAMESPACE_PG} CASCADE`)
    })))
  }
})
