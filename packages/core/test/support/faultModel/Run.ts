/**
 * Runs one history against real engine instances and the simulated server, checking the invariants after every
 * step. Returns the first violation, if any; the property test turns it into a failure that fast-check shrinks.
 *
 * I1 the server never receives a refresh token it already consumed, unless it is within the server's grace period,
 *    or it is a recovery of a rotation whose answer the client provably could not see (a timeout, a reset after the
 *    request was processed, a garbled 2xx, a crash): that answer's successor token is held by no one, so reuse
 *    detection can revoke nothing anyone can use. A token whose first presentation never reached the
 *    server was never consumed, so re-presenting it is fine by construction. Judged by the server, at arrival.
 * I2 no grant is marked `reauthRequired` while the refresh token the store holds is still live on the server (not
 *    consumed, not revoked). A consumed token that a grace period still tolerates does not count: the grant's live
 *    token is then its lost successor, and an engine not told of the grace cannot know it applies.
 * I3 no caller is handed an access token the server does not know or that is past its expiry.
 * I4 every failure a caller sees is one tagged error (`RefreshError`, or `EngineClosed` after shutdown): no
 *    defect, no interruption.
 * I5 once faults stop, a caller gets a valid token within `I5_BOUND_MS` for every grant the server still honours,
 *    every call ends, and a graceful shutdown finishes.
 * I6 no secret (client secret, refresh or access token) appears in an error, a log line or a span.
 */
import { RefreshError, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "./sqliteStore.js"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Util from "node:util"
import * as AuthServer from "./AuthServer.js"
import * as Fleet from "./Fleet.js"
import type { CallKind, History, Step } from "./History.js"
import * as SimTime from "./SimTime.js"
import * as Telemetry from "./Telemetry.js"

/**
 * Once faults stop, how long (simulated) a grant may take to serve a valid token again. The longest legitimate waits
 * are about 30 s each (Retry-After cap, failure cooldown, client pause, a dead holder's lease) and they overlap.
 */
export const I5_BOUND_MS = 120_000
/** How long a graceful shutdown may take (simulated). */
export const SHUTDOWN_BOUND_MS = 60_000
export const START = Date.UTC(2027, 0, 1)

export type Invariant = "I1" | "I2" | "I3" | "I4" | "I5" | "I6"

export interface Violation {
  readonly invariant: Invariant
  /** Index of the step after which it was seen; `steps.length` for the recovery phase. */
  readonly step: number
  readonly detail: string
  /** What the server saw, request by request. */
  readonly trace: string
}

export interface Outcome {
  readonly violation: Violation | undefined
  /** The engine refused the configuration (e.g. a lease shorter than the timeout): nothing to check. */
  readonly refused: string | undefined
  readonly requests: number
  /** What the server saw (at the violation, if any). */
  readonly trace: string
}

interface Call {
  readonly id: number
  readonly instance: Fleet.Instance
  readonly key: string
  readonly kind: CallKind | "setGrant" | "poll" | "sweep"
  readonly startedAt: number
  /** The instance's state when the call was made (a call on a shut-down engine must still answer properly). */
  readonly on: Fleet.Instance["status"]
  status: "pending" | "done" | "died"
  exit?: Exit.Exit<string | undefined, unknown>
  endedAt?: number
  checked?: boolean
}

class Stop {
  constructor(readonly violation: Violation) {}
}

const traceOf = (server: AuthServer.AuthServer): string =>
  server.presentations.map((p) =>
    `  #${p.id} t=${p.at - START} instance ${p.instance} ${server.label(p.token)} ${p.fault}: ${p.stateOnArrival} -> ${p.result}, answer ${p.answer}${
      p.lostBy !== undefined ? ` (${p.lostBy} at t=${p.lostAt! - START})` : ""
    }`
  ).join("\n")

export const runHistory = (history: History): Effect.Effect<Outcome> => {
  const time = SimTime.make(START)
  const telemetry = Telemetry.make()
  return Effect.scoped(Effect.gen(function*() {
    const server = AuthServer.make({
      rotate: history.server.rotate,
      graceMs: history.server.graceMs,
      introspection: history.server.introspection,
      accessTtlSec: history.server.accessTtlSec,
      clientTimeoutMs: history.engine.timeoutMs
    }, time, history.faults)
    const dir = history.store === "sqlite"
      ? yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-fault-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      : undefined
    const env: Fleet.FleetEnv = {
      history,
      time,
      server,
      memory: history.store === "memory" ? yield* TokenStore.makeMemory : undefined,
      locks: Fleet.makeCrashAwareLocks(),
      filename: dir !== undefined ? Path.join(dir, "grants.db") : undefined
    }
    // The checker's own view of the store: the shared memory store, or one more SQLite connection.
    const checker: TokenStore.TokenStore["Type"] = env.memory ?? (yield* SqliteTokenStore.make({ filename: env.filename! }).pipe(Effect.orDie))
    const keys = Array.from({ length: history.keys }, (_, i) => `user-${i}`)
    const slots: Array<Fleet.Instance | undefined> = Array.from({ length: history.instances }, () => undefined)
    const calls: Array<Call> = []
    const lastAccessToken = new Map<string, string>()
    let instanceSeq = 0
    let textCursor = 0
    let stepIndex = -1

    const fail = (invariant: Invariant, detail: string): never => {
      throw new Stop({ invariant, step: stepIndex, detail, trace: traceOf(server) })
    }

    const startSlot = (slot: number) =>
      Effect.flatMap(Fleet.start(env, ++instanceSeq, slot), (instance) =>
        Effect.sync(() => {
          if (instance._tag === "Refused") return instance
          slots[slot] = instance
          return undefined
        }))

    const forkCall = (instance: Fleet.Instance, key: string, kind: Call["kind"], effect: Effect.Effect<string | undefined, unknown>) =>
      Effect.suspend(() => {
        const call: Call = {
          id: calls.length + 1,
          instance,
          key,
          kind,
          startedAt: time.now(),
          on: instance.status,
          status: "pending"
        }
        calls.push(call)
        return effect.pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              call.exit = exit
              call.endedAt = time.now()
              call.status = "done"
            })
          ),
          Effect.withScheduler(instance.scheduler),
          Effect.forkDaemon,
          Effect.as(call)
        )
      })

    const callEngine = (instance: Fleet.Instance, key: string, kind: CallKind | "poll") => {
      const r = instance.refresher
      const last = lastAccessToken.get(key)
      const effect: Effect.Effect<string | undefined, unknown> = kind === "refresh"
        ? Effect.map(r.refresh(key), (grant) => grant.accessToken && Redacted.value(grant.accessToken))
        : kind === "invalidate" && last !== undefined
        ? Effect.map(r.invalidate(key, Redacted.make(last)), (grant) => grant.accessToken && Redacted.value(grant.accessToken))
        : Effect.map(r.getAccessToken(key), Redacted.value)
      return forkCall(instance, key, kind, effect)
    }

    // ---- invariants ----

    const scanSecrets = (where: string, text: string) => {
      for (const needle of AuthServer.canaryNeedles) {
        if (text.includes(needle)) {
          const at = text.indexOf(needle)
          fail("I6", `a secret appears in ${where}: …${text.slice(Math.max(0, at - 80), at)}<SECRET>…`)
        }
      }
    }

    const checkCall = (call: Call) => {
      if (call.status !== "done" || call.checked === true) return
      call.checked = true
      const exit = call.exit!
      const what = `call #${call.id} (${call.kind} ${call.key} on ${call.on} instance ${call.instance.id}, started t=${call.startedAt - START}, ended t=${call.endedAt! - START})`
      if (Exit.isSuccess(exit)) {
        if (call.kind === "setGrant" || exit.value === undefined) return
        const token = exit.value
        const state = server.accessToken(token)
        if (state === undefined) fail("I3", `${what} was handed an access token the server never issued`)
        if (state!.expiresAt <= call.endedAt!) {
          fail("I3", `${what} was handed an access token that expired at t=${state!.expiresAt - START}`)
        }
        lastAccessToken.set(call.key, token)
        return
      }
      const cause = exit.cause
      const error = Cause.isFailType(cause) ? cause.error : undefined
      const tagged = error !== undefined &&
        (RefreshError.isRefreshError(error) || (typeof error === "object" && error !== null && "_tag" in error && error._tag === "EngineClosed"))
      if (!tagged) {
        fail("I4", `${what} failed with something other than one tagged error:\n${Cause.pretty(cause)}`)
      }
      const e = error as Error
      scanSecrets(`the message of a ${(e as { _tag?: string })._tag} error`, e.message)
      scanSecrets(`util.inspect of a ${(e as { _tag?: string })._tag} error`, Util.inspect(e, { depth: 8 }))
      scanSecrets(`String() of a ${(e as { _tag?: string })._tag} error`, String(e))
    }

    const check = Effect.gen(function*() {
      for (const p of server.presentations) {
        if (p.i1 !== undefined) fail("I1", p.i1)
      }
      for (const call of calls) checkCall(call)
      for (const key of keys) {
        const stored = yield* Effect.orDie(checker.get(key))
        if (Option.isSome(stored) && stored.value.reauthRequired !== undefined) {
          const rt = stored.value.refreshToken
          if (rt !== undefined && server.active(Redacted.value(rt))) {
            fail(
              "I2",
              `${key} was marked reauthRequired (${stored.value.reauthRequired}) while its refresh token is still live on the server: ${
                server.label(Redacted.value(rt))
              }`
            )
          }
        }
      }
      for (; textCursor < telemetry.texts.length; textCursor++) {
        scanSecrets("a log line or span", telemetry.texts[textCursor]!)
      }
    })

    // ---- steps ----

    const alive = (slot: number) => {
      const instance = slots[slot % slots.length]
      return instance !== undefined && instance.status === "alive" ? instance : undefined
    }

    const crash = (instance: Fleet.Instance) => {
      instance.scheduler.frozen = true
      instance.status = "crashed"
      server.crashed(instance.id)
      env.locks.crash(instance.id)
      for (const call of calls) if (call.instance === instance && call.status === "pending") call.status = "died"
    }

    const shutdown = (instance: Fleet.Instance) =>
      Effect.gen(function*() {
        instance.status = "closing"
        const fiber = yield* Effect.forkDaemon(Scope.close(instance.scope, Exit.void))
        const closed = yield* time.advanceUntil(() => fiber.unsafePoll() !== null, 100, SHUTDOWN_BOUND_MS)
        if (!closed) {
          fail("I5", `the graceful shutdown of instance ${instance.id} did not finish within ${SHUTDOWN_BOUND_MS} ms`)
        }
        instance.status = "closed"
      })

    const runStep = (step: Step) =>
      Effect.gen(function*() {
        switch (step._tag) {
          case "Advance":
            return yield* time.advance(step.ms)
          case "Call": {
            const instance = slots[step.slot % slots.length]
            // A crashed process cannot be called; a shut-down engine can (and must answer with a tagged error).
            if (instance === undefined || instance.status === "crashed") return
            yield* callEngine(instance, keys[step.key % keys.length]!, step.kind)
            return yield* time.settle
          }
          case "SetGrant": {
            const instance = alive(step.slot)
            if (instance === undefined) return
            const key = keys[step.key % keys.length]!
            const grant = server.authorize(key)
            yield* forkCall(instance, key, "setGrant", Effect.as(instance.refresher.setGrant(key, grant), undefined))
            return yield* time.settle
          }
          case "Crash": {
            const instance = alive(step.slot)
            if (instance !== undefined) crash(instance)
            return
          }
          case "Sweep": {
            const instance = alive(step.slot)
            if (instance === undefined) return
            yield* forkCall(instance, "(every due grant)", "sweep", Effect.as(instance.sweeper.sweep, undefined))
            return yield* time.settle
          }
          case "Shutdown": {
            const instance = alive(step.slot)
            if (instance !== undefined) yield* shutdown(instance)
            return
          }
          case "Restart": {
            const slot = step.slot % slots.length
            const instance = slots[slot]
            if (instance !== undefined && (instance.status === "crashed" || instance.status === "closed")) {
              const refused = yield* startSlot(slot)
              if (refused !== undefined) return yield* Effect.dieMessage(`restart refused: ${refused.detail}`)
            }
            return
          }
        }
      })

    /** Faults stop; every grant the server still honours must serve a valid token within the bound. */
    const recover = Effect.gen(function*() {
      server.stopFaults()
      // Recovery needs one live instance; more would only cost builds.
      if (!slots.some((s) => s?.status === "alive")) {
        const refused = yield* startSlot(0)
        if (refused !== undefined) return yield* Effect.dieMessage(`restart refused: ${refused.detail}`)
      }
      // A grant that cannot come back: the server revoked it, the engine marked it (I2 judges that), or its
      // rotation was lost to an outcome nobody could see (the engine may recover it once, or mark it).
      const exempt = (key: string) =>
        Effect.map(Effect.orDie(checker.get(key)), (stored) => {
          if (Option.isNone(stored) || stored.value.reauthRequired !== undefined) return true
          const rt = stored.value.refreshToken
          if (rt === undefined) return false
          const state = server.refreshToken(Redacted.value(rt))
          if (state === undefined || state.family.revoked) return true
          return state.status === "consumed" && !server.usable(state.value) && state.consumedBy?.answer === "lost" &&
            state.consumedBy.lostBy !== "abandoned"
        })
      const deadline = time.now() + I5_BOUND_MS
      const waiting = new Map<string, Call | undefined>(keys.map((key) => [key, undefined]))
      let round = 0
      while (waiting.size > 0 && time.now() < deadline) {
        for (const [key, pending] of waiting) {
          if (pending !== undefined && pending.status === "done") {
            if (Exit.isSuccess(pending.exit!)) {
              waiting.delete(key)
              continue
            }
            waiting.set(key, undefined)
          }
          if (yield* exempt(key)) {
            waiting.delete(key)
            continue
          }
          if (waiting.get(key) === undefined) {
            const live = slots.filter((s): s is Fleet.Instance => s?.status === "alive")
            waiting.set(key, yield* callEngine(live[round++ % live.length]!, key, "poll"))
          }
        }
        if (waiting.size === 0) break
        yield* time.advance(history.pollMs)
        yield* check
      }
      for (const [key] of waiting) {
        fail(
          "I5",
          `faults stopped at t=${deadline - I5_BOUND_MS - START}; ${I5_BOUND_MS / 1000} s later ${key} still has no valid access token, though the server honours its grant`
        )
      }
      yield* check
      // Calls still running (a retry back-off, a lock wait) must end within the same bound.
      yield* time.advanceUntil(() => calls.every((call) => call.status !== "pending"), 1_000, Math.max(0, deadline - time.now()))
      yield* check
      for (const call of calls) {
        if (call.status === "pending") {
          fail("I5", `call #${call.id} (${call.kind} ${call.key} on instance ${call.instance.id}, started t=${call.startedAt - START}) never ended`)
        }
      }
    })

    const program = Effect.gen(function*() {
      for (let slot = 0; slot < slots.length; slot++) {
        const refused = yield* startSlot(slot)
        if (refused !== undefined) return refused.detail
      }
      for (const key of keys) {
        const grant = server.authorize(key)
        yield* forkCall(slots[0]!, key, "setGrant", Effect.as(
          slots[0]!.refresher.setGrant(key, history.startExpired ? { ...grant, expiresIn: 0 } : grant),
          undefined
        ))
      }
      yield* time.settle
      yield* check
      for (stepIndex = 0; stepIndex < history.steps.length; stepIndex++) {
        yield* runStep(history.steps[stepIndex]!)
        yield* check
      }
      yield* recover
      return undefined
    })

    const result = yield* Effect.exit(program)
    // Tear down whatever still runs; a frozen instance is left as a dead process would be.
    const closing = slots.filter((s): s is Fleet.Instance => s?.status === "alive" || s?.status === "closing")
    const closer = yield* Effect.forkDaemon(Effect.forEach(closing, (s) => Scope.close(s.scope, Exit.void), { discard: true }))
    yield* time.advanceUntil(() => closer.unsafePoll() !== null, 1_000, SHUTDOWN_BOUND_MS)
    if (closer.unsafePoll() === null) yield* Fiber.interrupt(closer).pipe(Effect.forkDaemon)
    const outcome = (violation: Violation | undefined, refused: string | undefined): Outcome => ({
      violation,
      refused,
      requests: server.requestCount(),
      trace: violation?.trace ?? traceOf(server)
    })
    if (Exit.isSuccess(result)) return outcome(undefined, result.value)
    // RENEW_FAULT_DEBUG=1 prints what the engines logged and traced, to read a counterexample.
    if (process.env.RENEW_FAULT_DEBUG !== undefined) console.log(telemetry.texts.join("\n"))
    const defect = Cause.dieOption(result.cause)
    if (Option.isSome(defect) && defect.value instanceof Stop) return outcome(defect.value.violation, undefined)
    return yield* Effect.dieMessage(`the fault model itself failed:\n${Cause.pretty(result.cause)}`)
  })).pipe(
    Effect.withScheduler(time.makeScheduler()),
    Effect.withClock(time.clock),
    Effect.withRandom(Random.make(history.seed)),
    Effect.withTracer(telemetry.tracer),
    Effect.provide(Telemetry.loggerLayer(telemetry))
  )
}
