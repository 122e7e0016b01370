/**
 * The Promise facade's per-call `{ signal, deadlineMs }` and its `deadlineMs` option, against a real loopback token
 * endpoint that hangs. The deadline logic itself is proven on the TestClock (CallerDeadline.test.ts); here the facade
 * runs on the real clock, so one test asserts the real-time bound and the rest wait for states.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { RefreshError, TokenManager, TokenStore } from "@renew/core"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

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
    ...options
  })
  cleanups.push(() => tokens.dispose())
  return tokens
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** A promise's outcome, and whether it has settled yet. */
const watch = <A>(promise: Promise<A>) => {
  const state: { settled: boolean; value?: A; error?: unknown } = { settled: false }
  const done = promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error })
  )
  return { state, done }
}

/** Calls until one resolves (up to 30 s of real time: only a hang fails it); the errors seen on the way. */
const callUntilServed = async (tokens: TokenManager.TokenManager, key: string) => {
  const deadline = Date.now() + 30_000
  const errors: Array<string> = []
  for (;;) {
    try {
      return { token: await tokens.getAccessToken(key), errors }
    } catch (error) {
      errors.push((error as RefreshError.RefreshError)._tag)
      if (Date.now() > deadline) assert.fail(`no token within 30 s; errors: ${errors.join(", ")}`)
      await sleep(200)
    }
  }
}

describe("TokenManager: a caller's deadline and signal", () => {
  it("a hung endpoint: { deadlineMs: 2000 } rejects within 2.1 s with Timeout; the refresh goes on; a later call gets the token", async () => {
    const endpoint = await startEndpoint()
    // The first request hangs; the endpoint answers normally afterwards ("recovers").
    endpoint.script({ kind: "hang" })
    const tokens = manager(endpoint, { timeoutMs: 3_000 })
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const started = performance.now()
    const leaving = watch(tokens.getAccessToken("u1", { deadlineMs: 2_000 }))
    const staying = watch(tokens.getAccessToken("u1"))
    await leaving.done
    const elapsed = performance.now() - started
    // The acceptance bound, in real time: the deadline is a timer on the live clock, and what separates its
    // firing from the rejection is a few microtasks. The 100 ms margin is for a loaded machine's timer lag (a few ms
    // on a quiet one); a caller held until the refresh's own end would take 3 s (the per-attempt timeout).
    assert.isAtMost(elapsed, 2_100, `rejected after ${elapsed.toFixed(0)} ms`)
    assert.isAtLeast(elapsed, 1_990, "not before the deadline")
    const error = leaving.state.error as RefreshError.Timeout
    assert.instanceOf(error, RefreshError.Timeout)
    assert.strictEqual(error.limit, "deadline")
    assert.strictEqual(error.timeoutMillis, 2_000)
    assert.include(error.message, "deadline")
    // The shared refresh is still running for the caller that stayed, and sent one request.
    assert.isFalse(staying.state.settled, "the other caller still waits")
    assert.strictEqual(endpoint.refreshRequests, 1)
    // It ends on its own terms: the attempt's timeout, not the caller's deadline.
    await staying.done
    const attempt = staying.state.error as RefreshError.Timeout
    assert.instanceOf(attempt, RefreshError.Timeout)
    assert.notStrictEqual(attempt.limit, "deadline")
    // The endpoint answers again: a later call gets a token (after the engine's retry interval for an unanswered one).
    const { errors, token } = await callUntilServed(tokens, "u1")
    assert.strictEqual(token, endpoint.lastIssued()!.accessToken)
    assert.includeMembers(["Timeout"], errors, "only the unanswered refresh's replayed error meanwhile")
  }, 120_000)

  it("an AbortSignal: the call rejects with Aborted (AbortError, cause the reason) while the others get the token", async () => {
    const endpoint = await startEndpoint()
    // Answers after 400 ms: long enough to abort a caller while the request is out.
    endpoint.script({ kind: "issue", delayMs: 400 })
    const tokens = manager(endpoint)
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const controller = new AbortController()
    const leaving = watch(tokens.getAccessToken("u1", { signal: controller.signal }))
    const staying = watch(tokens.getAccessToken("u1"))
    await endpoint.waitForRequests(1)
    const reason = new Error("the client hung up")
    controller.abort(reason)
    await leaving.done
    const error = leaving.state.error as RefreshError.Aborted
    assert.instanceOf(error, RefreshError.Aborted)
    assert.strictEqual(error.name, "AbortError")
    assert.strictEqual(error.cause, reason)
    assert.isFalse(staying.state.settled)
    await staying.done
    assert.strictEqual(staying.state.value, endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
    // A signal aborted before the call: rejected at once, no refresh started.
    await tokens.setGrant("u2", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const early = await tokens.getAccessToken("u2", { signal: AbortSignal.abort("gone") }).catch((e: unknown) => e)
    assert.instanceOf(early, RefreshError.Aborted)
    assert.strictEqual((early as Error).cause, "gone")
    await sleep(100)
    assert.strictEqual(endpoint.refreshRequests, 1)
    // A fresh token is served whatever the options: no wait to bound.
    assert.strictEqual(
      await tokens.getAccessToken("u1", { signal: AbortSignal.abort(), deadlineMs: 1 }),
      endpoint.lastIssued()!.accessToken
    )
  })

  it("the manager's deadlineMs applies to every call that gives none; refresh() takes the same options", async () => {
    const endpoint = await startEndpoint()
    endpoint.script({ kind: "issue", delayMs: 1_500 }, { kind: "issue", delayMs: 1_500 })
    const tokens = manager(endpoint, { deadlineMs: 300 })
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const byDefault = await tokens.getAccessToken("u1").catch((e: unknown) => e)
    assert.instanceOf(byDefault, RefreshError.Timeout)
    assert.strictEqual((byDefault as RefreshError.Timeout).timeoutMillis, 300)
    // The call's own deadline wins over the manager's: this one waits for the refresh started above.
    assert.strictEqual(await tokens.getAccessToken("u1", { deadlineMs: 30_000 }), endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
    const forced = await tokens.refresh("u2-missing", { deadlineMs: 30_000 }).catch((e: unknown) => e)
    assert.instanceOf(forced, RefreshError.GrantNotFound)
    await tokens.setGrant("u3", { accessToken: "at_3", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
    const slowRefresh = await tokens.refresh("u3").catch((e: unknown) => e)
    assert.instanceOf(slowRefresh, RefreshError.Timeout)
    assert.strictEqual((slowRefresh as RefreshError.Timeout).limit, "deadline")
  })

  it("the deadline counts from the call, also while the manager's store is still connecting", async () => {
    const endpoint = await startEndpoint()
    const slowStore = Layer.effect(TokenStore.TokenStore, Effect.delay(TokenStore.makeMemory, "3 seconds"))
    const tokens = manager(endpoint, { store: slowStore })
    const started = performance.now()
    const error = await tokens.getAccessToken("u1", { deadlineMs: 300 }).catch((e: unknown) => e)
    const elapsed = performance.now() - started
    assert.instanceOf(error, RefreshError.Timeout)
    assert.isBelow(elapsed, 2_500, "ended by the deadline, not by the store's 3 s")
    // Once connected, the store answers as usual.
    assert.instanceOf(await tokens.getAccessToken("u1").catch((e: unknown) => e), RefreshError.GrantNotFound)
  })

  it("refuses a bad deadline or signal with ConfigurationError", async () => {
    const endpoint = await startEndpoint()
    const tokens = manager(endpoint)
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    for (const options of [{ deadlineMs: 0 }, { deadlineMs: -5 }, { deadlineMs: Number.NaN }, { signal: "stop" }]) {
      const error = await tokens.getAccessToken("u1", options as TokenManager.CallOptions).catch((e: unknown) => e)
      assert.instanceOf(error, RefreshError.ConfigurationError, JSON.stringify(options))
    }
    assert.throws(() => manager(endpoint, { deadlineMs: 0 }), /deadlineMs/)
    assert.strictEqual(endpoint.refreshRequests, 0)
  })
})
