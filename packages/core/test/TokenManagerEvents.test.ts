/**
 * The Promise facade's per-refresh events (`refreshed`, `failure`) and the failure-rate `alert`, beside the state
 * changes of TokenManagerBackground.test.ts; and `getGrantInfo`. Against a real loopback token endpoint on the real
 * clock: every wait polls for the state it needs (only a hang fails it).
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { RefreshError, TokenManager } from "@renew/core"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const unavailable = { kind: "respond", status: 503, body: { error: "temporarily_unavailable" } } as const

const startEndpoint = async () => {
  const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  cleanups.push(() => endpoint.close())
  return endpoint
}

const manager = (endpoint: ScriptedTokenEndpoint, options: Partial<TokenManager.TokenManagerOptions> = {}) => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    logger: false,
    // One attempt per refresh unless a test says otherwise: a scripted failure is the refresh's outcome.
    retry: { maxAttempts: 1 },
    ...options
  })
  cleanups.push(() => tokens.dispose())
  return tokens
}

type AnyEvent = TokenManager.TokenManagerEvents[TokenManager.TokenManagerEventName]

const ALL = ["refreshed", "failure", "reauthRequired", "failing", "recovered", "alert"] as const

/** Every event of every kind, in order. */
const recordAll = (tokens: TokenManager.TokenManager) => {
  const seen: Array<AnyEvent> = []
  for (const name of ALL) tokens.on(name, (event: AnyEvent) => void seen.push(event))
  return seen
}

const ofType = <K extends TokenManager.TokenManagerEventName>(events: ReadonlyArray<AnyEvent>, type: K) =>
  events.filter((event): event is TokenManager.TokenManagerEvents[K] => event.type === type)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls until `done()` (up to 30 s: a loaded machine is slow, only a hang fails). */
const until = async (what: string, done: () => boolean): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

const seedDue = (tokens: TokenManager.TokenManager, endpoint: ScriptedTokenEndpoint, key: string) =>
  tokens.setGrant(key, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })

describe("TokenManager events", () => {
  it("refreshed: one per refresh however many callers waited, with its trigger and expiry", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint)
    const events = recordAll(tokens)
    await seedDue(tokens, endpoint, "u1")
    const before = Date.now()
    const all = await Promise.all(Array.from({ length: 50 }, () => tokens.getAccessToken("u1")))
    assert.strictEqual(new Set(all).size, 1)
    await tokens.refresh("u1")
    await until("two refreshed events", () => events.length >= 2)
    await sleep(50)
    assert.deepStrictEqual(events.map((e) => e.type), ["refreshed", "refreshed"])
    const [due, forced] = ofType(events, "refreshed")
    assert.include(due, { key: "u1", clientId: CLIENT_ID, trigger: "due", attempts: 1, scope: "read write" })
    assert.strictEqual(forced!.trigger, "forced")
    // The scripted server issues 1-hour tokens.
    assert.approximately(due!.expiresAt - before, 3_600_000, 60_000)
    assert.isTrue(due!.at >= before && due!.at <= Date.now())
    assert.isTrue(Object.isFrozen(due))
    assert.strictEqual(endpoint.refreshRequests, 2)
  })

  it("failure: each refresh that reached the endpoint and failed, after its retries; calls refused without a request add none", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, {
      retry: { maxAttempts: 2, initialDelay: "10 millis", maxDelay: "10 millis" },
      failureRateAlert: false
    })
    const events = recordAll(tokens)
    endpoint.script(unavailable, unavailable)
    await seedDue(tokens, endpoint, "u1")
    const error = await tokens.getAccessToken("u1").catch((e: unknown) => e)
    assert.instanceOf(error, RefreshError.ServerError)
    await until("failure and failing", () => events.length >= 2)
    // Calls during the retry interval get the same error without a request, and report nothing new.
    for (let i = 0; i < 5; i++) assert.instanceOf(await tokens.getAccessToken("u1").catch((e: unknown) => e), RefreshError.ServerError)
    await sleep(100)
    assert.strictEqual(endpoint.refreshRequests, 2)
    assert.sameMembers(events.map((e) => e.type), ["failure", "failing"])
    const [failure] = ofType(events, "failure")
    assert.include(failure, {
      key: "u1",
      clientId: CLIENT_ID,
      trigger: "due",
      attempts: 2,
      errorTag: "ServerError",
      retryable: true,
      servedStale: false
    })
    assert.include(failure!.message, "HTTP 503")
    // A dead grant: one failure (with reauthRequired); the calls after it are refused without a request.
    endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant" } })
    await seedDue(tokens, endpoint, "u2")
    await tokens.getAccessToken("u2").catch(() => undefined)
    await tokens.getAccessToken("u2").catch(() => undefined)
    await until("the dead grant's events", () => events.length >= 4)
    await sleep(100)
    assert.deepStrictEqual(
      events.slice(2).map((e) => e.type).sort(),
      ["failure", "reauthRequired"]
    )
  })

  it("failure with servedStale: a refresh of a still-valid token failed, and callers got that token", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { refreshAhead: false, skewSeconds: 60, minValiditySeconds: 0 })
    const events = recordAll(tokens)
    // A 6 s token is due after 3 s (the skew is at most half the lifetime) and valid until 6 s.
    await tokens.setGrant("u1", { accessToken: "at_still_valid", refreshToken: endpoint.mintRefreshToken(), expiresIn: 6 })
    await sleep(3_100)
    endpoint.script(unavailable)
    assert.strictEqual(await tokens.getAccessToken("u1"), "at_still_valid")
    await until("the failure", () => ofType(events, "failure").length === 1)
    assert.include(ofType(events, "failure")[0], { errorTag: "ServerError", servedStale: true, attempts: 1 })
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("alert: raised when the failure ratio crosses the threshold, cleared when refreshes succeed again", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { failureRateAlert: { threshold: 0.5, minVolume: 2, windowSeconds: 300 } })
    const events = recordAll(tokens)
    endpoint.script(unavailable, unavailable)
    for (const key of ["a", "b"]) {
      await seedDue(tokens, endpoint, key)
      await tokens.getAccessToken(key).catch(() => undefined)
    }
    await until("the alert", () => ofType(events, "alert").length === 1)
    const [raised] = ofType(events, "alert")
    assert.include(raised, { state: "raised", clientId: CLIENT_ID, failures: 2, total: 2, ratio: 1, windowMillis: 300_000 })
    assert.deepStrictEqual(raised!.byTag, { ServerError: 2 })
    assert.include(raised!.message, "2 of 2 refreshes")
    // Three successes: 2 of 5 failed, under the threshold.
    for (const key of ["c", "d", "e"]) {
      await seedDue(tokens, endpoint, key)
      await tokens.getAccessToken(key)
    }
    await until("the clear", () => ofType(events, "alert").length === 2)
    assert.include(ofType(events, "alert")[1], { state: "cleared", failures: 2, total: 5 })
  })

  it("listeners of the new events follow EventEmitter's rules; a throwing one breaks nothing", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint)
    const unhandled: Array<unknown> = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on("unhandledRejection", onUnhandled)
    cleanups.push(() => void process.off("unhandledRejection", onUnhandled))
    const seen: Array<string> = []
    tokens
      .on("refreshed", () => {
        throw new Error("listener bug")
      })
      .on("refreshed", async () => {
        throw new Error("async listener bug")
      })
      .once("refreshed", ({ key }) => void seen.push(`once ${key}`))
      .on("refreshed", ({ key }) => void seen.push(`on ${key}`))
    const removed = () => void seen.push("removed")
    tokens.on("failure", removed).off("failure", removed)
    assert.strictEqual(tokens.listenerCount("refreshed"), 4)
    assert.strictEqual(tokens.listenerCount("failure"), 0)
    await seedDue(tokens, endpoint, "u1")
    assert.strictEqual(await tokens.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    endpoint.script(unavailable)
    await seedDue(tokens, endpoint, "u2")
    await tokens.getAccessToken("u2").catch(() => undefined)
    await seedDue(tokens, endpoint, "u3")
    await tokens.getAccessToken("u3")
    await until("both refreshed events", () => seen.length >= 3)
    await sleep(50)
    assert.deepStrictEqual(seen, ["once u1", "on u1", "on u3"])
    assert.strictEqual(tokens.listenerCount("refreshed"), 3)
    assert.deepStrictEqual(unhandled, [])
  })

  it("no payload carries the client secret or a token, even when the server echoes them", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { failureRateAlert: { minVolume: 1 }, background: { intervalSeconds: 0.05 } })
    const events = recordAll(tokens)
    const echo = (refreshToken: string) => `bad token ${refreshToken} for client secret ${CLIENT_SECRET}`
    const failing = endpoint.mintRefreshToken()
    const dying = endpoint.mintRefreshToken()
    endpoint.script(
      { kind: "respond", status: 503, body: { error: "temporarily_unavailable", error_description: echo(failing) } },
      { kind: "respond", status: 400, body: { error: "invalid_grant", error_description: echo(dying) } }
    )
    await tokens.setGrant("fails", { accessToken: "at_secret_1", refreshToken: failing, expiresIn: 0 })
    await until("failing", () => ofType(events, "failing").length === 1)
    await tokens.setGrant("dies", { accessToken: "at_secret_2", refreshToken: dying, expiresIn: 0 })
    await until("reauthRequired", () => ofType(events, "reauthRequired").length === 1)
    await tokens.refresh("fails")
    await until("recovered", () => ofType(events, "recovered").length === 1)
    assert.includeMembers(events.map((e) => e.type), ["refreshed", "failure", "reauthRequired", "failing", "recovered", "alert"])
    const text = JSON.stringify(events)
    for (const secret of [CLIENT_SECRET, "at_secret_1", "at_secret_2", ...endpoint.knownRefreshTokens, ...endpoint.issuedTokens.map((t) => t.accessToken)]) {
      assert.notInclude(text, secret)
    }
  })
})

describe("TokenManager getGrantInfo", () => {
  it("tells a grant's state, times, scope and client, never a token; undefined for no grant", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint)
    assert.isUndefined(await tokens.getGrantInfo("nobody"))

    const before = Date.now()
    await tokens.setGrant("u1", { accessToken: "at_secret", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600, scope: "read" })
    const fresh = (await tokens.getGrantInfo("u1"))!
    assert.include(fresh, {
      key: "u1",
      clientId: CLIENT_ID,
      state: "fresh",
      scope: "read",
      tokenType: "Bearer",
      hasAccessToken: true,
      hasRefreshToken: true,
      reauthReason: undefined,
      failingSince: undefined
    })
    assert.approximately(fresh.expiresAt - before, 3_600_000, 60_000)
    assert.strictEqual(fresh.refreshAt, fresh.expiresAt - 60_000, "due 60 s (skewSeconds) before expiry")
    assert.isTrue(fresh.lastRefreshedAt >= before && fresh.lastRefreshedAt <= Date.now())
    assert.notInclude(JSON.stringify(fresh), "at_secret")
    assert.notInclude(JSON.stringify(fresh), endpoint.knownRefreshTokens[0]!)

    await seedDue(tokens, endpoint, "u2")
    assert.strictEqual((await tokens.getGrantInfo("u2"))!.state, "expired")
    await tokens.getAccessToken("u2")
    const refreshed = (await tokens.getGrantInfo("u2"))!
    assert.strictEqual(refreshed.state, "fresh")
    assert.strictEqual(refreshed.scope, "read write")

    endpoint.script(unavailable)
    await seedDue(tokens, endpoint, "u3")
    await tokens.getAccessToken("u3").catch(() => undefined)
    const failing = (await tokens.getGrantInfo("u3"))!
    assert.strictEqual(failing.state, "failing")
    assert.isNumber(failing.failingSince)

    endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant" } })
    await seedDue(tokens, endpoint, "u4")
    await tokens.getAccessToken("u4").catch(() => undefined)
    assert.include(await tokens.getGrantInfo("u4"), { state: "needs_reauth", reauthReason: "invalid_grant" })

    await tokens.dispose()
    assert.instanceOf(await tokens.getGrantInfo("u1").catch((e: unknown) => e), RefreshError.EngineClosed)
  })
})
