/**
 * The thundering herd: 10,000 concurrent callers ask for the access token of an expired grant while the loopback
 * token endpoint takes 50 ms to answer. Exactly one token request may be made, and every caller gets its token.
 *
 * Each caller records its own start and end with performance.now(); its latency is end - start. Reported per round:
 * the token requests made, p50 / p99 / max of latency minus the endpoint's 50 ms (target: p99 overhead ≤ 10 ms),
 * the spread of the starts (first caller started to last caller started) and the wall time (first start to last
 * end). One warm-up round (not counted: it opens the HTTP connection and warms the JIT), then 5 rounds, each on a new
 * key seeded with a fresh expired grant; the median round by p99 is reported.
 *
 * Subjects: the Effect API (10k fibers from Effect.forEach with unbounded concurrency) and the TokenManager facade
 * (10k promises). Two references without the engine show what the callers alone cost, with the 50 ms wait made by a
 * timer instead of HTTP: the same 10k fibers awaiting one Deferred, and 10k promises awaiting one promise.
 *
 * Run alone: npx tsx bench/herd.ts
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Deferred, Effect, FiberId, ManagedRuntime, Redacted } from "effect"
import { Refresher, TokenManager } from "../packages/core/src/index.js"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET, engineLayer, fmt, isMain, percentile, signed } from "./support.js"

export const CALLERS = 10_000
const ROUNDS = 5
export const LATENCY_MS = 50
const TARGET_P99_OVERHEAD_MS = 10

export interface Round {
  /** Token requests the endpoint received during the round (undefined for the references: no endpoint). */
  readonly requests: number | undefined
  /** Callers that did not get the token the endpoint issued (must be 0). */
  readonly wrongTokens: number
  readonly p50OverheadMs: number
  readonly p99OverheadMs: number
  readonly maxOverheadMs: number
  /** First caller started to last caller started. */
  readonly startSpreadMs: number
  /** First caller started to last caller done. */
  readonly wallMs: number
}

export interface HerdResult {
  readonly name: string
  /** False for the references, which have no target. */
  readonly hasTarget: boolean
  /** The median round by p99 overhead. */
  readonly median: Round
  readonly rounds: ReadonlyArray<Round>
  readonly pass: boolean
}

/** What one round observed. */
export interface Observed {
  readonly starts: Float64Array
  readonly ends: Float64Array
  readonly tokens: ReadonlyArray<string>
  /** The token every caller must have got. */
  readonly expected: string | undefined
  readonly requests: number | undefined
}

export const summarize = (observed: Observed): Round => {
  const latencies = new Float64Array(CALLERS)
  let firstStart = Infinity
  let lastStart = -Infinity
  let lastEnd = -Infinity
  for (let i = 0; i < CALLERS; i++) {
    latencies[i] = observed.ends[i]! - observed.starts[i]!
    firstStart = Math.min(firstStart, observed.starts[i]!)
    lastStart = Math.max(lastStart, observed.starts[i]!)
    lastEnd = Math.max(lastEnd, observed.ends[i]!)
  }
  latencies.sort()
  return {
    requests: observed.requests,
    wrongTokens: observed.tokens.filter((token) => token !== observed.expected).length,
    p50OverheadMs: percentile(latencies, 0.5) - LATENCY_MS,
    p99OverheadMs: percentile(latencies, 0.99) - LATENCY_MS,
    maxOverheadMs: latencies[CALLERS - 1]! - LATENCY_MS,
    startSpreadMs: lastStart - firstStart,
    wallMs: lastEnd - firstStart
  }
}

/** A warm-up round, then ROUNDS measured ones; `round(i)` sets up round i and runs its herd. */
const measure = async (
  name: string,
  hasTarget: boolean,
  round: (i: number) => Promise<Observed>
): Promise<HerdResult> => {
  const rounds: Array<Round> = []
  for (let i = 0; i <= ROUNDS; i++) {
    const result = summarize(await round(i))
    if (i > 0) rounds.push(result)
  }
  const byP99 = [...rounds].sort((a, b) => a.p99OverheadMs - b.p99OverheadMs)
  const median = byP99[Math.floor(byP99.length / 2)]!
  const correct = rounds.every((r) => (r.requests === undefined || r.requests === 1) && r.wrongTokens === 0)
  return { name, hasTarget, median, rounds, pass: correct && median.p99OverheadMs <= TARGET_P99_OVERHEAD_MS }
}

/** The callers of one round as fibers: each records its start, runs `get`, records its end. */
export const effectCallers = (get: Effect.Effect<string, unknown>) => {
  const starts = new Float64Array(CALLERS)
  const ends = new Float64Array(CALLERS)
  const caller = (i: number) =>
    Effect.suspend(() => {
      starts[i] = performance.now()
      return Effect.map(get, (token) => {
        ends[i] = performance.now()
        return token
      })
    })
  const indices = Array.from({ length: CALLERS }, (_, i) => i)
  return { starts, ends, run: Effect.forEach(indices, caller, { concurrency: "unbounded" }) }
}

/** The callers of one round as promises: each records its start, calls `get`, records its end. */
const promiseCallers = async (get: () => Promise<string>) => {
  const starts = new Float64Array(CALLERS)
  const ends = new Float64Array(CALLERS)
  const pending: Array<Promise<string>> = new Array(CALLERS)
  for (let i = 0; i < CALLERS; i++) {
    starts[i] = performance.now()
    pending[i] = get().then((token) => {
      ends[i] = performance.now()
      return token
    })
  }
  return { starts, ends, tokens: await Promise.all(pending) }
}

type EngineRuntime = ManagedRuntime.ManagedRuntime<Refresher.Refresher, never>

export const expiredGrant = (endpoint: ScriptedTokenEndpoint) => ({
  accessToken: "at_expired",
  refreshToken: endpoint.mintRefreshToken(),
  expiresIn: 0
})

const herdEffect = (runtime: EngineRuntime, endpoint: ScriptedTokenEndpoint): Promise<HerdResult> =>
  measure("Effect API", true, async (i) => {
    const refresher = await runtime.runPromise(Refresher.Refresher)
    const key = `effect-${i}`
    await runtime.runPromise(refresher.setGrant(key, expiredGrant(endpoint)))
    const requestsBefore = endpoint.refreshRequests
    const { ends, run, starts } = effectCallers(Effect.map(refresher.getAccessToken(key), Redacted.value))
    const tokens = await runtime.runPromise(run)
    return {
      starts,
      ends,
      tokens,
      expected: endpoint.lastIssued()?.accessToken,
      requests: endpoint.refreshRequests - requestsBefore
    }
  })

const herdTokenManager = async (endpoint: ScriptedTokenEndpoint): Promise<HerdResult> => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    httpClient: NodeHttpClient.layerUndici
  })
  try {
    return await measure("TokenManager", true, async (i) => {
      const key = `manager-${i}`
      await tokens.setGrant(key, expiredGrant(endpoint))
      const requestsBefore = endpoint.refreshRequests
      const observed = await promiseCallers(() => tokens.getAccessToken(key))
      return {
        ...observed,
        expected: endpoint.lastIssued()?.accessToken,
        requests: endpoint.refreshRequests - requestsBefore
      }
    })
  } finally {
    await tokens.dispose()
  }
}

/**
 * Reference: the same fibers, run by the same runtime, awaiting one Deferred that a fiber forked by the first caller
 * completes 50 ms later (as the engine forks its refresh).
 */
const floorEffect = (runtime: EngineRuntime): Promise<HerdResult> =>
  measure("ref: fibers", false, async () => {
    const done = Deferred.unsafeMake<string>(FiberId.none)
    let started = false
    const get = Effect.suspend(() => {
      if (started) return Deferred.await(done)
      started = true
      const flight = Effect.delay(Deferred.succeed(done, "token"), LATENCY_MS)
      return Effect.zipRight(Effect.forkDaemon(flight), Deferred.await(done))
    })
    const { ends, run, starts } = effectCallers(get)
    const tokens = await runtime.runPromise(run)
    return { starts, ends, tokens, expected: "token", requests: undefined }
  })

/** Reference: promises awaiting one promise that a timer resolves 50 ms after the first caller asked. */
const floorPromise = (): Promise<HerdResult> =>
  measure("ref: promises", false, async () => {
    let shared: Promise<string> | undefined
    const get = () =>
      (shared ??= new Promise<string>((resolve) => setTimeout(() => resolve("token"), LATENCY_MS)))
    return { ...(await promiseCallers(get)), expected: "token", requests: undefined }
  })

export const runHerd = async (): Promise<ReadonlyArray<HerdResult>> => {
  const endpoint = await startScriptedTokenEndpoint({
    latencyMs: LATENCY_MS,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET
  })
  const runtime = ManagedRuntime.make(engineLayer(endpoint))
  try {
    return [
      await herdEffect(runtime, endpoint),
      await herdTokenManager(endpoint),
      await floorEffect(runtime),
      await floorPromise()
    ]
  } finally {
    await runtime.dispose()
    await endpoint.close()
  }
}

export const describeRound = (r: Round) =>
  `requests ${r.requests ?? "-"}  p50 ${signed(r.p50OverheadMs)} ms  p99 ${signed(r.p99OverheadMs)} ms  ` +
  `max ${signed(r.maxOverheadMs)} ms  starts spread ${fmt(r.startSpreadMs)} ms  wall ${fmt(r.wallMs)} ms` +
  (r.wrongTokens > 0 ? `  WRONG TOKENS ${r.wrongTokens}` : "")

export const printHerd = (results: ReadonlyArray<HerdResult>) => {
  console.log(
    `herd: ${CALLERS.toLocaleString("en")} concurrent callers on an expired grant, endpoint latency ${LATENCY_MS} ms; ` +
      `median of ${ROUNDS} rounds (by p99) after a warm-up; overhead = latency - ${LATENCY_MS} ms`
  )
  for (const r of results) {
    const verdict = r.hasTarget
      ? `(target: 1 request, p99 ≤ ${TARGET_P99_OVERHEAD_MS} ms)  ${r.pass ? "PASS" : "FAIL"}`
      : "(reference, no engine)"
    console.log(`  ${r.name.padEnd(13)} ${describeRound(r.median)}  ${verdict}`)
    for (const [i, round] of r.rounds.entries()) console.log(`    round ${i + 1}: ${describeRound(round)}`)
  }
}

if (isMain(import.meta.url)) {
  printHerd(await runHerd())
}
