/**
 * The fault model's own parts, checked on their own: the simulated server's rotation, reuse detection, grace period
 * and introspection, its I1 verdicts, and the collectors I6 reads. A wrong judge would make the suite cry wolf or
 * stay silent.
 */
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as AuthServer from "./support/faultModel/AuthServer.js"
import * as SimTime from "./support/faultModel/SimTime.js"
import * as Telemetry from "./support/faultModel/Telemetry.js"

const config: AuthServer.ServerConfig = {
  rotate: true,
  graceMs: 0,
  introspection: true,
  accessTtlSec: 600,
  clientTimeoutMs: 1000
}

const setup = (faults: ReadonlyArray<AuthServer.Fault> = [], overrides: Partial<AuthServer.ServerConfig> = {}) => {
  const time = SimTime.make(0)
  const server = AuthServer.make({ ...config, ...overrides }, time, faults)
  const post = (url: string, form: Record<string, string>) =>
    server.client(1).execute(
      HttpClientRequest.post(url).pipe(
        HttpClientRequest.bodyUrlParams(form),
        HttpClientRequest.setHeader("authorization", AuthServer.BASIC)
      )
    ).pipe(
      Effect.flatMap((response) => Effect.map(response.json, (body) => ({ status: response.status, body: body as Record<string, unknown> }))),
      Effect.scoped,
      Effect.withClock(time.clock)
    )
  // An answer arrives after its latency on the simulated clock: move the clock until it does.
  const settled = <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(effect)
      yield* time.advanceUntil(() => fiber.unsafePoll() !== null, 10, 60_000)
      return yield* Fiber.join(fiber)
    })
  const send = (token: string) => post(AuthServer.TOKEN_URL, { grant_type: "refresh_token", refresh_token: token })
  const refresh = (token: string) => settled(send(token))
  const active = (token: string) =>
    settled(Effect.map(post(AuthServer.INTROSPECTION_URL, { token }), (answer) => answer.body.active))
  return { time, server, send, refresh, active }
}

describe("the simulated authorization server", () => {
  it.effect("rotates, and revokes the whole family when a consumed token comes back", () =>
    Effect.gen(function*() {
      const { active, refresh, server } = setup()
      const grant = server.authorize("user")
      const first = yield* refresh(grant.refreshToken)
      assert.strictEqual(first.status, 200)
      const successor = first.body.refresh_token as string
      assert.notStrictEqual(successor, grant.refreshToken)
      assert.isFalse(yield* active(grant.refreshToken))
      assert.isTrue(yield* active(successor))

      const replay = yield* refresh(grant.refreshToken)
      assert.deepStrictEqual([replay.status, replay.body.error], [400, "invalid_grant"])
      assert.isFalse(yield* active(successor), "reuse revokes the successor too")
      assert.isTrue(server.families[0]!.revoked)
      // The client saw the rotation, so presenting the token again breaks I1.
      assert.match(server.presentations[1]!.i1 ?? "", /whose answer the client received/)
    }))

  it.effect("within the grace period, a consumed token gets its successor again", () =>
    Effect.gen(function*() {
      const { refresh, server, time } = setup([], { graceMs: 5000 })
      const grant = server.authorize("user")
      const successor = (yield* refresh(grant.refreshToken)).body.refresh_token
      yield* time.advance(4000)
      const again = yield* refresh(grant.refreshToken)
      assert.deepStrictEqual([again.status, again.body.refresh_token], [200, successor])
      assert.isUndefined(server.presentations[1]!.i1)
      yield* time.advance(2000)
      assert.strictEqual((yield* refresh(grant.refreshToken)).status, 400, "after the grace period it is reuse")
    }))

  it.effect("a rotation lost to a timeout licenses its recovery; a rotation whose answer was seen licenses none", () =>
    Effect.gen(function*() {
      const { refresh, server, time } = setup([{ _tag: "Slow", latencyMs: 3000 }])
      const grant = server.authorize("user")
      const attempt = yield* refresh(grant.refreshToken).pipe(Effect.timeout(1000), Effect.either, Effect.withClock(time.clock))
      assert.strictEqual(attempt._tag, "Left")
      const first = server.presentations[0]!
      assert.deepStrictEqual([first.result, first.answer, first.lostBy], ["rotated", "lost", "timeout"])
      yield* refresh(grant.refreshToken)
      assert.isUndefined(server.presentations[1]!.i1, "the recovery is allowed")
      // Its successor reached no one: presenting it again revokes nothing anyone can use.
      yield* refresh(grant.refreshToken)
      assert.isUndefined(server.presentations[2]!.i1)
      // A token whose rotation was answered and seen must never come back.
      const seen = server.authorize("other")
      yield* refresh(seen.refreshToken)
      yield* refresh(seen.refreshToken)
      assert.match(server.presentations[4]!.i1 ?? "", /whose answer the client received/)
    }))

  it.effect("an attempt interrupted before its timeout is abandoned, and re-presenting its token breaks I1", () =>
    Effect.gen(function*() {
      const { refresh, send, server, time } = setup([{ _tag: "Slow", latencyMs: 3000 }])
      const grant = server.authorize("user")
      const attempt = yield* Effect.fork(send(grant.refreshToken))
      yield* time.advance(100)
      yield* Fiber.interrupt(attempt)
      assert.strictEqual(server.presentations[0]!.lostBy, "abandoned")
      yield* refresh(grant.refreshToken)
      assert.match(server.presentations[1]!.i1 ?? "", /abandoned that request 100 ms after sending it/)
    }))

  it.effect("a reset before the request is written never reaches the server", () =>
    Effect.gen(function*() {
      const { refresh, server } = setup([{ _tag: "ResetBeforeSend" }])
      const grant = server.authorize("user")
      const failed = yield* Effect.either(refresh(grant.refreshToken))
      assert.strictEqual(failed._tag, "Left")
      assert.isFalse(server.presentations[0]!.reached)
      assert.strictEqual((yield* refresh(grant.refreshToken)).status, 200)
      assert.isUndefined(server.presentations[1]!.i1)
    }))
})

describe("the I6 collectors", () => {
  it.effect("see a secret in a log line, a span attribute and a span's failure", () =>
    Effect.gen(function*() {
      const collected = Telemetry.make()
      const secret = `${AuthServer.CANARY}-probe`
      yield* Effect.logDebug(`leak ${secret}`).pipe(
        Effect.zipRight(Effect.annotateCurrentSpan("probe", secret)),
        Effect.zipRight(Effect.fail(new Error(secret))),
        Effect.withSpan("probe"),
        Effect.ignore,
        Effect.withTracer(collected.tracer),
        Effect.provide(Telemetry.loggerLayer(collected))
      )
      const leaks = collected.texts.filter((text) => text.includes(secret))
      assert.isTrue(leaks.some((text) => text.includes("level=DEBUG")), "log line")
      assert.isTrue(leaks.some((text) => text.startsWith("span probe probe=")), "span attribute")
      assert.isTrue(leaks.some((text) => text.startsWith("span probe failed")), "span failure")
    }))
})
