/**
 * The cached path: `getAccessToken` on a fresh grant, compared with the cheapest equivalent lookup run the same way.
 *
 * - Effect API: 200k `yield* refresher.getAccessToken(key)` in one Effect.gen, run with Effect.runPromise, versus
 *   200k `yield* Effect.sync(() => map.get(key))`. Target: ratio ≤ 2.
 * - TokenManager: 200k `await tokens.getAccessToken(key)` versus 200k `await get(key)` with
 *   `const get = async (k) => map.get(k)`. Target: ratio ≤ 1.5.
 *
 * One warm-up run of each, then 5 measured runs interleaved (baseline, subject, baseline, subject, …); the ratio is
 * median(subject) / median(baseline).
 *
 * Run alone: npx tsx bench/fast-path.ts
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { Refresher, TokenManager } from "../packages/core/src/index.js"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET, engineLayer, fmt, isMain, median } from "./support.js"

const CALLS = 200_000
const RUNS = 5
const KEY = "user-42"
const ACCESS_TOKEN = "at_fresh_bench"

export interface Comparison {
  readonly name: string
  readonly baselineNsPerOp: number
  readonly subjectNsPerOp: number
  readonly ratio: number
  readonly target: number
  readonly pass: boolean
  /** Every run, in milliseconds, for the curious. */
  readonly baselineRunsMs: ReadonlyArray<number>
  readonly subjectRunsMs: ReadonlyArray<number>
}

/** Times `run` once; throws if it did not see `CALLS` tokens (a broken subject must not look fast). */
const timeOnce = async (run: () => Promise<number>): Promise<number> => {
  const start = performance.now()
  const seen = await run()
  const elapsed = performance.now() - start
  if (seen !== CALLS) throw new Error(`expected ${CALLS} tokens, got ${seen}`)
  return elapsed
}

const compare = async (
  name: string,
  target: number,
  baseline: () => Promise<number>,
  subject: () => Promise<number>
): Promise<Comparison> => {
  await timeOnce(baseline)
  await timeOnce(subject)
  const baselineRunsMs: Array<number> = []
  const subjectRunsMs: Array<number> = []
  for (let run = 0; run < RUNS; run++) {
    baselineRunsMs.push(await timeOnce(baseline))
    subjectRunsMs.push(await timeOnce(subject))
  }
  const baselineNsPerOp = (median(baselineRunsMs) * 1e6) / CALLS
  const subjectNsPerOp = (median(subjectRunsMs) * 1e6) / CALLS
  const ratio = subjectNsPerOp / baselineNsPerOp
  return {
    name,
    baselineNsPerOp,
    subjectNsPerOp,
    ratio,
    target,
    pass: ratio <= target,
    baselineRunsMs,
    subjectRunsMs
  }
}

export const runFastPath = async (): Promise<ReadonlyArray<Comparison>> => {
  // No request may reach it: the cached path does no I/O. It is there so the engine is wired as in production.
  const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  const runtime = ManagedRuntime.make(engineLayer(endpoint))
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    httpClient: NodeHttpClient.layerUndici
  })
  try {
    const refresher = await runtime.runPromise(Refresher.Refresher)
    await runtime.runPromise(
      refresher.setGrant(KEY, { accessToken: ACCESS_TOKEN, refreshToken: "rt_unused", expiresIn: 3600 })
    )
    await tokens.setGrant(KEY, { accessToken: ACCESS_TOKEN, refreshToken: "rt_unused", expiresIn: 3600 })
    // The loops only count answers; check once, outside the timing, that the answer is the right token.
    const viaEffect = await Effect.runPromise(refresher.getAccessToken(KEY))
    const viaManager = await tokens.getAccessToken(KEY)
    if (Redacted.value(viaEffect) !== ACCESS_TOKEN || viaManager !== ACCESS_TOKEN) {
      throw new Error("the cached grant did not answer its access token")
    }
    const map = new Map([[KEY, Redacted.make(ACCESS_TOKEN)]])
    const plainMap = new Map([[KEY, ACCESS_TOKEN]])

    // --- Effect API ---------------------------------------------------------------------------------------------
    const effectBaseline = Effect.gen(function*() {
      let seen = 0
      for (let i = 0; i < CALLS; i++) {
        const token = yield* Effect.sync(() => map.get(KEY))
        if (token !== undefined) seen++
      }
      return seen
    })
    const effectSubject = Effect.gen(function*() {
      let seen = 0
      for (let i = 0; i < CALLS; i++) {
        const token = yield* refresher.getAccessToken(KEY)
        if (token !== undefined) seen++
      }
      return seen
    })
    const effectApi = await compare(
      "Effect API  getAccessToken",
      2,
      () => Effect.runPromise(effectBaseline),
      () => Effect.runPromise(effectSubject)
    )

    // --- TokenManager (Promise facade) --------------------------------------------------------------------------
    const get = async (key: string) => plainMap.get(key)
    const promiseBaseline = async () => {
      let seen = 0
      for (let i = 0; i < CALLS; i++) {
        const token = await get(KEY)
        if (token !== undefined) seen++
      }
      return seen
    }
    const promiseSubject = async () => {
      let seen = 0
      for (let i = 0; i < CALLS; i++) {
        const token = await tokens.getAccessToken(KEY)
        if (token !== undefined) seen++
      }
      return seen
    }
    const manager = await compare("TokenManager getAccessToken", 1.5, promiseBaseline, promiseSubject)

    if (endpoint.requests.length !== 0) {
      throw new Error(`the cached path made ${endpoint.requests.length} HTTP requests`)
    }
    return [effectApi, manager]
  } finally {
    await tokens.dispose()
    await runtime.dispose()
    await endpoint.close()
  }
}

export const printFastPath = (results: ReadonlyArray<Comparison>) => {
  console.log(`fast path: ${CALLS.toLocaleString("en")} calls per run, median of ${RUNS} runs after a warm-up`)
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(28)} baseline ${fmt(r.baselineNsPerOp).padStart(6)} ns/op  ` +
        `subject ${fmt(r.subjectNsPerOp).padStart(6)} ns/op  ratio ${fmt(r.ratio, 2)}× ` +
        `(target ≤ ${r.target}×)  ${r.pass ? "PASS" : "FAIL"}`
    )
    console.log(
      `    runs ms: baseline [${r.baselineRunsMs.map((ms) => fmt(ms)).join(", ")}]` +
        `  subject [${r.subjectRunsMs.map((ms) => fmt(ms)).join(", ")}]`
    )
  }
}

if (isMain(import.meta.url)) {
  printFastPath(await runFastPath())
}
