/**
 * The lease's fencing rules on a scripted backend, on the TestClock (TTL 300 ms, renewed every 100 ms):
 * - the background renewal that gets `false` marks the lease lost; lost stays lost, and `confirm` then asks nothing;
 * - renewal errors are a loss only once the time since the last confirmed renewal reaches the TTL;
 * - `confirm` is one round trip with the same rules, and never fails;
 * - the renewal stops with the body.
 */
import { assert, describe, it } from "@effect/vitest"
import { RefreshError, type TokenStore } from "@renew/core"
import * as Lease from "@renew/store-kit/Lease"
import { Deferred, Effect, Fiber, TestClock } from "effect"

type Answer = "held" | "lost" | "error"

const scripted = () => {
  const state = { answer: "held" as Answer, renewals: 0, released: 0 }
  const ops: Lease.LeaseOps = {
    tryAcquire: () => Effect.succeed({ acquired: true }),
    renew: () =>
      Effect.suspend(() => {
        state.renewals++
        return state.answer === "error"
          ? Effect.fail(new RefreshError.StoreError({ operation: "lock", detail: "backend down" }))
          : Effect.succeed(state.answer === "held")
      }),
    release: () => Effect.sync(() => void state.released++)
  }
  const withLock = Lease.makeWithLock(ops, { parameters: Lease.parameters(300, 600), maxPollMillis: 30, backend: "Test" })
  return { state, withLock }
}

/** Holds the lock until interrupted; hands out the lease. */
const holding = (withLock: ReturnType<typeof scripted>["withLock"]) =>
  Effect.gen(function*() {
    const handed = yield* Deferred.make<TokenStore.Lease>()
    const fiber = yield* Effect.fork(withLock("k", (lease) => Effect.zipRight(Deferred.succeed(handed, lease), Effect.never)))
    return { lease: yield* Deferred.await(handed), fiber }
  })

const advance = (millis: number) => Effect.zipRight(TestClock.adjust(millis), Effect.repeatN(Effect.yieldNow(), 20))

describe("Lease fencing rules", () => {
  it.scoped("renewed every third of the TTL while held; confirm is one round trip and true", () =>
    Effect.gen(function*() {
      const { state, withLock } = scripted()
      const { fiber, lease } = yield* holding(withLock)
      yield* advance(1000)
      assert.strictEqual(state.renewals, 10)
      assert.isFalse(lease.isLost())
      assert.isTrue(yield* lease.confirm)
      assert.strictEqual(state.renewals, 11)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(state.released, 1)
      yield* advance(1000)
      assert.strictEqual(state.renewals, 11, "the renewal stopped with the body")
    }))

  it.scoped("a renewal that gets false marks the lease lost for good; confirm then asks nothing", () =>
    Effect.gen(function*() {
      const { state, withLock } = scripted()
      const { lease } = yield* holding(withLock)
      yield* advance(100)
      assert.isFalse(lease.isLost())
      state.answer = "lost"
      yield* advance(100)
      assert.isTrue(lease.isLost())
      const renewals = state.renewals
      state.answer = "held"
      assert.isFalse(yield* lease.confirm, "lost stays lost")
      yield* advance(1000)
      assert.isTrue(lease.isLost())
      assert.strictEqual(state.renewals, renewals, "no renewal after the loss")
    }))

  it.scoped("confirm that gets false says so at once", () =>
    Effect.gen(function*() {
      const { state, withLock } = scripted()
      const { lease } = yield* holding(withLock)
      state.answer = "lost"
      assert.isFalse(yield* lease.confirm)
      assert.isTrue(lease.isLost())
    }))

  it.scoped("renewal errors: held while the lease cannot have lapsed, lost once the TTL since the last confirmation is reached", () =>
    Effect.gen(function*() {
      const { state, withLock } = scripted()
      const { lease } = yield* holding(withLock)
      state.answer = "error"
      yield* advance(50)
      assert.isTrue(yield* lease.confirm, "an error 50 ms after the acquisition: the lease still runs")
      yield* advance(200) // renewals at 100 and 200 failed
      assert.isFalse(lease.isLost())
      assert.isTrue(yield* lease.confirm)
      yield* advance(50) // the renewal at 300 fails: 300 ms since the acquisition
      assert.isTrue(lease.isLost())
      assert.isFalse(yield* lease.confirm)
    }))

  it.scoped("a renewal that succeeds after errors restarts the count from when it was sent", () =>
    Effect.gen(function*() {
      const { state, withLock } = scripted()
      const { lease } = yield* holding(withLock)
      state.answer = "error"
      yield* advance(200) // 100, 200 fail
      state.answer = "held"
      yield* advance(100) // 300 succeeds
      state.answer = "error"
      yield* advance(200) // 400, 500 fail: 200 ms since the confirmation at 300
      assert.isFalse(lease.isLost())
      assert.isTrue(yield* lease.confirm)
      yield* advance(100) // 600 fails: 300 ms since it
      assert.isTrue(lease.isLost())
    }))
})
