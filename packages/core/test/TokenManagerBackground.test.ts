/**
 * The Promise facade's `background` option (the RefreshScheduler in the manager's runtime) and its events
 * (`reauthRequired`, `failing`, `recovered`), against a real loopback token endpoint. The facade runs on the real
 * clock, so every wait polls for the state it needs with a generous deadline (only a hang fails it) and nothing asserts
 * how long anything took; sweeps are counted at the store.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { RefreshError, TokenManager, TokenStore } from "@renew/core"
import {
  type ScriptedTokenEndpoint,
  seenErrors,
  startScriptedTokenEndpoint
} from "@renew/scripted-endpoint-fixture"
import { Effect, Layer } from "effect"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Sweeps every 50 ms, so a test waits tens of milliseconds for one, not seconds. */
const FAST = { intervalSeconds: 0.05 } as const

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls until `done()` (up to 30 s: a loaded machine is slow, only a hang fails). */
const until = async (what: string, done: () => boolean): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** A memory store whose sweeps are counted: every sweep of a scheduler reads the backlog once. */
const countedStore = () => {
  const store = Effect.runSync(TokenStore.makeMemory)
  const scheduling = store.scheduling!
  let sweeps = 0
  const counted = TokenStore.TokenStore.of({
    ...store,
    scheduling: { ...scheduling, backlog: (now) => Effect.suspend(() => (sweeps++, scheduling.backlog(now))) }
  })
  return { layer: Layer.succeed(TokenStore.TokenStore, counted), sweeps: () => sweeps }
}

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
    // One attempt per refresh: a scripted failure is the refresh's outcome.
    retry: { maxAttempts: 1 },
    ...options
  })
  cleanups.push(() => tokens.dispose())
  return tokens
}

/** Every state-change event, in order. */
const recordAll = (tokens: TokenManager.TokenManager) => {
  const seen: Array<TokenManager.ReauthRequiredEvent | TokenManager.FailingEvent | TokenManager.RecoveredEvent> = []
  for (const name of ["reauthRequired", "failing", "recovered"] as const) tokens.on(name, (event) => seen.push(event))
  return seen
}

const seedDue = (tokens: TokenManager.TokenManager, endpoint: ScriptedTokenEndpoint, key: string) =>
  tokens.setGrant(key, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })

const unavailable = { kind: "respond", status: 503, body: { error: "temporarily_unavailable" } } as const

describe("TokenManager: background refresh", () => {
  it("refreshes a due grant with no caller, and keeps its new token for the next caller", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { background: FAST })
    await seedDue(tokens, endpoint, "u1")
    await endpoint.waitForRequests(1)
    await until("the refreshed grant to be stored", () => endpoint.issuedTokens.length === 1)
    // The caller arrives after the scheduler's refresh: served the new token, and no second request.
    assert.strictEqual(await tokens.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("starts with the manager: a grant already due in the store is refreshed before any call is made", async () => {
    const endpoint = await startEndpoint()
    const store = countedStore()
    // As after a restart: the grant was stored by an earlier process.
    const earlier = manager(endpoint, { store: store.layer })
    await seedDue(earlier, endpoint, "u1")
    await earlier.dispose()
    manager(endpoint, { store: store.layer, background: FAST })
    await endpoint.waitForRequests(1)
    const later = manager(endpoint, { store: store.layer })
    await until("the refreshed grant to be stored", () => endpoint.issuedTokens.length === 1)
    assert.strictEqual(await later.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("reauthRequired fires once when the server answers invalid_grant; the dead grant is not claimed again", async () => {
    const endpoint = await startEndpoint()
    const store = countedStore()
    const tokens = manager(endpoint, { store: store.layer, background: FAST })
    const events = recordAll(tokens)
    endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant", error_description: "revoked" } })
    const before = Date.now()
    await seedDue(tokens, endpoint, "user-7")
    await until("reauthRequired", () => events.length > 0)
    const after = Date.now()
    const event = events[0]!
    assert.strictEqual(event.type, "reauthRequired")
    assert.deepStrictEqual(
      { key: event.key, reason: (event as TokenManager.ReauthRequiredEvent).reason, errorTag: (event as TokenManager.ReauthRequiredEvent).errorTag },
      { key: "user-7", reason: "invalid_grant", errorTag: "InvalidGrant" }
    )
    assert.include(event.message, "authorize again")
    assert.isTrue(event.at >= before - 1000 && event.at <= after + 1000, "at is the epoch milliseconds of the change")
    // Callers get the typed error without a request, and later sweeps find nothing to claim.
    const error = await tokens.getAccessToken("user-7").then(() => undefined, (e: unknown) => e)
    assert.instanceOf(error, RefreshError.InvalidGrant)
    const sweeps = store.sweeps()
    await until("three more sweeps", () => store.sweeps() >= sweeps + 3)
    assert.deepStrictEqual(events.map((e) => e.type), ["reauthRequired"])
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("a listener that throws or rejects is logged and harmless: other listeners, refreshes and callers go on", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { background: FAST })
    const unhandled: Array<unknown> = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    process.on("unhandledRejection", onUnhandled)
    cleanups.push(async () => void process.off("unhandledRejection", onUnhandled))
    let thrown = 0
    for (const name of ["reauthRequired", "failing", "recovered"] as const) {
      tokens.on(name, () => {
        thrown++
        throw new Error(`listener bug on ${name}`)
      })
      tokens.on(name, async () => {
        thrown++
        throw new Error(`async listener bug on ${name}`)
      })
    }
    const events = recordAll(tokens)
    endpoint.script(unavailable)
    await seedDue(tokens, endpoint, "u1")
    await until("failing", () => events.length >= 1)
    // A forced refresh succeeds, reported as recovered despite the throwing listeners.
    await tokens.refresh("u1")
    await until("recovered", () => events.length >= 2)
    assert.deepStrictEqual(events.map((e) => [e.type, e.key]), [["failing", "u1"], ["recovered", "u1"]])
    assert.strictEqual((events[0] as TokenManager.FailingEvent).errorTag, "ServerError")
    assert.strictEqual(await tokens.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 2)
    // The scheduler still refreshes other grants.
    await seedDue(tokens, endpoint, "u2")
    await endpoint.waitForRequests(3)
    await until("u2's refresh to be stored", () => endpoint.issuedTokens.length === 2)
    assert.strictEqual(await tokens.getAccessToken("u2"), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(thrown, 4, "both bad listeners were called for failing and recovered")
    await sleep(50)
    assert.deepStrictEqual(unhandled, [], "no unhandled rejection")
  })

  it("once fires for the next event only; off removes a listener", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint)
    const all = recordAll(tokens)
    const first: Array<string> = []
    const removed: Array<string> = []
    const removedListener = (event: TokenManager.FailingEvent) => void removed.push(event.key)
    tokens.once("failing", (event) => void first.push(event.key)).on("failing", removedListener)
    tokens.off("failing", removedListener)
    endpoint.script(unavailable, unavailable)
    for (const key of ["a", "b"]) {
      await seedDue(tokens, endpoint, key)
      await tokens.getAccessToken(key).catch(() => undefined)
    }
    await until("two failing events", () => all.length >= 2)
    assert.deepStrictEqual(all.map((e) => [e.type, e.key]), [["failing", "a"], ["failing", "b"]])
    assert.deepStrictEqual(first, ["a"])
    assert.deepStrictEqual(removed, [])
  })

  it("dispose() stops the scheduler: no sweep after it, and a due grant stays unrefreshed", async () => {
    const endpoint = await startEndpoint()
    const store = countedStore()
    const background = manager(endpoint, { store: store.layer, background: FAST })
    await until("two sweeps", () => store.sweeps() >= 2)
    await background.dispose()
    const sweeps = store.sweeps()
    // The same store through a manager without a scheduler: a due grant there is refreshed only by a caller.
    const plain = manager(endpoint, { store: store.layer })
    await seedDue(plain, endpoint, "u1")
    await sleep(1_000) // twenty sweep intervals
    assert.strictEqual(store.sweeps(), sweeps, "no sweep after dispose()")
    assert.strictEqual(endpoint.refreshRequests, 0)
    assert.strictEqual(await plain.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("no event carries the client secret or a token, even when the server echoes them back", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint, { background: FAST })
    const events = recordAll(tokens)
    const dying = endpoint.mintRefreshToken()
    const failing = endpoint.mintRefreshToken()
    const echo = (refreshToken: string) => `bad token ${refreshToken} for client secret ${CLIENT_SECRET}`
    endpoint.script(
      { kind: "respond", status: 503, body: { error: "temporarily_unavailable", error_description: echo(failing) } },
      { kind: "respond", status: 400, body: { error: "invalid_grant", error_description: echo(dying) } }
    )
    await tokens.setGrant("fails", { accessToken: "at_secret_1", refreshToken: failing, expiresIn: 0 })
    await until("failing", () => events.length === 1)
    await tokens.setGrant("dies", { accessToken: "at_secret_2", refreshToken: dying, expiresIn: 0 })
    await until("reauthRequired", () => events.length === 2)
    await tokens.refresh("fails")
    await until("recovered", () => events.length === 3)
    assert.deepStrictEqual(events.map((e) => e.type).sort(), ["failing", "reauthRequired", "recovered"])
    const canary = seenErrors(CLIENT_SECRET)
    for (const event of events) canary.add(event)
    canary.assertNoSecrets(endpoint, ["at_secret_1", "at_secret_2"])
    for (const event of events) assert.notInclude(JSON.stringify(event), CLIENT_SECRET)
  })

  it("refuses a misspelt option, an unknown event or a listener that is not a function, at once", async () => {
    const endpoint = await startEndpoint()
    const refused = (f: () => unknown) => {
      try {
        f()
      } catch (error) {
        return error as RefreshError.ConfigurationError
      }
      return assert.fail("not refused")
    }
    const create = (background: unknown) => () =>
      TokenManager.createTokenManager({
        tokenEndpoint: endpoint.url,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        background: background as TokenManager.BackgroundOptions
      })
    assert.strictEqual(refused(create({ interval: 5 })).option, "background.interval")
    assert.strictEqual(refused(create({ intervalSeconds: 0 })).option, "background.intervalSeconds")
    assert.strictEqual(refused(create({ maxPerSecond: 2.5 })).option, "background.maxPerSecond")
    assert.strictEqual(refused(create("yes")).option, "background")
    const tokens = manager(endpoint)
    const byName = refused(() => tokens.on("reauth_required" as "reauthRequired", () => undefined))
    assert.strictEqual(byName._tag, "ConfigurationError")
    assert.include(byName.message, "refreshed, failure, reauthRequired, failing, recovered, alert")
    assert.strictEqual(refused(() => tokens.on("failing", "log" as unknown as () => void)).option, "listener")
  })
})
