/**
 * A server's Retry-After is honoured, capped by `maxRetryAfter`, and never turned into starvation (issue 11, failures
 * 1 and 7). Effect API on the TestClock against a real loopback server; the Promise facade in real time.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenManager, TokenStore } from "@renew/core"
import { Effect, Either, Exit, Layer, Redacted, Schedule, TestClock } from "effect"
import { startScriptedTokenEndpoint, type Step } from "@renew/scripted-endpoint-fixture"
import { seenErrors } from "./support/canary.js"
import { fakeEndpoint, seedExpired as seedFakeExpired } from "./support/fakeEndpoint.js"
import { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint, seedExpired } from "./support/harness.js"
import { exitWithinTestClock } from "./support/time.js"

const KEY = "user-1"

const rateLimited = (seconds: number): Step => ({
  kind: "respond",
  status: 429,
  headers: { "retry-after": String(seconds) },
  body: { error: "slow_down" }
})

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe("Retry-After", () => {
  // Failure 1: every call blocked by the remembered Retry-After re-armed it, so the server was never asked again.
  it.scoped("calls every 250 ms on an expired grant: one request inside a Retry-After of 1 s, one after it, then tokens", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(rateLimited(1))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const log: Array<{ at: number; requests: number; result: string }> = []
        for (let at = 0; at <= 3000; at += 250) {
          const result = yield* Effect.either(refresher.getAccessToken(KEY))
          if (Either.isLeft(result)) seen.add(result.left)
          log.push({
            at,
            requests: endpoint.refreshRequests,
            result: Either.isRight(result) ? Redacted.value(result.right) : result.left._tag
          })
          if (at === 0) {
            assert.isTrue(Either.isLeft(result) && result.left._tag === "RateLimited")
            assert.strictEqual(Either.isLeft(result) && "retryAfterMillis" in result.left ? result.left.retryAfterMillis : 0, 1000)
          }
          yield* TestClock.adjust("250 millis")
        }
        const trace = JSON.stringify(log.map(({ at, requests, result }) => [at, requests, result.slice(0, 12)]))
        for (const entry of log.filter((e) => e.at < 1000)) {
          assert.strictEqual(entry.requests, 1, `a request inside the Retry-After window: ${trace}`)
        }
        assert.strictEqual(log[log.length - 1]!.requests, 2, `the server must be asked again once the pause ends: ${trace}`)
        const second = log.findIndex((e) => e.requests === 2)
        const issued = endpoint.lastIssued()!.accessToken
        for (const entry of log.slice(second)) assert.strictEqual(entry.result, issued, `after the pause: ${trace}`)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { retry: { maxAttempts: 1 } } })))
      seen.assertNoSecrets(endpoint)
    }))

  // Failure 1: the remembered pause is capped by maxRetryAfter, so a Retry-After of an hour costs at most 30 s.
  it.scoped("Retry-After: 3600 with maxRetryAfter 30 s: the caller fails at once, and the engine asks again after ~30 s", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(rateLimited(3600))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const first = yield* Effect.flip(refresher.getAccessToken(KEY))
        seen.add(first)
        assert.strictEqual(first._tag, "RateLimited")
        assert.strictEqual("retryAfterMillis" in first ? first.retryAfterMillis : 0, 3_600_000)
        for (let at = 1; at <= 40; at++) {
          yield* TestClock.adjust("1 second")
          const result = yield* Effect.either(refresher.getAccessToken(KEY))
          if (Either.isLeft(result)) seen.add(result.left)
          if (at < 30) {
            assert.strictEqual(endpoint.refreshRequests, 1, `a request at ${at} s, inside the capped pause`)
            assert.isTrue(Either.isLeft(result) && result.left._tag === "RateLimited", `at ${at} s`)
          }
          if (at >= 31) {
            assert.isTrue(Either.isRight(result), `at ${at} s the capped pause is over; got ${Either.isLeft(result) ? result.left._tag : ""}`)
          }
        }
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { maxRetryAfter: "30 seconds" } })))
      seen.assertNoSecrets(endpoint)
    }))

  // Failure 7: RetryPolicy.fromSchedule stretched each delay to the Retry-After, parking the caller for an hour.
  it.scoped("a custom Schedule gives up at once on a Retry-After beyond the default maxRetryAfter (30 s)", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(rateLimited(3600), rateLimited(3600), rateLimited(3600), rateLimited(3600))
      const seen = seenErrors()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const caller = yield* Effect.fork(refresher.getAccessToken(KEY))
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        // A few seconds of TestClock at most: far below the hour the server asked for.
        const exit = yield* exitWithinTestClock(caller, { clockBudgetMillis: 5000 })
        assert.isDefined(exit, "the caller is still parked on the server's Retry-After: 3600")
        assert.isTrue(Exit.isFailure(exit!))
        const error = Exit.isFailure(exit!) ? exit.cause : undefined
        const failure = error?._tag === "Fail" ? error.error : undefined
        seen.add(failure)
        assert.strictEqual(failure?._tag, "RateLimited")
        assert.strictEqual(failure !== undefined && "retryAfterMillis" in failure ? failure.retryAfterMillis : 0, 3_600_000)
        assert.strictEqual(endpoint.refreshRequests, 1, "no retry before the server allows it")
      }).pipe(
        Effect.provide(engine(endpoint, {
          refresher: { retry: Schedule.spaced("100 millis").pipe(Schedule.compose(Schedule.recurs(3))) }
        }))
      )
      seen.assertNoSecrets(endpoint)
    }))

  it.effect("a 429's Retry-After is honoured across flights", () =>
    Effect.gen(function*() {
      let requests = 0
      const layer = Refresher.layer().pipe(
        Layer.provide(fakeEndpoint(() =>
          Effect.suspend(() => (requests++, Effect.fail(new RefreshError.RateLimited({ status: 429, retryAfterMillis: 120_000 }))))
        )),
        Layer.provideMerge(TokenStore.layerMemory),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedFakeExpired()
        for (let i = 0; i < 5; i++) yield* Effect.either(refresher.getAccessToken(KEY))
      }).pipe(Effect.provide(layer))
      assert.strictEqual(requests, 1, "the server asked for 120 s of quiet")
    }))

  // Failure 1 through the Promise facade, in real time.
  it("facade: calls every 250 ms through a Retry-After of 1 s get a token once it has passed", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    const tokens = TokenManager.createTokenManager(({
      tokenEndpoint: endpoint.url,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      retry: { maxAttempts: 1 },
      maxRetryAfterSeconds: 30
    }))
    cleanups.push(() => tokens.dispose(), () => endpoint.close())
    const seen = seenErrors()
    endpoint.script(rateLimited(1))
    await tokens.setGrant(KEY, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const started = Date.now()
    let token: string | undefined
    // Generous deadline: the pause ends after 1 s; only an engine that re-arms it forever runs out of time.
    while (token === undefined && Date.now() - started < 30_000) {
      try {
        token = await tokens.getAccessToken(KEY)
      } catch (error) {
        seen.add(error)
        assert.isTrue(RefreshError.isRefreshError(error))
        assert.strictEqual((error as RefreshError.RefreshError)._tag, "RateLimited")
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
    assert.isDefined(token, `no token after ${Date.now() - started} ms of calls every 250 ms`)
    assert.strictEqual(token, endpoint.lastIssued()?.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 2)
    assert.isAtLeast(seen.count(), 1)
    seen.assertNoSecrets(endpoint)
  })
})
