/**
 * RetryPolicy on the TestClock, around the real TokenEndpoint with a scripted in-memory HttpClient; plus the expiry
 * arithmetic and grant folding of Token.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, expect, it } from "@effect/vitest"
import { RefreshError, RetryPolicy, Token, TokenEndpoint } from "@renew/core"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"

// --- a scripted HttpClient -----------------------------------------------------------------------------------------

interface Answer {
  readonly status: number
  readonly body?: string | object
  readonly headers?: Record<string, string>
}

const ok: Answer = { status: 200, body: { access_token: "at_retry_ok_123", token_type: "Bearer", expires_in: 3600 } }
const unavailable: Answer = { status: 503, body: { error: "temporarily_unavailable" } }
const invalidGrant: Answer = { status: 400, body: { error: "invalid_grant", error_description: "grant request is invalid" } }
const invalidClient: Answer = { status: 401, body: { error: "invalid_client" } }
const invalidScope: Answer = { status: 400, body: { error: "invalid_scope", scope: "api:write" } }
const malformed: Answer = { status: 200, body: "<html>not a token</html>", headers: { "content-type": "text/html" } }
const rateLimited = (retryAfter: string): Answer => ({
  status: 429,
  body: { error: "slow_down" },
  headers: { "retry-after": retryAfter }
})

/** Answers from a queue (then `fallback`), recording the virtual time of every request. */
const scriptedClient = (answers: ReadonlyArray<Answer>, fallback: Answer = unavailable) => {
  const queue = [...answers]
  const times: Array<number> = []
  const client = HttpClient.make((request) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      times.push(now)
      const answer = queue.shift() ?? fallback
      const body = answer.body === undefined
        ? null
        : typeof answer.body === "string"
        ? answer.body
        : JSON.stringify(answer.body)
      return HttpClientResponse.fromWeb(
        request,
        new Response(body, {
          status: answer.status,
          headers: { "content-type": "application/json", ...answer.headers }
        })
      )
    })
  )
  return { layer: Layer.succeed(HttpClient.HttpClient, client), times }
}

/** A refresh through the real TokenEndpoint, retried with `policy`. */
const refreshWith = <Out>(
  answers: ReadonlyArray<Answer>,
  policy: Schedule.Schedule<Out, RefreshError.RefreshError>,
  fallback?: Answer
) => {
  const server = scriptedClient(answers, fallback)
  const effect = Effect.gen(function*() {
    const endpoint = yield* TokenEndpoint.make({ url: "https://auth.example.com/token", clientId: "c" })
    return yield* Effect.retry(endpoint.refresh({ refreshToken: Redacted.make("rt_retry_test_0001") }), policy)
  }).pipe(Effect.provide(server.layer))
  return { effect, times: server.times }
}

/** Deltas between consecutive request times. */
const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((t, i) => t - times[i]!)

/** Runs to completion on the TestClock, advancing it far enough for any retry. */
const runToEnd = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust("10 minutes")
    return yield* Fiber.await(fiber)
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert(Exit.isFailure(exit), "expected a failure")
  assert(exit.cause._tag === "Fail", `expected one typed failure, got ${String(exit.cause)}`)
  return exit.cause.error
}

// --- the default policy around the endpoint --------------------------------------------------------------------------

describe("RetryPolicy.make around TokenEndpoint.refresh", () => {
  it.effect("503, 503, 200: succeeds after exactly 3 requests, waiting 500 ms then 1000 ms", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([unavailable, unavailable, ok], RetryPolicy.make({ jitter: false }))
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(0)
      expect(times).toEqual([0])
      yield* TestClock.adjust(499)
      expect(times).toHaveLength(1)
      yield* TestClock.adjust(1)
      expect(times).toEqual([0, 500])
      yield* TestClock.adjust(999)
      expect(times).toHaveLength(2)
      yield* TestClock.adjust(1)
      expect(times).toEqual([0, 500, 1500])
      const response = yield* Fiber.join(fiber)
      expect(Redacted.value(response.access_token)).toBe("at_retry_ok_123")
      expect(times).toHaveLength(3)
    }))

  for (
    const [name, answer, tag] of [
      ["invalid_grant", invalidGrant, "InvalidGrant"],
      ["invalid_client", invalidClient, "InvalidClient"],
      ["invalid_scope", invalidScope, "InvalidScope"],
      ["MalformedResponse", malformed, "MalformedResponse"]
    ] as const
  ) {
    it.effect(`a terminal ${name} is never retried`, () =>
      Effect.gen(function*() {
        const { effect, times } = refreshWith([answer], RetryPolicy.make({ jitter: false }), ok)
        const error = failureOf(yield* runToEnd(effect))
        expect(error._tag).toBe(tag)
        expect(times).toEqual([0])
      }))
  }

  it.effect("retryable errors stop after maxAttempts (default 4, and a custom 2)", () =>
    Effect.gen(function*() {
      const byDefault = refreshWith([], RetryPolicy.make({ jitter: false }))
      const error = failureOf(yield* runToEnd(byDefault.effect))
      expect(error._tag).toBe("ServerError")
      expect(byDefault.times).toHaveLength(4)
      expect(gaps(byDefault.times)).toEqual([500, 1000, 2000])

      const two = refreshWith([], RetryPolicy.make({ jitter: false, maxAttempts: 2 }))
      expect(failureOf(yield* runToEnd(two.effect))._tag).toBe("ServerError")
      expect(two.times).toHaveLength(2)
    }))

  it.effect("network errors and timeouts are retried too", () =>
    Effect.gen(function*() {
      let calls = 0
      const flaky = HttpClient.make((request) =>
        Effect.suspend(() => {
          calls++
          if (calls === 1) return Effect.never // a hang: the endpoint's 1 s timeout fires
          return Effect.succeed(HttpClientResponse.fromWeb(request, new Response(JSON.stringify(ok.body), { status: 200 })))
        })
      )
      const effect = Effect.gen(function*() {
        const endpoint = yield* TokenEndpoint.make({ url: "https://auth.example.com/token", clientId: "c", timeout: "1 second" })
        return yield* Effect.retry(
          endpoint.refresh({ refreshToken: Redacted.make("rt_retry_test_0001") }),
          RetryPolicy.make({ jitter: false })
        )
      }).pipe(Effect.provide(Layer.succeed(HttpClient.HttpClient, flaky)))
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(1000)
      expect(calls).toBe(1)
      yield* TestClock.adjust(500)
      expect(calls).toBe(2)
      const exit = yield* Fiber.await(fiber)
      assert(Exit.isSuccess(exit))
    }))

  it.effect("maxDelay caps each backoff delay", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith(
        [],
        RetryPolicy.make({ jitter: false, initialDelay: "1 second", factor: 10, maxDelay: "3 seconds", maxAttempts: 4 })
      )
      yield* runToEnd(effect)
      expect(gaps(times)).toEqual([1000, 3000, 3000])
    }))

  it.effect("maxElapsed: a retry whose delay would pass the budget is not made", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith(
        [],
        RetryPolicy.make({ jitter: false, initialDelay: "1 second", maxElapsed: "2500 millis", maxAttempts: 10 })
      )
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(1000)
      expect(times).toEqual([0, 1000])
      // the next delay (2 s) would end at 3 s > 2.5 s: the policy gives up at once, without sleeping
      const exit = yield* Fiber.await(fiber)
      expect(failureOf(exit)._tag).toBe("ServerError")
      expect(yield* Clock.currentTimeMillis).toBe(1000)
      expect(times).toEqual([0, 1000])
    }))

  it.effect("429 with Retry-After: 3 is retried no earlier than 3 s, not at the 500 ms backoff", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([rateLimited("3"), ok], RetryPolicy.make({ jitter: false }))
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(500)
      expect(times).toEqual([0])
      yield* TestClock.adjust(2499)
      expect(times).toEqual([0])
      yield* TestClock.adjust(1)
      expect(times).toEqual([0, 3000])
      const response = yield* Fiber.join(fiber)
      expect(response.token_type).toBe("Bearer")
    }))

  it.effect("a Retry-After larger than maxRetryAfter gives up at once with retryAfterMillis", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([rateLimited("120"), ok], RetryPolicy.make({ jitter: false }))
      const error = failureOf(yield* runToEnd(effect))
      assert(error._tag === "RateLimited")
      expect(error.retryAfterMillis).toBe(120_000)
      expect(times).toEqual([0])

      const custom = refreshWith(
        [rateLimited("5"), ok],
        RetryPolicy.make({ jitter: false, maxRetryAfter: "4 seconds" })
      )
      const limited = failureOf(yield* runToEnd(custom.effect))
      assert(limited._tag === "RateLimited")
      expect(limited.retryAfterMillis).toBe(5000)
      expect(custom.times).toHaveLength(1)
    }))

  it.effect("a 503 Retry-After is honoured like a 429 one", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith(
        [{ ...unavailable, headers: { "retry-after": "2" } }, ok],
        RetryPolicy.make({ jitter: false })
      )
      yield* runToEnd(effect)
      expect(times).toEqual([0, 2000])
    }))
})

// --- the schedule itself -----------------------------------------------------------------------------------------------

const serverError = new RefreshError.ServerError({ status: 503 })

describe("RetryPolicy.make as a schedule", () => {
  it.effect("without jitter: 500, 1000, 2000, then gives up on attempts", () =>
    Effect.gen(function*() {
      const decisions = Chunk.toReadonlyArray(
        yield* Schedule.run(RetryPolicy.make({ jitter: false }), 0, [serverError, serverError, serverError, serverError])
      )
      expect(decisions).toEqual([
        { _tag: "Retry", attempt: 1, errorTag: "ServerError", delayMillis: 500, retryAfterMillis: undefined },
        { _tag: "Retry", attempt: 2, errorTag: "ServerError", delayMillis: 1000, retryAfterMillis: undefined },
        { _tag: "Retry", attempt: 3, errorTag: "ServerError", delayMillis: 2000, retryAfterMillis: undefined },
        { _tag: "GiveUp", attempt: 4, errorTag: "ServerError", reason: "attempts" }
      ])
    }))

  it.effect("a terminal error gives up at once, with reason terminal", () =>
    Effect.gen(function*() {
      const decisions = Chunk.toReadonlyArray(
        yield* Schedule.run(RetryPolicy.make(), 0, [new RefreshError.InvalidGrant({ status: 400 }), serverError])
      )
      expect(decisions).toEqual([{ _tag: "GiveUp", attempt: 1, errorTag: "InvalidGrant", reason: "terminal" }])
    }))

  it.effect("with jitter: every delay lies in [50 %, 100 %] of its backoff, and delays do vary", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.make({ jitter: true, maxAttempts: 7, maxDelay: "4 seconds", maxElapsed: "1 hour" })
      const seen = new Map<number, Array<number>>()
      for (let run = 0; run < 40; run++) {
        const decisions = Chunk.toReadonlyArray(yield* Schedule.run(policy, 0, Array(7).fill(serverError)))
        expect(decisions).toHaveLength(7)
        for (const decision of decisions) {
          if (decision._tag !== "Retry") continue
          const backoff = Math.min(4000, 500 * 2 ** (decision.attempt - 1))
          expect(decision.delayMillis).toBeGreaterThanOrEqual(backoff / 2)
          expect(decision.delayMillis).toBeLessThanOrEqual(backoff)
          seen.set(decision.attempt, [...(seen.get(decision.attempt) ?? []), decision.delayMillis])
        }
      }
      expect([...seen.keys()]).toEqual([1, 2, 3, 4, 5, 6])
      for (const delays of seen.values()) expect(new Set(delays).size).toBeGreaterThan(1)
    }))

  it.effect("with jitter, stepping the TestClock: the next request comes within [250, 500] ms", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([unavailable, ok], RetryPolicy.make({ jitter: true }))
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(249)
      expect(times).toHaveLength(1)
      yield* TestClock.adjust(251)
      expect(times).toHaveLength(2)
      expect(times[1]).toBeGreaterThanOrEqual(250)
      expect(times[1]).toBeLessThanOrEqual(500)
      assert(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("a jittered delay never undercuts Retry-After", () =>
    Effect.gen(function*() {
      const limited = new RefreshError.RateLimited({ status: 429, retryAfterMillis: 2000 })
      const decisions = Chunk.toReadonlyArray(yield* Schedule.run(RetryPolicy.make({ jitter: true }), 0, [limited, limited]))
      for (const decision of decisions) {
        assert(decision._tag === "Retry")
        expect(decision.delayMillis).toBeGreaterThanOrEqual(2000)
        expect(decision.retryAfterMillis).toBe(2000)
      }
    }))
})

// --- bring your own schedule -------------------------------------------------------------------------------------------

describe("RetryPolicy.fromSchedule", () => {
  const spaced = RetryPolicy.fromSchedule(Schedule.spaced("1 second"))

  it.effect("stops on a terminal error", () =>
    Effect.gen(function*() {
      for (const answer of [invalidGrant, invalidClient, malformed]) {
        const { effect, times } = refreshWith([answer], spaced, ok)
        const error = failureOf(yield* runToEnd(effect))
        expect(error.retryable).toBe(false)
        expect(times).toHaveLength(1)
      }
    }))

  it.effect("keeps its own spacing for retryable errors", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([unavailable, unavailable, ok], spaced)
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(999)
      expect(times).toHaveLength(1)
      yield* TestClock.adjust(1)
      expect(times).toHaveLength(2)
      yield* TestClock.adjust(1000)
      expect(times).toEqual([0, 1000, 2000])
      assert(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("never undercuts Retry-After", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([rateLimited("3"), ok], spaced)
      const fiber = yield* Effect.fork(effect)
      yield* TestClock.adjust(1000)
      expect(times).toHaveLength(1)
      yield* TestClock.adjust(1999)
      expect(times).toHaveLength(1)
      yield* TestClock.adjust(1)
      expect(times).toEqual([0, 3000])
      assert(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("a Retry-After shorter than the schedule's delay keeps the schedule's delay", () =>
    Effect.gen(function*() {
      const { effect, times } = refreshWith([rateLimited("0"), ok], spaced)
      yield* runToEnd(effect)
      expect(times).toEqual([0, 1000])
    }))
})

// --- Token expiry and grant folding --------------------------------------------------------------------------------

const grant = (fields: Partial<ConstructorParameters<typeof Token.Grant>[0]> = {}) =>
  new Token.Grant({
    accessToken: Redacted.make("at_previous"),
    refreshToken: Redacted.make("rt_previous"),
    tokenType: "Bearer",
    issuedAt: 0,
    expiresAt: 3_600_000,
    scope: "api:read api:write",
    version: 7,
    ...fields
  })

describe("Token.refreshAt / isDue", () => {
  it("a 1 h token with a 60 s skew is due 60 s before expiry", () => {
    const g = grant({ issuedAt: 1_000_000, expiresAt: 1_000_000 + 3_600_000 })
    expect(Token.refreshAt(g, "60 seconds")).toBe(1_000_000 + 3_540_000)
    expect(Token.isDue(g, 1_000_000 + 3_539_999, "60 seconds")).toBe(false)
    expect(Token.isDue(g, 1_000_000 + 3_540_000, "60 seconds")).toBe(true)
    expect(Token.isExpired(g, 1_000_000 + 3_599_999)).toBe(false)
    expect(Token.isExpired(g, 1_000_000 + 3_600_000)).toBe(true)
  })

  it("a 30 s token is due at 15 s (half its lifetime), not immediately", () => {
    const g = grant({ issuedAt: 50_000, expiresAt: 80_000 })
    expect(Token.refreshAt(g, "60 seconds")).toBe(65_000)
    expect(Token.isDue(g, 50_000, "60 seconds")).toBe(false)
    expect(Token.isDue(g, 64_999, "60 seconds")).toBe(false)
    expect(Token.isDue(g, 65_000, "60 seconds")).toBe(true)
  })

  it("a grant seeded with a refresh token only is due at once", () => {
    const g = new Token.Grant({
      refreshToken: Redacted.make("rt_seed"),
      tokenType: "Bearer",
      issuedAt: 1000,
      expiresAt: 1000,
      version: 0
    })
    expect(Token.isDue(g, 0, "60 seconds")).toBe(true)
  })

  it("an already expired grant is due", () => {
    const g = grant({ issuedAt: 0, expiresAt: 10_000 })
    expect(Token.isDue(g, 20_000, "60 seconds")).toBe(true)
  })
})

describe("Token.grantFromResponse", () => {
  const previous = grant()
  const options = { now: 5_000_000, defaultLifetime: "30 minutes" } as const

  it("an omitted refresh_token keeps the previous one; an omitted scope keeps the previous scope", () => {
    const next = Token.grantFromResponse(
      new Token.TokenResponse({ access_token: Redacted.make("at_next"), token_type: "Bearer", expires_in: 600 }),
      previous,
      options
    )
    expect(Redacted.value(next.accessToken!)).toBe("at_next")
    assert(next.refreshToken !== undefined)
    expect(Redacted.value(next.refreshToken)).toBe("rt_previous")
    expect(next.scope).toBe("api:read api:write")
    expect(next.issuedAt).toBe(5_000_000)
    // Issued at 5,000 s with expires_in 600 s, less the one second of expires_in granularity.
    expect(next.expiresAt).toBe(5_599_000)
    expect(next.version).toBe(7)
  })

  it("a returned refresh_token and scope replace the previous ones", () => {
    const next = Token.grantFromResponse(
      new Token.TokenResponse({
        access_token: Redacted.make("at_next"),
        token_type: "bearer",
        expires_in: 60,
        refresh_token: Redacted.make("rt_rotated"),
        scope: "api:read"
      }),
      previous,
      options
    )
    expect(Redacted.value(next.refreshToken!)).toBe("rt_rotated")
    expect(next.scope).toBe("api:read")
    expect(next.tokenType).toBe("bearer")
  })

  it("a missing expires_in uses defaultLifetime", () => {
    const next = Token.grantFromResponse(
      new Token.TokenResponse({ access_token: Redacted.make("at_next"), token_type: "Bearer" }),
      previous,
      options
    )
    expect(next.expiresAt).toBe(5_000_000 + 30 * 60_000)
  })

  it("expires_in 0 is taken as given, not replaced by the default", () => {
    const next = Token.grantFromResponse(
      new Token.TokenResponse({ access_token: Redacted.make("at_next"), token_type: "Bearer", expires_in: 0 }),
      previous,
      options
    )
    expect(next.expiresAt).toBe(5_000_000)
  })
})
