/**
 * Engine instances as the fault model runs them: each one built from the public layers (`Refresher.layer`,
 * `TokenEndpoint.layer`, an HttpClient to the simulated server, a store) on its own scheduler, so it can crash.
 *
 * What a crash is, in process: the instance's scheduler is frozen. None of its fibers runs again — no finalizer, no
 * lease release or renewal, no write, no answer read — exactly like a process that was killed; its memory is simply
 * never used again. Its requests still in flight are recorded by the server as answers lost to a crash.
 * - SQLite: each instance has its own connection to the shared file, like a separate process; a dead holder's
 *   lease stays until its TTL runs out, and the next holder finds its "refresh in flight" intent.
 * - Memory: the instances share one `TokenStore.makeMemory` (several engines in one process). Its per-key lock is a
 *   semaphore a frozen fiber would hold for ever, which no real crash does (the lock dies with its process), so the
 *   model's memory store keeps the grants in `makeMemory` and takes its lock from `CrashAwareLocks`, which frees a
 *   crashed instance's locks the way an OS frees a dead process's file locks.
 *
 * A graceful shutdown is closing the instance's scope.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import { Refresher, type RefreshError, RefreshScheduler, TokenEndpoint, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "./sqliteStore.js"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { AuthServer } from "./AuthServer.js"
import { CLIENT_ID, CLIENT_SECRET, INTROSPECTION_URL, TOKEN_URL } from "./AuthServer.js"
import type { History } from "./History.js"
import type { SimScheduler, SimTime } from "./SimTime.js"

/**
 * Options the engine is getting for issue 11 (a reuse grace period, a failure cooldown, a Retry-After cap). Until
 * `RefresherOptions` has them they pass through here, the one place to wire them.
 */
export interface UpcomingRefresherOptions {
  /** The server accepts a consumed refresh token again within this long (a declared reuse grace period). */
  readonly reuseGracePeriod?: Duration.DurationInput | undefined
}

/** A schedule a user might bring: exponential back-off, three retries. */
const customSchedule = Schedule.exponential(Duration.millis(200)).pipe(Schedule.intersect(Schedule.recurs(3)))

export const refresherOptions = (
  options: Refresher.RefresherOptions & UpcomingRefresherOptions
): Refresher.RefresherOptions => options as Refresher.RefresherOptions

interface Ticket {
  readonly instance: number
}

/** Per-key FIFO locks owned by instances; a crashed instance's locks are freed. */
export interface CrashAwareLocks {
  readonly withLock: (instance: number) => TokenStore.TokenStore["Type"]["withLock"]
  readonly crash: (instance: number) => void
}

export const makeCrashAwareLocks = (): CrashAwareLocks => {
  const locks = new Map<string, { holder: Ticket | undefined; queue: Array<{ ticket: Ticket; wake: () => void }> }>()
  const lockOf = (key: string) => {
    let lock = locks.get(key)
    if (lock === undefined) {
      lock = { holder: undefined, queue: [] }
      locks.set(key, lock)
    }
    return lock
  }
  const release = (key: string, ticket: Ticket) => {
    const lock = lockOf(key)
    lock.queue = lock.queue.filter((waiter) => waiter.ticket !== ticket)
    if (lock.holder !== ticket) return
    const next = lock.queue.shift()
    lock.holder = next?.ticket
    next?.wake()
  }
  const wait = (key: string, ticket: Ticket) =>
    Effect.async<void>((resume) => {
      const lock = lockOf(key)
      if (lock.holder === undefined) {
        lock.holder = ticket
        resume(Effect.void)
      } else {
        lock.queue.push({ ticket, wake: () => resume(Effect.void) })
      }
    })
  return {
    withLock: (instance) => (key, body) =>
      Effect.uninterruptibleMask((restore) => {
        const ticket: Ticket = { instance }
        // A crash hands the lock on at once (a lease that expired): the crashed holder's lease is lost from then on.
        const held = () => lockOf(key).holder === ticket
        const lease = { confirm: Effect.sync(held), isLost: () => !held() }
        return restore(wait(key, ticket)).pipe(
          Effect.onInterrupt(() => Effect.sync(() => release(key, ticket))),
          Effect.zipRight(restore(body(lease)).pipe(Effect.ensuring(Effect.sync(() => release(key, ticket)))))
        )
      }),
    crash: (instance) => {
      for (const [key, lock] of locks) {
        lock.queue = lock.queue.filter((waiter) => waiter.ticket.instance !== instance)
        if (lock.holder?.instance === instance) release(key, lock.holder)
      }
    }
  }
}

export interface Instance {
  readonly _tag: "Instance"
  readonly id: number
  readonly slot: number
  readonly scheduler: SimScheduler
  readonly scope: Scope.CloseableScope
  readonly refresher: Refresher.Refresher["Type"]
  /** The instance's RefreshScheduler (no loop of its own: the history's `Sweep` steps run it). */
  readonly sweeper: RefreshScheduler.RefreshScheduler["Type"]
  status: "alive" | "closing" | "closed" | "crashed"
}

export interface FleetEnv {
  readonly history: History
  readonly time: SimTime
  readonly server: AuthServer
  /** Memory: the shared store. */
  readonly memory: TokenStore.TokenStore["Type"] | undefined
  readonly locks: CrashAwareLocks
  /** SQLite: the shared file. */
  readonly filename: string | undefined
}

/** Why an instance could not be built: the engine refused the configuration. */
export class Refused {
  readonly _tag = "Refused"
  constructor(readonly detail: string) {}
}

export const storeLayer = (env: FleetEnv, instance: number): Layer.Layer<TokenStore.TokenStore, RefreshError.RefreshError | RefreshError.ConfigurationError> =>
  env.memory !== undefined
    ? Layer.succeed(TokenStore.TokenStore, { ...env.memory, withLock: env.locks.withLock(instance) })
    : SqliteTokenStore.layer({ filename: env.filename!, leaseTtl: Duration.millis(env.history.engine.leaseTtlMs) })

export const start = (env: FleetEnv, id: number, slot: number): Effect.Effect<Instance | Refused> =>
  Effect.gen(function*() {
    const { history, server, time } = env
    const scheduler = time.makeScheduler()
    const scope = yield* Scope.make()
    const engine = Refresher.layer(refresherOptions({
      retry: history.engine.retry === "twoAttempts"
        ? { maxAttempts: 2 }
        : history.engine.retry === "customSchedule"
        ? customSchedule
        : undefined,
      reuseGracePeriod: history.engine.declareGrace && history.server.graceMs > 0
        ? Duration.millis(history.server.graceMs)
        : undefined
    })).pipe(
      Layer.provideMerge(TokenEndpoint.layer({
        url: TOKEN_URL,
        clientId: CLIENT_ID,
        clientSecret: Redacted.make(CLIENT_SECRET),
        timeout: Duration.millis(history.engine.timeoutMs),
        ...(history.server.introspection ? { introspectionUrl: INTROSPECTION_URL } : {})
      }).pipe(Layer.provide(Layer.succeed(HttpClient.HttpClient, server.client(id))))),
      Layer.provideMerge(storeLayer(env, id))
    )
    const layer = Layer.effect(
      RefreshScheduler.RefreshScheduler,
      RefreshScheduler.make({ maxPerSecond: 1_000, maxConcurrent: 4 })
    ).pipe(Layer.provideMerge(engine))
    const exit = yield* Layer.buildWithScope(layer, scope).pipe(Effect.withScheduler(scheduler), Effect.exit)
    if (Exit.isFailure(exit)) {
      yield* Scope.close(scope, Exit.void)
      const error = Cause.failureOption(exit.cause)
      if (Option.isSome(error) && error.value._tag === "ConfigurationError") return new Refused(error.value.message)
      return yield* Effect.dieMessage(`instance ${id} could not start: ${Cause.pretty(exit.cause)}`)
    }
    const instance: Instance = {
      _tag: "Instance",
      id,
      slot,
      scheduler,
      scope,
      refresher: Context.get(exit.value, Refresher.Refresher),
      sweeper: Context.get(exit.value, RefreshScheduler.RefreshScheduler),
      status: "alive"
    }
    return instance
  })
