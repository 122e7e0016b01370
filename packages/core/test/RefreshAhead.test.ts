/**
 * Refresh-ahead (AWS SDK CachedSupplier's prefetch/stale, Caffeine's refreshAfterWrite): past `expiresAt − skew` the
 * first call starts one background refresh and every call is answered at once with the still-valid token; only past
 * `expiresAt − minValidity` do callers wait. Effect API on the TestClock against a real loopback server; the Promise
 * facade in real time.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, Token, TokenManager, TokenStore } from "@renew/core"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Clock, Effect, Layer, Logger, Redacted, TestClock } from "effect"
import { seenErrors } from "./support/canary.js"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint } from "./support/harness.js"
import { realSleep } from "./support/time.js"

const KEY = "user-1"
const INITIAL = "at_initial"
/** 20 s tokens, prefetch 10 s before expiry, stale 5 s before (the default minValidity). */
const OPTIONS = { skew: "10 seconds", retry: { maxAttempts: 1 } } as const

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** Seeds a grant whose access token was issued at the TestClock's now and expires exactly 20 s later. */
const seed20s = (refreshToken: string) =>
  Effect.flatMap(Effect.all([Refresher.Refresher, Clock.currentTimeMillis]), ([refresher, now]) =>
    refresher.setGrant(KEY, { accessToken: INITIAL, refreshToken, expiresAt: now + 20_000 }))

/** Polls (in real time, up to 30 s: only a hang fails it) until the engine serves a token other than `than`. */
const servedOtherThan = (than: string) =>
  Effect.gen(function*() {
    const refresher = yield* Refresher.Refresher
    const deadline = Date.now() + 30_000
    for (;;) {
      const token = Redacted.value(yield* refresher.getAccessToken(KEY))
      if (token !== than) return token
      if (Date.now() > deadline) return assert.fail(`the background refresh never replaced ${than}`)
      yield* realSleep(10)
    }
  })

const tokenOf = Effect.flatMap(Refresher.Refresher, (refresher) => refresher.getAccessToken(KEY)).pipe(
  Effect.map(Redacted.value)
)

describe("refresh-ahead", () => {
  it.scoped("past the prefetch point every call gets the current token at once while one background refresh runs", () =>
    Effect.gen(function*() {
      // The answer takes 1.5 s of real time: calls made while it is outstanding must not wait for it.
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      endpoint.script({ kind: "issue", delayMs: 1_500, expiresIn: 20 })
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("9 seconds")
        assert.strictEqual(yield* tokenOf, INITIAL)
        assert.strictEqual(endpoint.refreshRequests, 0, "before the prefetch point nothing is refreshed")
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* tokenOf, INITIAL, "the call that crosses the prefetch point is not held")
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        for (let i = 0; i < 100; i++) assert.strictEqual(yield* tokenOf, INITIAL)
        assert.strictEqual(endpoint.issuedTokens.length, 0, "those 100 calls were answered before the refresh ended")
        const next = yield* servedOtherThan(INITIAL)
        assert.strictEqual(next, endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
    }))

  it.scoped("10,000 callers arriving at the prefetch point: all answered with the current token, one request", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("10 seconds")
        const tokens = yield* Effect.all(
          Array.from({ length: 10_000 }, () => Effect.map(refresher.getAccessToken(KEY), Redacted.value)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(new Set(tokens), new Set([INITIAL]))
        yield* servedOtherThan(INITIAL)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
    }))

  it.scoped("callers every 10 ms for 60 s of 20 s tokens, endpoint answering in 200 ms: no call waits, one refresh per lifetime", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20, latencyMs: 200 })
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        let current = INITIAL
        let changes = 0
        let waited = 0
        for (let at = 0; at < 60_000; at += 10) {
          // A call that waited for the endpoint would see a token response built while it ran.
          const answersBefore = endpoint.issuedTokens.length
          const token = yield* tokenOf
          if (endpoint.issuedTokens.length !== answersBefore) waited++
          if (token !== current) {
            current = token
            changes++
          }
          // Let a background refresh's real HTTP exchange finish before the clock reaches the stale point.
          if (endpoint.refreshRequests > changes) {
            current = yield* servedOtherThan(current)
            changes++
          }
          yield* TestClock.adjust("10 millis")
        }
        assert.strictEqual(waited, 0, "calls that waited for the token endpoint")
        // 20 s tokens prefetched 10 s before expiry: a refresh every 10 s of the 60.
        assert.isAtLeast(endpoint.refreshRequests, 5)
        assert.isAtMost(endpoint.refreshRequests, 6)
        assert.strictEqual(changes, endpoint.refreshRequests, "each refresh's token was served")
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
    }), { timeout: 120_000 })

  it.scoped("past the stale point the caller waits for the refresh and gets the new token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("16 seconds")
        const token = yield* tokenOf
        assert.strictEqual(token, endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
    }))

  it.scoped("refreshAhead: false makes the first caller past the skew point wait, as before", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("11 seconds")
        assert.strictEqual(yield* tokenOf, endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { ...OPTIONS, refreshAhead: false } })))
    }))

  it.scoped("a failing background refresh: the valid token is served until the stale point, then the typed error", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      const unavailable = { kind: "respond", status: 503, body: { error: "temporarily_unavailable" } } as const
      endpoint.script(...Array.from({ length: 20 }, () => unavailable))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("10 seconds")
        const served: Array<string> = []
        // From the prefetch point to just before the stale point (15 s), in 500 ms steps.
        for (let at = 10_000; at < 15_000; at += 500) {
          served.push(yield* tokenOf)
          yield* Effect.promise(() => endpoint.waitForRequests(Math.min(endpoint.requests.length, 1)))
          yield* realSleep(20)
          yield* TestClock.adjust("500 millis")
        }
        assert.deepStrictEqual(new Set(served), new Set([INITIAL]))
        // One background attempt, asked again after the stale-retry interval (5 s): at most two before the stale point.
        assert.isAtLeast(endpoint.refreshRequests, 1)
        assert.isAtMost(endpoint.refreshRequests, 2)
        const failure = yield* Effect.flip(tokenOf)
        seen.add(failure)
        assert.strictEqual(failure._tag, "ServerError")
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
      seen.assertNoSecrets(endpoint)
    }))

  it.scoped("a background refresh answered invalid_grant: the valid token until the stale point, then InvalidGrant", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant" } })
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* tokenOf, INITIAL)
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        // The answer is processed in real time; the token stays served meanwhile and afterwards.
        for (let i = 0; i < 20; i++) {
          assert.strictEqual(yield* tokenOf, INITIAL)
          yield* realSleep(10)
        }
        yield* TestClock.adjust("4999 millis")
        assert.strictEqual(yield* tokenOf, INITIAL)
        yield* TestClock.adjust("1 millis")
        const failure = yield* Effect.flip(tokenOf)
        assert.instanceOf(failure, RefreshError.InvalidGrant)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })))
    }))

  it.scoped("the refresh says it was a prefetch (renew.trigger)", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ accessTokenTtlSeconds: 20 })
      const lines: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ annotations, message }) => {
          const trigger = [...annotations].find(([name]) => name === "trigger")
          lines.push(`${String(message)} ${String(trigger?.[1])}`)
        })
      )
      yield* Effect.gen(function*() {
        yield* seed20s(endpoint.mintRefreshToken())
        yield* TestClock.adjust("11 seconds")
        yield* tokenOf
        yield* servedOtherThan(INITIAL)
      }).pipe(Effect.provide(engine(endpoint, { refresher: OPTIONS })), Effect.provide(capture))
      assert.isTrue(lines.some((line) => line.includes("(prefetch)") && line.endsWith(" prefetch")), lines.join("\n"))
    }))
})

describe("refresh-ahead through the Promise facade", () => {
  it("a call past the prefetch point resolves with the current token while the refresh is outstanding", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    cleanups.push(() => endpoint.close())
    // The refresh answers only after 1.5 s of real time.
    endpoint.script({ kind: "issue", delayMs: 1_500, expiresIn: 3600 })
    // A grant issued 50 s ago with 30 s left: past the 60 s prefetch point, well before the 5 s stale point, found
    // in the store by a manager with a cold cache (a restarted process).
    const store = Effect.runSync(TokenStore.makeMemory)
    Effect.runSync(store.compareAndSet(KEY, undefined, new Token.Grant({
      accessToken: Redacted.make(INITIAL),
      refreshToken: Redacted.make(endpoint.mintRefreshToken()),
      tokenType: "Bearer",
      issuedAt: Date.now() - 50_000,
      expiresAt: Date.now() + 30_000,
      version: 0
    })))
    const manager = TokenManager.createTokenManager({
      tokenEndpoint: endpoint.url,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      skewSeconds: 60,
      store: Layer.succeed(TokenStore.TokenStore, store)
    })
    cleanups.push(() => manager.dispose())
    assert.strictEqual(await manager.getAccessToken(KEY), INITIAL)
    await endpoint.waitForRequests(1)
    assert.strictEqual(await manager.getAccessToken(KEY), INITIAL)
    assert.strictEqual(endpoint.issuedTokens.length, 0, "answered before the refresh ended")
    const deadline = Date.now() + 30_000
    let token = INITIAL
    while (token === INITIAL && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      token = await manager.getAccessToken(KEY)
    }
    assert.strictEqual(token, endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
  })
})
