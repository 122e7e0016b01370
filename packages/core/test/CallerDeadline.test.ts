/**
 * A caller that stops waiting for a refresh — `Effect.timeout` or an interruption in the Effect API, a deadline or an
 * `AbortSignal` in the Promise facade (which runs `waitWithin` around the same `getAccessToken`) — leaves alone: the
 * refresh it started or joined goes on, the other callers get its token, and the endpoint sees one request. On the
 * TestClock, against an in-process endpoint that answers only when the test says (a hung endpoint until then).
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenStore } from "@renew/core"
import { Cause, Deferred, Effect, Either, Exit, Fiber, FastCheck, Layer, Option, Redacted, TestClock } from "effect"
import { waitWithin } from "../src/internal/callerWait.js"
import { fakeEndpoint, KEY, seedExpired, tokenResponse } from "./support/fakeEndpoint.js"
import { eventually, joinWithin, suspendedOrDone } from "./support/time.js"

/** A Refresher whose token endpoint answers each request only once `answer` is completed. */
const heldEndpoint = Effect.gen(function*() {
  const answer = yield* Deferred.make<void>()
  const counted = { requests: 0 }
  const endpoint = fakeEndpoint(() =>
    Effect.sync(() => counted.requests++).pipe(
      Effect.zipRight(Deferred.await(answer)),
      Effect.as(tokenResponse("at_new", "rt_2"))
    )
  )
  const layer = Refresher.layer().pipe(Layer.provide(endpoint), Layer.provideMerge(TokenStore.layerMemory), Layer.orDie)
  return { answer, counted, layer }
})

const storedAccessToken = (store: TokenStore.TokenStore["Type"]) =>
  store.get(KEY).pipe(
    Effect.map(Option.flatMap((grant) => Option.fromNullable(grant.accessToken))),
    Effect.map(Option.map(Redacted.value)),
    Effect.orDie
  )

describe("a caller that stops waiting", () => {
  it.effect.prop(
    "callers leave at their own deadline, not before; the rest get the one refresh's token",
    {
      deadlines: FastCheck.array(FastCheck.option(FastCheck.integer({ min: 1, max: 5_000 }), { nil: undefined }), {
        minLength: 1,
        maxLength: 6
      }),
      answerAt: FastCheck.integer({ min: 1, max: 5_000 })
    },
    ({ answerAt, deadlines }) =>
      Effect.gen(function*() {
        const { answer, counted, layer } = yield* heldEndpoint
        yield* Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          yield* seedExpired()
          const callers: Array<Fiber.RuntimeFiber<Either.Either<string, unknown>>> = []
          for (const deadlineMillis of deadlines) {
            const call = waitWithin(Effect.map(refresher.getAccessToken(KEY), Redacted.value), { deadlineMillis }, "as")
            callers.push(yield* Effect.fork(Effect.either(call)))
            // The first caller starts the refresh; the others join it.
            yield* eventually("the refresh to reach the endpoint", () => counted.requests === 1)
          }
          yield* suspendedOrDone(callers, "callers waiting")
          const leaves = (deadline: number | undefined) => deadline !== undefined && deadline <= answerAt
          // The server answers at `answerAt`: every deadline up to then runs out first.
          yield* TestClock.adjust(answerAt - 1)
          for (const [i, caller] of callers.entries()) {
            const left = Option.isSome(yield* Fiber.poll(caller))
            const deadline = deadlines[i]
            assert.strictEqual(left, deadline !== undefined && deadline < answerAt, `caller ${i} (deadline ${deadline})`)
          }
          yield* TestClock.adjust(1)
          yield* eventually("the callers past their deadline to leave", () =>
            callers.every((caller, i) => !leaves(deadlines[i]) || caller.unsafePoll() !== null))
          yield* Deferred.succeed(answer, undefined)
          for (const [i, caller] of callers.entries()) {
            const result = yield* joinWithin(caller, `caller ${i}`)
            if (leaves(deadlines[i])) {
              assert.isTrue(Either.isLeft(result), `caller ${i} left`)
              const error = Either.getLeft(result).pipe(Option.getOrThrow) as RefreshError.Timeout
              assert.instanceOf(error, RefreshError.Timeout)
              assert.strictEqual(error.limit, "deadline")
              assert.strictEqual(error.timeoutMillis, deadlines[i])
              assert.isTrue(error.retryable)
            } else {
              assert.deepStrictEqual(result, Either.right("at_new"), `caller ${i} waited`)
            }
          }
          // The refresh was never interrupted: it was stored, and a later call is served from it.
          const store = yield* TokenStore.TokenStore
          yield* eventually("the refresh to be stored", Effect.map(storedAccessToken(store), Option.contains("at_new")))
          assert.strictEqual(Redacted.value(yield* refresher.getAccessToken(KEY)), "at_new")
          assert.strictEqual(counted.requests, 1)
        }).pipe(Effect.provide(layer))
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("Effect.timeout on the caller that started the refresh, and an interrupted joiner, leave it running", () =>
    Effect.gen(function*() {
      const { answer, counted, layer } = yield* heldEndpoint
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        const starter = yield* Effect.fork(Effect.timeout(refresher.getAccessToken(KEY), "2 seconds"))
        yield* eventually("the refresh to reach the endpoint", () => counted.requests === 1)
        const interrupted = yield* Effect.fork(refresher.getAccessToken(KEY))
        const waiter = yield* Effect.fork(refresher.getAccessToken(KEY))
        yield* suspendedOrDone([starter, interrupted, waiter], "callers waiting")
        yield* Fiber.interrupt(interrupted)
        yield* TestClock.adjust("2 seconds")
        const timedOut = yield* Fiber.await(starter)
        assert.isTrue(Exit.isFailure(timedOut) && Cause.isTimeoutException(Cause.squash(timedOut.cause)))
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)), "the other caller still waits for the refresh")
        yield* Deferred.succeed(answer, undefined)
        assert.strictEqual(Redacted.value(yield* joinWithin(waiter, "waiter")), "at_new")
        assert.deepStrictEqual(yield* storedAccessToken(yield* TokenStore.TokenStore), Option.some("at_new"))
        assert.strictEqual(Redacted.value(yield* refresher.getAccessToken(KEY)), "at_new")
        assert.strictEqual(counted.requests, 1)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("an aborted signal ends that caller's wait with Aborted (cause: the reason); the refresh goes on", () =>
    Effect.gen(function*() {
      const { answer, counted, layer } = yield* heldEndpoint
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired()
        const controller = new AbortController()
        const leaving = yield* Effect.fork(
          waitWithin(refresher.getAccessToken(KEY), { signal: controller.signal, deadlineMillis: 60_000 }, "as")
        )
        yield* eventually("the refresh to reach the endpoint", () => counted.requests === 1)
        const waiter = yield* Effect.fork(waitWithin(refresher.getAccessToken(KEY), { deadlineMillis: 60_000 }, "as"))
        yield* suspendedOrDone([leaving, waiter], "callers waiting")
        const reason = new Error("the HTTP request that needed the token was cancelled")
        controller.abort(reason)
        const error = yield* Effect.flip(joinWithin(leaving, "the aborted caller"))
        assert.instanceOf(error, RefreshError.Aborted)
        assert.strictEqual(error._tag, "Aborted")
        assert.strictEqual(error.name, "AbortError")
        assert.strictEqual((error as Error).cause, reason)
        assert.isFalse(error.retryable)
        assert.isTrue(RefreshError.isRefreshError(error))
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)), "the other caller still waits for the refresh")
        yield* Deferred.succeed(answer, undefined)
        assert.strictEqual(Redacted.value(yield* joinWithin(waiter, "waiter")), "at_new")
        assert.strictEqual(counted.requests, 1)
      }).pipe(Effect.provide(layer))
    }))
})
