/**
 * ONE suite for the `RefreshScheduler` on every store: replicas (each a Refresher and a scheduler of its own) share one
 * backend and one scripted loopback token endpoint, as the processes of a fleet would. Sweeps are run by hand and the
 * TestClock moves time, so nothing depends on the machine's speed; the HTTP exchanges are real.
 */
import { assert, describe, it } from "@effect/vitest"
import { Refresher, RefreshEvents, RefreshScheduler, TokenStore } from "@renew/core"
import type { ScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Effect, Fiber, Layer, Logger, LogLevel, Redacted, TestClock } from "effect"
import type * as Scope from "effect/Scope"
import * as Engine from "./Engine.js"

export interface SchedulerSuiteOptions<E> {
  /**
   * Makes a fresh backend for one test and returns how to open clients of it; every client opened reaches that
   * backend (see `SchedulingSuite`).
   */
  readonly backend: Effect.Effect<Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>, E, Scope.Scope>
  /**
   * Grants in the exactly-once test (default 2,000: every one is a real HTTP refresh through the store; the store's
   * claims alone are tested with 10,000 in `SchedulingSuite`, and `bench/scheduler.ts` runs 100,000).
   */
  readonly grants?: number | undefined
}

type Replica = Refresher.Refresher | RefreshScheduler.RefreshScheduler | TokenStore.TokenStore

/** Fast enough that no test waits on the rate limit unless it means to. */
const UNLIMITED = { maxPerSecond: 1_000_000, maxConcurrent: 16 } as const

/** One replica: a store client of the backend, a Refresher and a scheduler (no loop: tests sweep by hand). */
const replica = <E>(
  endpoint: ScriptedTokenEndpoint,
  open: Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>,
  options: {
    readonly refresher?: Refresher.RefresherOptions
    readonly scheduler?: RefreshScheduler.RefreshSchedulerOptions
    readonly events?: Array<RefreshEvents.RefreshEvent>
  } = {}
): Layer.Layer<Replica> => {
  const events = options.events
  const engine = Engine.engine(endpoint, {
    refresher: { retry: { maxAttempts: 1 }, ...options.refresher },
    store: Layer.scoped(TokenStore.TokenStore, Effect.orDie(open))
  })
  const withEvents = events === undefined
    ? engine
    : engine.pipe(Layer.provide(RefreshEvents.layer((event) => Effect.sync(() => void events.push(event)))))
  return Layer.effect(RefreshScheduler.RefreshScheduler, RefreshScheduler.make({ ...UNLIMITED, ...options.scheduler }))
    .pipe(
      Layer.provideMerge(withEvents),
      Layer.provide(Engine.endpointLayer(endpoint)),
      // An info line per refresh is noise at this volume (and costs more than the refresh).
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
      Layer.orDie
    )
}

/** Runs `program` in a replica and returns its result; the replica closes after. */
const inReplica = <A, E2>(layer: Layer.Layer<Replica>, program: Effect.Effect<A, E2, Replica>) =>
  Effect.scoped(Effect.provide(program, layer)).pipe(Logger.withMinimumLogLevel(LogLevel.Warning))

const sweep = Effect.flatMap(RefreshScheduler.RefreshScheduler, (scheduler) => scheduler.sweep)

/** Seeds `count` grants whose access tokens are expired (due at once); returns key → refresh token. */
const seedDue = (endpoint: ScriptedTokenEndpoint, prefix: string, count: number) =>
  Effect.flatMap(Refresher.Refresher, (refresher) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => `${prefix}:${i}`),
      (key) => {
        const refreshToken = endpoint.mintRefreshToken()
        return Effect.as(
          refresher.setGrant(key, { accessToken: "at_expired", refreshToken, expiresIn: 0 }),
          [key, refreshToken] as const
        )
      },
      { concurrency: 32 }
    ))

/**
 * @since 0.1.0
 */
export const suite = <E>(name: string, options: SchedulerSuiteOptions<E>): void => {
  const count = options.grants ?? 2_000

  describe(`${name}: RefreshScheduler`, () => {
    it.scoped(`8 replicas sweeping ${count} due grants at once: each grant refreshed exactly once`, () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint({ accessTokenTtlSeconds: 3600 })
        const open = yield* options.backend
        const replicas = Array.from({ length: 8 }, () => replica(endpoint, open))
        const seeded = yield* inReplica(replicas[0]!, seedDue(endpoint, "fleet", count))
        const reports = yield* Effect.all(replicas.map((layer) => inReplica(layer, sweep)), {
          concurrency: "unbounded"
        })
        assert.strictEqual(reports.reduce((sum, report) => sum + report.claimed, 0), count, "claims")
        assert.strictEqual(endpoint.refreshRequests, count, "token requests")
        const twice = seeded.filter(([, refreshToken]) => endpoint.presentations(refreshToken) !== 1)
        assert.strictEqual(twice.length, 0, "refresh tokens presented other than once")
        // Every grant now holds a fresh token and is due again only before its new expiry.
        const backlog = yield* Effect.flatMap(open, (store) => store.scheduling!.backlog(0))
        assert.strictEqual(backlog.scheduled, count)
      }).pipe(Effect.orDie), { timeout: 300_000 })

    // Live clock: cross-process lock waits poll with sleeps, which a still TestClock would never end.
    it.scopedLive("a scheduler and callers on another replica at once: one request per grant", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint({ latencyMs: 5 })
        const open = yield* options.backend
        const scheduler = replica(endpoint, open)
        const callers = replica(endpoint, open)
        const seeded = yield* inReplica(scheduler, seedDue(endpoint, "race", 200))
        const calls = Effect.flatMap(Refresher.Refresher, (refresher) =>
          Effect.forEach(seeded, ([key]) => refresher.getAccessToken(key), { concurrency: 50 }))
        const [report, tokens] = yield* Effect.all([inReplica(scheduler, sweep), inReplica(callers, calls)], {
          concurrency: "unbounded"
        })
        assert.strictEqual(tokens.length, 200)
        assert.strictEqual(endpoint.refreshRequests, 200)
        for (const [, refreshToken] of seeded) assert.strictEqual(endpoint.presentations(refreshToken), 1)
        assert.strictEqual(report.refreshed + report.alreadyFresh + report.failed, report.claimed)
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("a 429 with Retry-After pauses the token endpoint for every replica until it ends", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint()
        endpoint.script({ kind: "respond", status: 429, headers: { "retry-after": "60" }, body: { error: "slow_down" } })
        const open = yield* options.backend
        const one = replica(endpoint, open, { scheduler: { maxConcurrent: 1, hold: "30 seconds" } })
        const other = replica(endpoint, open, { scheduler: { hold: "30 seconds" } })
        yield* inReplica(one, seedDue(endpoint, "paused", 10))
        const first = yield* inReplica(one, sweep)
        assert.strictEqual(first.failed, 1)
        assert.strictEqual(endpoint.refreshRequests, 1, "the rest of the batch is not sent while paused")
        yield* TestClock.adjust("31 seconds")
        const during = yield* inReplica(other, sweep)
        assert.strictEqual(during.ended, "paused")
        assert.strictEqual(endpoint.refreshRequests, 1)
        yield* TestClock.adjust("30 seconds")
        const after = yield* inReplica(other, sweep)
        assert.strictEqual(after.ended, "drained")
        assert.strictEqual(after.refreshed, 10)
        assert.strictEqual(endpoint.refreshRequests, 11)
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("keep-alive: a grant with a 10-year access token is refreshed after keepAlive, and not before", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint()
        const open = yield* options.backend
        const keepAlive = replica(endpoint, open, { refresher: { keepAlive: "1 day" } })
        yield* inReplica(keepAlive, Effect.flatMap(Refresher.Refresher, (refresher) =>
          refresher.setGrant("idle", {
            accessToken: "at_long_lived",
            refreshToken: endpoint.mintRefreshToken(),
            expiresIn: 10 * 365 * 24 * 3600
          })))
        yield* TestClock.adjust("23 hours")
        assert.strictEqual((yield* inReplica(keepAlive, sweep)).claimed, 0)
        yield* TestClock.adjust("1 hour")
        const report = yield* inReplica(keepAlive, sweep)
        assert.strictEqual(report.refreshed, 1)
        assert.strictEqual(endpoint.refreshRequests, 1)
        // Off (the default), the same grant is not due for years.
        const plain = replica(endpoint, open)
        yield* inReplica(plain, Effect.flatMap(Refresher.Refresher, (refresher) =>
          refresher.setGrant("idle-plain", {
            accessToken: "at_long_lived",
            refreshToken: endpoint.mintRefreshToken(),
            expiresIn: 10 * 365 * 24 * 3600
          })))
        yield* TestClock.adjust("2 days")
        const later = yield* inReplica(plain, sweep)
        assert.strictEqual(later.refreshed, 1, "only the keep-alive grant, again after its second day")
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("events on state changes only, once across two replicas: failing, recovered, reauthRequired", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint()
        const open = yield* options.backend
        const events: Array<RefreshEvents.RefreshEvent> = []
        const one = replica(endpoint, open, { events })
        const other = replica(endpoint, open, { events })
        yield* inReplica(one, seedDue(endpoint, "events", 1))
        const unavailable = { kind: "respond", status: 503, body: { error: "temporarily_unavailable" } } as const
        endpoint.script(unavailable, unavailable)
        yield* inReplica(one, sweep)
        // A failing grant is tried again after as long as it has been failing (30 s at least).
        yield* TestClock.adjust("30 seconds")
        yield* inReplica(other, sweep)
        assert.strictEqual(endpoint.refreshRequests, 2)
        yield* TestClock.adjust("60 seconds")
        yield* Effect.all([inReplica(one, sweep), inReplica(other, sweep)], { concurrency: "unbounded" })
        // The second failure and the concurrent sweeps report nothing new.
        yield* Effect.yieldNow()
        assert.deepStrictEqual(events.map((event) => [event._tag, event.key]), [
          ["Failing", "events:0"],
          ["Recovered", "events:0"]
        ])
        yield* inReplica(one, seedDue(endpoint, "dead", 1))
        endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant" } })
        yield* Effect.all([inReplica(one, sweep), inReplica(other, sweep)], { concurrency: "unbounded" })
        yield* Effect.yieldNow()
        const reauth = events.filter((event) => event._tag === "ReauthRequired")
        assert.deepStrictEqual(reauth.map((event) => event.key), ["dead:0"])
        for (const event of events) assert.notInclude(JSON.stringify(event), Engine.CLIENT_SECRET)
        assert.strictEqual(endpoint.refreshRequests, 4)
        // A dead grant is never claimed again.
        yield* TestClock.adjust("1 day")
        const later = yield* inReplica(other, sweep)
        assert.strictEqual(later.claimed, 1, "only the live grant")
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("a sweep that reaches the end of its period stops claiming; what it left is claimed by the next", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint({ latencyMs: 50 })
        const open = yield* options.backend
        const layer = replica(endpoint, open, { scheduler: { interval: "1 second", batchSize: 2, maxConcurrent: 1 } })
        yield* inReplica(layer, seedDue(endpoint, "overrun", 6))
        const report = yield* inReplica(layer, Effect.gen(function*() {
          const running = yield* Effect.fork(sweep)
          yield* Effect.promise(() => endpoint.waitForRequests(1))
          yield* TestClock.adjust("1 second")
          return yield* Fiber.join(running)
        }))
        assert.strictEqual(report.ended, "overran")
        assert.strictEqual(report.claimed, 2, "one batch, then the period was over")
        const next = yield* inReplica(layer, sweep)
        assert.strictEqual(next.claimed, 4)
        assert.strictEqual(endpoint.refreshRequests, 6)
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("invalid_client pauses the client: the rest of the batch fails fast without requests", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint()
        endpoint.script({ kind: "respond", status: 401, body: { error: "invalid_client" } })
        const open = yield* options.backend
        const layer = replica(endpoint, open, { scheduler: { maxConcurrent: 1 } })
        yield* inReplica(layer, Effect.gen(function*() {
          yield* seedDue(endpoint, "client", 5)
          const report = yield* sweep
          assert.strictEqual(report.failed, 5)
          assert.strictEqual(endpoint.refreshRequests, 1)
        }))
      }).pipe(Effect.orDie), { timeout: 60_000 })

    it.scoped("the layer sweeps every interval: due grants are refreshed without any caller", () =>
      Effect.gen(function*() {
        const endpoint = yield* Engine.scriptedEndpoint()
        const open = yield* options.backend
        const engine = Engine.engine(endpoint, { store: Layer.scoped(TokenStore.TokenStore, Effect.orDie(open)) })
        yield* Effect.gen(function*() {
          yield* seedDue(endpoint, "loop", 3)
          const deadline = Date.now() + 30_000
          while (endpoint.refreshRequests < 3 && Date.now() < deadline) {
            yield* TestClock.adjust("5 seconds")
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
          }
          assert.strictEqual(endpoint.refreshRequests, 3)
          const store = yield* TokenStore.TokenStore
          const grant = yield* store.get("loop:0")
          assert.isTrue(grant._tag === "Some" && Redacted.value(grant.value.accessToken!) !== "at_expired")
        }).pipe(
          Effect.provide(
            RefreshScheduler.layer({ interval: "5 seconds", ...UNLIMITED }).pipe(
              Layer.provideMerge(engine),
              Layer.provide(Engine.endpointLayer(endpoint)),
              Layer.orDie
            )
          )
        )
      }).pipe(Effect.orDie), { timeout: 60_000 })
  })
}
