/**
 * Graceful shutdown keeps the rotation (issue 11, failure 4): `dispose()` / closing the engine's scope stops new calls
 * with `EngineClosed`, lets an attempt already sent finish and persist, and never hands a caller an interruption.
 * Real time: the server takes 1 s to answer.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, TokenManager, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, Predicate, Redacted, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Fixture from "@renew/scripted-endpoint-fixture"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Engine } from "@renew/store-testkit"

const { CLIENT_ID, CLIENT_SECRET, engine, scriptedEndpoint } = Engine
const seenErrors = () => Fixture.seenErrors(CLIENT_SECRET)


const KEY = "user-1"
const OTHER = "user-2"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

/** A caller-visible failure is a tagged error of the family (EngineClosed included), never an interruption. */
const assertTagged = (error: unknown) => {
  assert.isTrue(
    RefreshError.isRefreshError(error) || Predicate.isTagged(error, "EngineClosed"),
    `not a tagged RefreshError: ${String((error as { _tag?: unknown })?._tag ?? error)}`
  )
}

const readGrant = (filename: string) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const store = yield* SqliteTokenStore.make({ filename })
    return Option.getOrThrow(yield* store.get(KEY))
  })))

const withDeadline = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))
  ])

describe("shutdown", () => {
  it("facade: dispose() during a sent refresh lets it persist; a new manager serves that token without a request", async () => {
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-shutdown-"))
    const filename = Path.join(dir, "grants.db")
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, latencyMs: 1000 })
    const options = { tokenEndpoint: endpoint.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, store: filename }
    const first = TokenManager.createTokenManager(options)
    let second: TokenManager.TokenManager | undefined
    cleanups.push(
      () => first.dispose().catch(() => undefined),
      async () => await second?.dispose(),
      () => endpoint.close(),
      async () => Fs.rmSync(dir, { recursive: true, force: true })
    )
    const seen = seenErrors()
    const rt1 = endpoint.mintRefreshToken()
    await first.setGrant(KEY, { accessToken: "at_expired", refreshToken: rt1, expiresIn: 0 })

    const pending = first.getAccessToken(KEY).then((token) => ({ token }), (error: unknown) => ({ error }))
    await endpoint.waitForRequests(1)
    // A rolling deploy: the refresh token is on the wire when the process is told to stop.
    await withDeadline(first.dispose(), 15_000, "dispose()")
    const settled = await pending
    if ("error" in settled) {
      seen.add(settled.error)
      assertTagged(settled.error)
    } else {
      assert.strictEqual(settled.token, endpoint.lastIssued()!.accessToken)
    }

    // What the server issued during dispose() reached the file.
    const stored = await readGrant(filename)
    assert.isUndefined(stored.reauthRequired)
    assert.strictEqual(Redacted.value(stored.refreshToken!), endpoint.lastIssued()!.refreshToken)
    assert.isTrue(endpoint.isActive(endpoint.lastIssued()!.refreshToken!))

    // The next process serves it without asking the server.
    second = TokenManager.createTokenManager(options)
    const next = await withDeadline(
      second.getAccessToken(KEY).then((token) => ({ token }), (error: unknown) => ({ error })),
      15_000,
      "the restarted manager"
    )
    if ("error" in next) seen.add(next.error)
    assert.isTrue("token" in next, `the restarted manager failed: ${"error" in next ? String(next.error) : ""}`)
    assert.strictEqual("token" in next ? next.token : undefined, endpoint.lastIssued()!.accessToken)
    assert.strictEqual(endpoint.refreshRequests, 1)
    assert.strictEqual(endpoint.presentations(rt1), 1)

    // The disposed manager answers nothing, with a tagged error.
    const after = await withDeadline(
      first.getAccessToken(KEY).then(() => undefined, (error: unknown) => error),
      5000,
      "a call after dispose()"
    )
    seen.add(after)
    assert.isTrue(Predicate.isTagged(after, "EngineClosed"), `a call after dispose(): ${String((after as { _tag?: unknown })?._tag ?? after)}`)
    seen.assertNoSecrets(endpoint)
  }, 30_000)

  it.scopedLive("closing the engine's scope during a sent refresh lets it persist; later calls fail with EngineClosed", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 1000 })
      const store = yield* TokenStore.makeMemory
      const engineScope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, store) }),
        engineScope
      )
      const refresher = Context.get(context, Refresher.Refresher)
      const seen = seenErrors()
      const rt1 = endpoint.mintRefreshToken()
      yield* refresher.setGrant(KEY, { accessToken: "at_expired", refreshToken: rt1, expiresIn: 0 })
      yield* refresher.setGrant(OTHER, { accessToken: "at_expired", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })

      const caller = yield* Effect.fork(Effect.exit(refresher.getAccessToken(KEY)))
      yield* Effect.promise(() => endpoint.waitForRequests(1))
      yield* Scope.close(engineScope, Exit.void).pipe(Effect.timeout("15 seconds"))
      const exit = yield* Fiber.join(caller)
      if (Exit.isSuccess(exit)) {
        assert.strictEqual(Redacted.value(exit.value), endpoint.lastIssued()!.accessToken)
      } else {
        assert.isFalse(Cause.isInterruptedOnly(exit.cause), "the caller was handed an interruption")
        const failure = Cause.failureOption(exit.cause)
        assert.isTrue(Option.isSome(failure), Cause.pretty(exit.cause))
        if (Option.isSome(failure)) {
          seen.add(failure.value)
          assertTagged(failure.value)
        }
      }

      // The answer the server gave during shutdown is stored, and it is live.
      const stored = Option.getOrThrow(yield* store.get(KEY))
      assert.strictEqual(Redacted.value(stored.refreshToken!), endpoint.lastIssued()!.refreshToken)
      assert.isTrue(endpoint.isActive(endpoint.lastIssued()!.refreshToken!))

      // A call after shutdown fails with EngineClosed, without a request.
      const after = yield* Effect.exit(refresher.getAccessToken(OTHER)).pipe(Effect.timeout("5 seconds"))
      const afterFailure = Exit.isFailure(after) ? Cause.failureOption(after.cause) : Option.none()
      assert.isTrue(
        Option.isSome(afterFailure) && Predicate.isTagged(afterFailure.value, "EngineClosed"),
        `a call after shutdown: ${Exit.isFailure(after) ? Cause.pretty(after.cause) : "succeeded"}`
      )
      if (Option.isSome(afterFailure)) seen.add(afterFailure.value)
      assert.strictEqual(endpoint.refreshRequests, 1)
      seen.assertNoSecrets(endpoint)
    }), 30_000)
})
