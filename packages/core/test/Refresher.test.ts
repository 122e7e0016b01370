import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshError, Telemetry, Token, TokenStore } from "@renew/core"
import * as HttpClient from "@effect/platform/HttpClient"
import { Clock, Deferred, Effect, Either, Exit, Fiber, Layer, Metric, Option, Redacted, TestClock } from "effect"
import { engine, scriptedEndpoint, seedExpired } from "./support/harness.js"
import { eventually, joinAdvancingShortSleeps, joinWithin, suspendedOrDone } from "./support/time.js"

const KEY = "user-42"

/** A memory store that counts every call, to prove the cached path never touches it. */
const countingStore = Effect.gen(function*() {
  const inner = yield* TokenStore.makeMemory
  const calls = { get: 0, compareAndSet: 0, withLock: 0 }
  const store = TokenStore.TokenStore.of({
    durability: inner.durability,
    lease: inner.lease,
    get: (key) => Effect.suspend(() => (calls.get++, inner.get(key))),
    compareAndSet: (key, version, grant) =>
      Effect.suspend(() => (calls.compareAndSet++, inner.compareAndSet(key, version, grant))),
    delete: inner.delete,
    withLock: (key, effect) => Effect.suspend(() => (calls.withLock++, inner.withLock(key, effect)))
  })
  return { store, calls }
})

describe("Refresher", () => {
  it.scopedLive("serves a fresh token from memory without HTTP or store access", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const { calls, store } = yield* countingStore
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* refresher.setGrant(KEY, { accessToken: "at_fresh", refreshToken: "rt_x", expiresIn: 3600 })
        const before = { ...calls }
        for (let i = 0; i < 1000; i++) {
          const token = yield* refresher.getAccessToken(KEY)
          assert.strictEqual(Redacted.value(token), "at_fresh")
        }
        assert.deepStrictEqual(calls, before)
        assert.strictEqual(endpoint.requests.length, 0)
      }).pipe(Effect.provide(engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, store) })))
    }))

  it.scopedLive("10,000 concurrent callers on an expired grant make exactly one request and share its token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 50, rotation: true })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const tokens = yield* Effect.all(
          Array.from({ length: 10_000 }, () => Effect.either(refresher.getAccessToken(KEY))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(endpoint.refreshRequests, 1)
        const values = new Set(tokens.map((t) => (t._tag === "Right" ? Redacted.value(t.right) : t.left._tag)))
        assert.deepStrictEqual([...values], [endpoint.lastIssued()!.accessToken])
        // The rotated refresh token is the stored one, and it is live on the server.
        const stored = Option.getOrThrow(yield* (yield* TokenStore.TokenStore).get(KEY))
        assert.isTrue(endpoint.isActive(Redacted.value(stored.refreshToken!)))
        // Seeded (1), refresh in flight (2), refreshed (3).
        assert.strictEqual(stored.version, 3)
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("a failed refresh is shared by every waiter, and the dead grant is not retried", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({
        kind: "respond",
        status: 400,
        body: { error: "invalid_grant", error_description: "grant request is invalid" }
      })
      // The answer is held in the client until every caller waits on the refresh, however slow the machine.
      const delivered = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const callers = yield* Effect.forEach(
          Array.from({ length: 500 }),
          () => Effect.fork(Effect.flip(refresher.getAccessToken(KEY)))
        )
        yield* suspendedOrDone(callers, "500 callers wait on the refresh")
        yield* Deferred.succeed(delivered, undefined)
        const results = yield* joinWithin(yield* Effect.fork(Fiber.joinAll(callers)), "the 500 callers")
        assert.strictEqual(endpoint.refreshRequests, 1)
        assert.isTrue(results.every((error) => error._tag === "InvalidGrant"))
        assert.strictEqual(new Set(results).size, 1, "all waiters get the very same error")
        // Marked as needing re-authorization: later callers fail fast, without a request.
        const again = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(again._tag, "InvalidGrant")
        assert.strictEqual(endpoint.refreshRequests, 1)
        const stored = Option.getOrThrow(yield* (yield* TokenStore.TokenStore).get(KEY))
        assert.strictEqual(stored.reauthRequired, "invalid_grant")
        // A new authorization revives it.
        yield* refresher.setGrant(KEY, { accessToken: "at_new", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint, { http: HttpClient.tap(() => Deferred.await(delivered)) })))
    }))

  it.scoped("interrupting the first caller does not cancel the shared refresh", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 200 })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const first = yield* Effect.fork(refresher.getAccessToken(KEY))
        // The refresh is on the wire (its answer is 200 ms away) when a second caller joins and the first one leaves.
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        const second = yield* Effect.fork(refresher.getAccessToken(KEY))
        yield* suspendedOrDone([second], "the second caller waits on the refresh")
        yield* Fiber.interrupt(first)
        const token = yield* joinWithin(second, "the second caller")
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 1)
        const stored = Option.getOrThrow(yield* (yield* TokenStore.TokenStore).get(KEY))
        assert.strictEqual(Redacted.value(stored.accessToken!), endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("an interrupted lone caller still gets the rotated token persisted", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 100 })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const store = yield* TokenStore.TokenStore
        yield* seedExpired(endpoint, KEY)
        const caller = yield* Effect.fork(refresher.getAccessToken(KEY))
        // The caller leaves while its refresh is on the wire (the answer is 100 ms away).
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        yield* Fiber.interrupt(caller)
        yield* eventually(
          "the rotated grant is stored",
          Effect.map(Effect.orDie(store.get(KEY)), (stored) =>
            endpoint.lastIssued() !== undefined && Option.isSome(stored) &&
            Redacted.value(stored.value.refreshToken!) === endpoint.lastIssued()!.refreshToken)
        )
        const stored = Option.getOrThrow(yield* store.get(KEY))
        assert.strictEqual(Redacted.value(stored.refreshToken!), endpoint.lastIssued()!.refreshToken)
        assert.isTrue(endpoint.isActive(Redacted.value(stored.refreshToken!)))
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("forced refreshes within the cooldown reuse the last refresh", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* refresher.setGrant(KEY, {
          accessToken: "at_a",
          refreshToken: endpoint.mintRefreshToken(),
          expiresIn: 3600
        })
        const a = yield* refresher.refresh(KEY)
        const b = yield* refresher.refresh(KEY)
        yield* Effect.all(Array.from({ length: 50 }, () => refresher.refresh(KEY)), { concurrency: "unbounded" })
        assert.strictEqual(endpoint.refreshRequests, 1)
        assert.strictEqual(a.version, b.version)
        yield* TestClock.adjust("350 millis")
        const c = yield* refresher.refresh(KEY)
        assert.strictEqual(endpoint.refreshRequests, 2)
        // The intent, then the refreshed grant.
        assert.strictEqual(c.version, a.version + 2)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { forcedRefreshCooldown: "300 millis" } })))
    }))

  it.scopedLive("a response without refresh_token keeps the previous one (RFC 6749 §6)", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "issue", omitRefreshToken: true })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const seeded = yield* seedExpired(endpoint, KEY)
        yield* refresher.getAccessToken(KEY)
        const stored = Option.getOrThrow(yield* (yield* TokenStore.TokenStore).get(KEY))
        assert.strictEqual(Redacted.value(stored.refreshToken!), Redacted.value(seeded.refreshToken!))
        assert.strictEqual(Redacted.value(stored.accessToken!), endpoint.lastIssued()!.accessToken)
        // ... and it still works for the next refresh.
        yield* refresher.refresh(KEY)
        assert.strictEqual(endpoint.refreshRequests, 2)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { forcedRefreshCooldown: 0 } })))
    }))

  it.scopedLive("a response without expires_in gets the configured default lifetime", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "issue", expiresIn: null })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const grant = yield* refresher.getGrant(KEY)
        assert.strictEqual(grant.expiresAt - grant.issuedAt, 15 * 60 * 1000)
        // Not due again right away: the next call is a cache hit.
        yield* refresher.getAccessToken(KEY)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { defaultLifetime: "15 minutes" } })))
    }))

  it.scoped("a transient failure while the token is still valid serves it and retries later", () =>
    Effect.gen(function*() {
      // The TestClock starts at the epoch, and no stored time is before it: start late enough to have a past.
      yield* TestClock.setTime(Date.UTC(2026, 0, 1))
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(
        { kind: "respond", status: 503, body: "<html>down</html>" },
        { kind: "respond", status: 503, body: "<html>down</html>" }
      )
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        // Issued 100 s ago, valid for 40 more seconds: inside the 60 s skew, so due, but still usable.
        const now = yield* Clock.currentTimeMillis
        const store = yield* TokenStore.TokenStore
        yield* store.compareAndSet(
          KEY,
          undefined,
          Either.getOrThrow(Token.grantFromInput(
            { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresAt: now + 40_000 },
            { now: now - 100_000, defaultLifetime: "1 hour", version: 0 }
          ))
        )
        // Both attempts fail; the clock moves only by the backoff between them (at most 10 ms).
        const caller = yield* Effect.fork(refresher.getAccessToken(KEY))
        const token = yield* joinAdvancingShortSleeps(caller, 10, "the refresh with one retry")
        yield* Effect.promise(() => endpoint.waitForRequests(2))
        assert.strictEqual(Redacted.value(token), "at_old")
        assert.strictEqual(endpoint.refreshRequests, 2)
        // Within the stale retry interval: served from memory.
        yield* refresher.getAccessToken(KEY)
        assert.strictEqual(endpoint.refreshRequests, 2)
        yield* TestClock.adjust("250 millis")
        const next = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(next), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 3)
      }).pipe(Effect.provide(engine(endpoint, {
        // The caller waits for the refresh (no refresh-ahead): what it is served after the failure is the subject.
        refresher: {
          staleRetryInterval: "200 millis",
          retry: { maxAttempts: 2, initialDelay: "10 millis" },
          refreshAhead: false
        }
      })))
    }))

  it.scoped("an expired token is not served stale: the caller gets the typed error after the retries", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script(
        { kind: "respond", status: 503, body: "" },
        { kind: "respond", status: 503, body: "" },
        { kind: "respond", status: 503, body: "" }
      )
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        // Three attempts; the clock moves only by the backoffs between them (at most 5 + 10 ms).
        const caller = yield* Effect.fork(Effect.flip(refresher.getAccessToken(KEY)))
        const error = yield* joinAdvancingShortSleeps(caller, 10, "the refresh with two retries")
        assert.strictEqual(error._tag, "ServerError")
        assert.strictEqual(endpoint.refreshRequests, 3)
        // Within the retry interval a call gets the same error without a request (ER-3)...
        assert.strictEqual(yield* Effect.flip(refresher.getAccessToken(KEY)), error)
        assert.strictEqual(endpoint.refreshRequests, 3)
        // ...and the grant is intact: after it, the next call refreshes successfully.
        yield* TestClock.adjust("150 millis")
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint, {
        refresher: { retry: { maxAttempts: 3, initialDelay: "5 millis" }, staleRetryInterval: "100 millis" }
      })))
    }))

  it.scopedLive("two engines sharing a store refresh once: the second re-reads under the lock", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 100 })
      const store = yield* TokenStore.makeMemory
      const shared = Layer.succeed(TokenStore.TokenStore, store)
      const a = yield* Layer.build(engine(endpoint, { store: shared }))
      const b = yield* Layer.build(engine(endpoint, { store: shared }))
      yield* seedExpired(endpoint, KEY).pipe(Effect.provide(a))
      const tokens = yield* Effect.all([
        Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY)).pipe(Effect.provide(a)),
        Effect.flatMap(Refresher.Refresher, (r) => r.getAccessToken(KEY)).pipe(Effect.provide(b))
      ], { concurrency: "unbounded" })
      assert.strictEqual(endpoint.refreshRequests, 1)
      assert.strictEqual(Redacted.value(tokens[0]), Redacted.value(tokens[1]))
    }))

  it.scoped("the global limit bounds refreshes in flight across keys", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ latencyMs: 100 })
      yield* Effect.gen(function*() {
        const keys = ["a", "b", "c", "d", "e", "f"]
        for (const key of keys) yield* seedExpired(endpoint, key)
        const refresher = yield* Refresher.Refresher
        yield* Effect.all(keys.map((key) => refresher.getAccessToken(key)), { concurrency: "unbounded" })
        assert.strictEqual(endpoint.refreshRequests, 6)
        // With 2 permits, a request can only reach the server once an earlier one was answered: at the server, the
        // (n+1)th arrival follows at least n-1 answers (causal order of server events, not elapsed time).
        const arrivals = endpoint.requests.map((r) => r.receivedAt).sort((x, y) => x - y)
        const answers = endpoint.issuedTokens.map((t) => t.issuedAt)
        const inFlight = arrivals.map((at, n) => n + 1 - answers.filter((answeredAt) => answeredAt <= at).length)
        assert.isAtMost(Math.max(...inFlight), 2, `requests in flight at each arrival: ${JSON.stringify(inFlight)}`)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { maxConcurrentRefreshes: 2 } })))
    }))

  it.scoped("keys never wait on each other's lock", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "hang" })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, "slow")
        yield* seedExpired(endpoint, "fast")
        const slow = yield* Effect.fork(refresher.getAccessToken("slow"))
        // The slow key holds its lock for as long as its request hangs: on the TestClock, until the clock moves.
        yield* Effect.promise(() => endpoint.waitForRequests(1))
        const fast = yield* Effect.fork(refresher.getAccessToken("fast"))
        const token = yield* joinWithin(fast, "the fast key, while the slow key's request hangs")
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.isTrue(Option.isNone(yield* Fiber.poll(slow)), "the slow key's request is still hanging")
        yield* Fiber.interrupt(slow)
      }).pipe(
        // The slow key's sent attempt times out, so the engine's scope can close (also when an assertion failed).
        Effect.ensuring(TestClock.adjust("60 seconds")),
        Effect.provide(engine(endpoint, { endpoint: { timeout: "60 seconds" } }))
      )
    }))

  it.scopedLive("a failed write is reported and nobody sees the new token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const inner = yield* TokenStore.makeMemory
      let failWrites = false
      const store = TokenStore.TokenStore.of({
        ...inner,
        // The refresh-in-flight intent is written; the answer is not.
        compareAndSet: (key, version, grant) =>
          failWrites && grant.refreshStartedAt === undefined
            ? Effect.fail(new RefreshError.StoreError({ operation: "compareAndSet", detail: "disk full" }))
            : inner.compareAndSet(key, version, grant)
      })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        failWrites = true
        const error = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(endpoint.refreshRequests, 1)
        assert.isUndefined(refresher.unsafeCachedAccessToken(KEY))
      }).pipe(Effect.provide(engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, store) })))
    }))

  it.scopedLive("a grant seeded with only a refresh token is refreshed on first use", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* refresher.setGrant(KEY, { refreshToken: endpoint.mintRefreshToken() })
        assert.isUndefined(refresher.unsafeCachedAccessToken(KEY))
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        assert.strictEqual(endpoint.refreshRequests, 1)
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scopedLive("bad grant input is a typed error and stores nothing", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const store = yield* TokenStore.TokenStore
        const none = yield* Effect.flip(refresher.setGrant(KEY, { accessToken: "", refreshToken: "" }))
        assert.strictEqual(none._tag, "ConfigurationError")
        const negative = yield* Effect.flip(refresher.setGrant(KEY, { accessToken: "at", expiresIn: -5 }))
        assert.strictEqual(negative._tag, "ConfigurationError")
        assert.isTrue(Option.isNone(yield* store.get(KEY)))
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("InvalidClient pauses the client: other grants fail fast without a request", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "respond", status: 401, body: { error: "invalid_client" } })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, "a")
        yield* seedExpired(endpoint, "b")
        assert.strictEqual((yield* Effect.flip(refresher.getAccessToken("a")))._tag, "InvalidClient")
        assert.strictEqual((yield* Effect.flip(refresher.getAccessToken("b")))._tag, "InvalidClient")
        assert.strictEqual(endpoint.refreshRequests, 1)
        // Failing fast during the pause does not extend it: it ends 200 ms after the real failure.
        yield* TestClock.adjust("120 millis")
        assert.strictEqual((yield* Effect.flip(refresher.getAccessToken("b")))._tag, "InvalidClient")
        assert.strictEqual(endpoint.refreshRequests, 1)
        yield* TestClock.adjust("120 millis")
        // The grants are untouched.
        const token = yield* refresher.getAccessToken("b")
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
      }).pipe(Effect.provide(engine(endpoint, { refresher: { invalidClientPause: "200 millis" } })))
    }))

  it.scopedLive("a lock timeout after another holder stored a fresh grant serves that grant (SF-4)", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const inner = yield* TokenStore.makeMemory
      // Another process holds the lease for too long, but stores its refresh before we give up.
      const store = TokenStore.TokenStore.of({
        ...inner,
        withLock: (key) =>
          Effect.gen(function*() {
            const current = Option.getOrThrow(yield* inner.get(key))
            yield* inner.compareAndSet(
              key,
              current.version,
              new Token.Grant({ ...current, accessToken: Redacted.make("at_from_other_holder"), expiresAt: Date.now() + 3_600_000 })
            )
            return yield* new RefreshError.LockTimeout({ waitedMillis: 60_000 })
          }) as never
      })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), "at_from_other_holder")
        assert.strictEqual(endpoint.refreshRequests, 0)
      }).pipe(Effect.provide(engine(endpoint, { store: Layer.succeed(TokenStore.TokenStore, store) })))
    }))

  it.scopedLive("the exposure window from the 2xx to the stored grant is measured (DU-5)", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      const before = (yield* Metric.value(Telemetry.persistLag)).count
      yield* Effect.gen(function*() {
        yield* seedExpired(endpoint, KEY)
        yield* (yield* Refresher.Refresher).getAccessToken(KEY)
      }).pipe(Effect.provide(engine(endpoint)))
      const after = yield* Metric.value(Telemetry.persistLag)
      assert.strictEqual(after.count - before, 1)
      assert.isAtLeast(after.min, 0)
    }))

  it.scopedLive("typed errors for a missing grant and a grant without refresh token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const missing = yield* Effect.flip(refresher.getAccessToken("nobody"))
        assert.strictEqual(missing._tag, "GrantNotFound")
        yield* refresher.setGrant(KEY, { accessToken: "at_only", expiresIn: 0 })
        const none = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(none._tag, "NoRefreshToken")
        assert.match(none.message, /authorize/i)
        assert.strictEqual(endpoint.requests.length, 0)
      }).pipe(Effect.provide(engine(endpoint)))
    }))

  it.scoped("the layer's scope closing waits for a sent attempt, bounded by its timeout", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "hang" })
      const run = yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        return yield* refresher.getAccessToken(KEY).pipe(Effect.timeout("100 millis"), Effect.exit)
        // A daemon: should closing hang for good, the test still ends, with joinWithin's message.
      }).pipe(Effect.provide(engine(endpoint, { endpoint: { timeout: "300 millis" } })), Effect.forkDaemon)
      yield* Effect.promise(() => endpoint.waitForRequests(1))
      // The caller gives up at 100 ms; the scope then closes, and waits for the hanging attempt until its timeout.
      yield* TestClock.adjust("299 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(run)), "the scope closed before its sent attempt ended")
      yield* TestClock.adjust("1 millis")
      const exit = yield* joinWithin(run, "closing the layer's scope")
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(endpoint.refreshRequests, 1)
    }))
})

describe("Refresher on a durable store: the refresh-in-flight intent (DU-4)", () => {
  // A memory store that claims durability, so the engine records intents as it does on SQLite, Redis or PostgreSQL.
  const durableMemory = Layer.effect(
    TokenStore.TokenStore,
    Effect.map(TokenStore.makeMemory, (store) => TokenStore.TokenStore.of({ ...store, durability: "durable" }))
  )
  const stored = Effect.flatMap(TokenStore.TokenStore, (store) => Effect.map(store.get(KEY), Option.getOrThrow))

  /** Writes `grant` as a crashed holder would have left it: intent set, nobody refreshing. */
  const leaveIntent = (refreshToken: string) =>
    Effect.gen(function*() {
      const store = yield* TokenStore.TokenStore
      const now = yield* Clock.currentTimeMillis
      const grant = Either.getOrThrow(Token.grantFromInput(
        { accessToken: "at_before_crash", refreshToken, expiresIn: 0 },
        { now, defaultLifetime: "1 hour", version: 0 }
      ))
      yield* store.compareAndSet(KEY, undefined, new Token.Grant({ ...grant, refreshStartedAt: now - 1000 }))
    })

  it.scopedLive("a refresh writes the intent first and clears it with the outcome", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const seeded = yield* seedExpired(endpoint, KEY)
        yield* refresher.getAccessToken(KEY)
        const after = yield* stored
        assert.strictEqual(after.version, seeded.version + 2, "intent write + outcome write")
        assert.isUndefined(after.refreshStartedAt)
      }).pipe(Effect.provide(engine(endpoint, { store: durableMemory })))
    }))

  it.scopedLive("a leftover intent whose refresh token was rotated away ends as rotation_lost, never silently", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ rotation: true })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        // The crashed holder's request reached the server: it rotated, and the new token was never stored.
        const old = endpoint.mintRefreshToken()
        yield* Effect.promise(() =>
          fetch(endpoint.url, {
            method: "POST",
            headers: {
              "content-type": "application/x-www-form-urlencoded",
              authorization: `Basic ${btoa(`renew-test-client:CANARY-client-secret-7f3a9c2e`)}`
            },
            body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: old })
          })
        )
        yield* leaveIntent(old)
        const error = yield* Effect.flip(refresher.getAccessToken(KEY))
        assert.strictEqual(error._tag, "InvalidGrant")
        assert.strictEqual((error as RefreshError.InvalidGrant).reason, "rotation_lost")
        assert.match(error.message, /lost/)
        const after = yield* stored
        assert.strictEqual(after.reauthRequired, "rotation_lost")
        assert.isUndefined(after.refreshStartedAt)
      }).pipe(Effect.provide(engine(endpoint, { store: durableMemory })))
    }))

  it.scopedLive("a leftover intent whose request never reached the server recovers with the stored token", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint({ rotation: true })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* leaveIntent(endpoint.mintRefreshToken())
        const token = yield* refresher.getAccessToken(KEY)
        assert.strictEqual(Redacted.value(token), endpoint.lastIssued()!.accessToken)
        const after = yield* stored
        assert.isUndefined(after.refreshStartedAt)
        assert.isTrue(endpoint.isActive(Redacted.value(after.refreshToken!)))
      }).pipe(Effect.provide(engine(endpoint, { store: durableMemory })))
    }))

  it.scoped("a definite failure clears the intent; an ambiguous one (timeout) leaves it for the next holder", () =>
    Effect.gen(function*() {
      const endpoint = yield* scriptedEndpoint()
      endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_scope" } }, { kind: "hang" })
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        yield* seedExpired(endpoint, KEY)
        assert.strictEqual((yield* Effect.flip(refresher.getAccessToken(KEY)))._tag, "InvalidScope")
        assert.isUndefined((yield* stored).refreshStartedAt)
        const second = yield* Effect.fork(Effect.flip(refresher.getAccessToken(KEY)))
        // The clock reaches the attempt's timeout only once the request hangs at the server.
        yield* Effect.promise(() => endpoint.waitForRequests(2))
        yield* TestClock.adjust("200 millis")
        assert.strictEqual((yield* joinWithin(second, "the timed-out refresh"))._tag, "Timeout")
        assert.isDefined((yield* stored).refreshStartedAt)
      }).pipe(Effect.provide(engine(endpoint, {
        store: durableMemory,
        endpoint: { timeout: "200 millis" },
        refresher: { retry: { maxAttempts: 1 }, failureCooldown: 0 }
      })))
    }))
})
