/**
 * What tracing costs: the engine with `Otel.layer` (OpenTelemetry SDK, BatchSpanProcessor, OTLP/HTTP protobuf
 * exporter) sending to the loopback OTLP receiver of the tests (test/support/OtlpReceiver.ts) started in this process,
 * against the same engine without it, in the same run, interleaved (off, on, off, on, …), median of 5 after a warm-up
 * of each side. Both sides use the Effect API through their own ManagedRuntime.
 *
 * - Cached path: `yield* refresher.getAccessToken(key)` on a fresh grant, 500k calls per side per run, made in 10
 *   slices of 50k alternating off/on (ABBA) so that both sides see the same machine; ns/op. No span is made on this
 *   path. Target: ≤ +5 %. Also shown, without a target: the same loop inside a caller's span.
 * - Refresh path: 300 sequential forced refreshes (`refresher.refresh`, cooldown 0) against the loopback token endpoint
 *   answering at once; ms/op; two warm-up rounds. Each refresh makes 3 spans (renew.refresh, renew.lock.wait,
 *   renew.refresh.attempt; the platform's http.client span is not recorded since 0.2), exported while the run goes on. Target: ≤ +10 %. A third side, "on → sink", exports the same
 *   way to a loopback server that discards the body: the difference to "on" is what the receiver's decoding (in this
 *   process, on this event loop) costs, which a real collector in another process would not.
 * - Herd: 10,000 fibers on an expired grant, endpoint latency 50 ms, as in herd.ts; p50 / p99 of latency - 50 ms, the
 *   round with the median p99 per side. No target.
 *
 * Refresh runs and herd rounds each get a new runtime, closed after the run outside the timing: closing `Otel.layer`
 * flushes, so a run's spans are exported before the next run starts instead of on the batch processor's 5 s timer in
 * the middle of another run. Each run works on its own key; the `renew.refresh` spans the receiver got for that key's
 * hash are counted, and an "on" run for which none arrived makes the result INVALID. Both sides drop Effect's console
 * logger (one INFO line per refresh otherwise); log calls still become span events when on.
 *
 * Run alone: npx tsx bench/tracing.ts [cached] [refresh] [herd]   (default: all three)
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Layer, Logger, ManagedRuntime, Redacted } from "effect"
import { Refresher, Telemetry } from "../packages/core/src/index.js"
import { Otel } from "../packages/opentelemetry/src/index.js"
import { type OtlpReceiver, startOtlpReceiver } from "@renew/otlp-receiver-fixture"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CALLERS, describeRound, effectCallers, expiredGrant, LATENCY_MS, type Round, summarize } from "./herd.js"
import { CLIENT_ID, CLIENT_SECRET, engineLayer, fmt, isMain, median, signed } from "./support.js"

const RUNS = 5
/** Cached path: calls per side per run, made in SLICES alternating slices. */
const CALLS = 500_000
const SLICES = 10
const REFRESHES = 300
/** The first runs of the refresh path are still slow (JIT, heap growth) on both sides: two warm-up rounds. */
const REFRESH_WARM_UPS = 2
const SERVICE = "renew-bench"
const CACHED_TARGET_PCT = 5
const REFRESH_TARGET_PCT = 10

type Side = "off" | "on"

const overheadPct = (off: number, on: number) => ((on - off) / off) * 100

/** The engine, and with `exportTo` (an OTLP/HTTP base URL) `Otel.layer` exporting there. */
const makeRuntime = (endpoint: ScriptedTokenEndpoint, exportTo: string | undefined, options?: Refresher.RefresherOptions) =>
  ManagedRuntime.make(Layer.mergeAll(
    engineLayer(endpoint, options),
    Logger.remove(Logger.defaultLogger),
    exportTo !== undefined
      ? Otel.layer({ serviceName: SERVICE, endpoint: exportTo, protocol: "http/protobuf" })
      : Layer.empty
  ))

/** `warmUps` warm-up rounds, then RUNS rounds; each round runs every variant once, in order. */
const interleaved = async <V extends string, A>(
  variants: ReadonlyArray<V>,
  run: (variant: V, round: number) => Promise<A>,
  warmUps = 1
): Promise<Record<V, Array<A>>> => {
  const out = Object.fromEntries(variants.map((v) => [v, [] as Array<A>])) as Record<V, Array<A>>
  for (let round = 0; round < warmUps + RUNS; round++) {
    for (const variant of variants) {
      const result = await run(variant, round)
      if (round >= warmUps) out[variant].push(result)
    }
  }
  return out
}

/** A loopback OTLP/HTTP endpoint that reads and discards every export, answering success. */
const startSink = async () => {
  let requests = 0
  let bytes = 0
  const server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => void (bytes += chunk.length))
    req.on("error", () => {})
    req.on("end", () => {
      requests++
      res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": "0" })
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ requests, bytes }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}

// --- span accounting ---------------------------------------------------------------------------------------------

export interface SpanCheck {
  /** `renew.refresh` spans expected from the "on" runs (one per refresh, warm-ups included). */
  readonly expected: number
  /** `renew.refresh` spans of those runs' keys received by the OTLP receiver. */
  readonly received: number
  /** "On" runs (warm-up included) for which not one `renew.refresh` span arrived: each makes the result invalid. */
  readonly emptyRuns: number
  /** `renew.refresh` spans received for the keys of "off" runs (must be 0). */
  readonly fromOff: number
}

interface RunRecord {
  readonly side: Side
  readonly keys: ReadonlyArray<string>
  readonly refreshes: number
}

const checkSpans = (receiver: OtlpReceiver, runs: ReadonlyArray<RunRecord>): SpanCheck => {
  const byHash = new Map<string, number>()
  for (const span of receiver.spans) {
    if (span.name !== Telemetry.SpanNames.refresh) continue
    const hash = String(span.attributes[Telemetry.Attributes.grantKeyHash])
    byHash.set(hash, (byHash.get(hash) ?? 0) + 1)
  }
  let expected = 0
  let received = 0
  let emptyRuns = 0
  let fromOff = 0
  for (const run of runs) {
    const got = run.keys.reduce((sum, key) => sum + (byHash.get(Telemetry.hashKey(key)) ?? 0), 0)
    if (run.side === "off") {
      fromOff += got
      continue
    }
    expected += run.refreshes
    received += got
    if (got === 0) emptyRuns++
  }
  return { expected, received, emptyRuns, fromOff }
}

const spansValid = (check: SpanCheck) => check.emptyRuns === 0 && check.fromOff === 0 && check.expected > 0

// --- cached path -------------------------------------------------------------------------------------------------

export interface CachedResult {
  readonly offNsPerOp: number
  readonly onNsPerOp: number
  readonly overheadPct: number
  readonly offRunsMs: ReadonlyArray<number>
  readonly onRunsMs: ReadonlyArray<number>
}

const CACHED_KEY = "user-42"
const CACHED_TOKEN = "at_fresh_bench"

const cachedPath = async (
  endpoint: ScriptedTokenEndpoint,
  receiver: OtlpReceiver
): Promise<{ readonly plain: CachedResult; readonly inSpan: CachedResult }> => {
  const runtimes = { off: makeRuntime(endpoint, undefined), on: makeRuntime(endpoint, receiver.url) }
  try {
    const slice = CALLS / SLICES
    const loops = {} as Record<Side, { plain: Effect.Effect<number>; inSpan: Effect.Effect<number> }>
    for (const side of ["off", "on"] as const) {
      const runtime = runtimes[side]
      const refresher = await runtime.runPromise(Refresher.Refresher)
      await runtime.runPromise(
        refresher.setGrant(CACHED_KEY, { accessToken: CACHED_TOKEN, refreshToken: "rt_unused", expiresIn: 3600 })
      )
      const token = await runtime.runPromise(refresher.getAccessToken(CACHED_KEY))
      if (Redacted.value(token) !== CACHED_TOKEN) throw new Error("the cached grant did not answer its access token")
      const plain = Effect.gen(function*() {
        let seen = 0
        for (let i = 0; i < slice; i++) {
          const token = yield* refresher.getAccessToken(CACHED_KEY)
          if (token !== undefined) seen++
        }
        return seen
      }).pipe(Effect.orDie)
      loops[side] = { plain, inSpan: Effect.withSpan(plain, "bench.caller") }
    }
    const timeSlice = async (side: Side, pick: "plain" | "inSpan") => {
      const start = performance.now()
      const seen = await runtimes[side].runPromise(loops[side][pick])
      const elapsed = performance.now() - start
      if (seen !== slice) throw new Error(`expected ${slice} tokens, got ${seen}`)
      return elapsed
    }
    // A run of each side is SLICES slices, the two sides' slices alternating in ABBA order so that both see the
    // same machine. One warm-up run, then RUNS.
    const measure = async (pick: "plain" | "inSpan"): Promise<CachedResult> => {
      const off: Array<number> = []
      const on: Array<number> = []
      for (let run = 0; run <= RUNS; run++) {
        let offMs = 0
        let onMs = 0
        for (let k = 0; k < SLICES; k++) {
          if (k % 2 === 0) {
            offMs += await timeSlice("off", pick)
            onMs += await timeSlice("on", pick)
          } else {
            onMs += await timeSlice("on", pick)
            offMs += await timeSlice("off", pick)
          }
        }
        if (run === 0) continue
        off.push(offMs)
        on.push(onMs)
      }
      const offNsPerOp = (median(off) * 1e6) / CALLS
      const onNsPerOp = (median(on) * 1e6) / CALLS
      return { offNsPerOp, onNsPerOp, overheadPct: overheadPct(offNsPerOp, onNsPerOp), offRunsMs: off, onRunsMs: on }
    }
    const plain = await measure("plain")
    const inSpan = await measure("inSpan")
    if (endpoint.refreshRequests !== 0) throw new Error(`the cached path made ${endpoint.refreshRequests} refreshes`)
    return { plain, inSpan }
  } finally {
    await runtimes.off.dispose()
    await runtimes.on.dispose()
  }
}

// --- refresh path ------------------------------------------------------------------------------------------------

export interface RefreshResult {
  readonly offMsPerOp: number
  readonly onMsPerOp: number
  readonly overheadPct: number
  /** Exporting to a loopback server that discards the exports instead of the receiver (no target). */
  readonly sinkMsPerOp: number
  readonly sinkOverheadPct: number
  readonly offRunsMs: ReadonlyArray<number>
  readonly onRunsMs: ReadonlyArray<number>
  readonly sinkRunsMs: ReadonlyArray<number>
  readonly spans: SpanCheck
  /** What the sink received. */
  readonly sink: { readonly requests: number; readonly bytes: number }
}

const refreshPath = async (endpoint: ScriptedTokenEndpoint, receiver: OtlpReceiver): Promise<RefreshResult> => {
  const sink = await startSink()
  try {
    const runs: Array<RunRecord> = []
    const exportTo = { off: undefined, on: receiver.url, sink: sink.url }
    const times = await interleaved(["off", "on", "sink"] as const, async (variant, round) => {
      const runtime = makeRuntime(endpoint, exportTo[variant], { forcedRefreshCooldown: 0 })
      const key = `refresh-${variant}-${round}`
      try {
        const refresher = await runtime.runPromise(Refresher.Refresher)
        await runtime.runPromise(
          refresher.setGrant(key, { accessToken: "at_bench", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
        )
        // Not timed: opens the runtime's HTTP connection.
        await runtime.runPromise(refresher.refresh(key))
        const before = endpoint.refreshRequests
        const loop = Effect.gen(function*() {
          for (let n = 0; n < REFRESHES; n++) yield* refresher.refresh(key)
        })
        const start = performance.now()
        await runtime.runPromise(loop)
        const elapsed = performance.now() - start
        const made = endpoint.refreshRequests - before
        if (made !== REFRESHES) throw new Error(`expected ${REFRESHES} token requests, got ${made}`)
        return elapsed / REFRESHES
      } finally {
        // Closing the runtime flushes the run's spans before the next run starts.
        await runtime.dispose()
        if (variant !== "sink") runs.push({ side: variant, keys: [key], refreshes: REFRESHES + 1 })
      }
    }, REFRESH_WARM_UPS)
    const offMsPerOp = median(times.off)
    const onMsPerOp = median(times.on)
    const sinkMsPerOp = median(times.sink)
    return {
      offMsPerOp,
      onMsPerOp,
      overheadPct: overheadPct(offMsPerOp, onMsPerOp),
      sinkMsPerOp,
      sinkOverheadPct: overheadPct(offMsPerOp, sinkMsPerOp),
      offRunsMs: times.off,
      onRunsMs: times.on,
      sinkRunsMs: times.sink,
      spans: checkSpans(receiver, runs),
      sink: sink.stats()
    }
  } finally {
    await sink.close()
  }
}

// --- herd --------------------------------------------------------------------------------------------------------

export interface HerdSide {
  /** The round with the median p99. */
  readonly median: Round
  readonly rounds: ReadonlyArray<Round>
}

export interface HerdTracingResult {
  readonly off: HerdSide
  readonly on: HerdSide
  /** Every round made one token request and every caller got the issued token. */
  readonly correct: boolean
  readonly spans: SpanCheck
}

const medianRound = (rounds: ReadonlyArray<Round>): HerdSide => {
  const byP99 = [...rounds].sort((a, b) => a.p99OverheadMs - b.p99OverheadMs)
  return { median: byP99[Math.floor(byP99.length / 2)]!, rounds }
}

const herd = async (endpoint: ScriptedTokenEndpoint, receiver: OtlpReceiver): Promise<HerdTracingResult> => {
  const runs: Array<RunRecord> = []
  const { off, on } = await interleaved(["off", "on"] as const, async (side, round) => {
    const runtime = makeRuntime(endpoint, side === "on" ? receiver.url : undefined)
    const warm = `herd-warm-${side}-${round}`
    const key = `herd-${side}-${round}`
    try {
      const refresher = await runtime.runPromise(Refresher.Refresher)
      // Not timed: one refresh by one caller opens the runtime's HTTP connection.
      await runtime.runPromise(refresher.setGrant(warm, expiredGrant(endpoint)))
      await runtime.runPromise(refresher.getAccessToken(warm))
      await runtime.runPromise(refresher.setGrant(key, expiredGrant(endpoint)))
      const before = endpoint.refreshRequests
      const { ends, run, starts } = effectCallers(Effect.map(refresher.getAccessToken(key), Redacted.value))
      const tokens = await runtime.runPromise(run)
      return summarize({
        starts,
        ends,
        tokens,
        expected: endpoint.lastIssued()?.accessToken,
        requests: endpoint.refreshRequests - before
      })
    } finally {
      await runtime.dispose()
      runs.push({ side, keys: [warm, key], refreshes: 2 })
    }
  })
  const correct = [...off, ...on].every((r) => r.requests === 1 && r.wrongTokens === 0)
  return { off: medianRound(off), on: medianRound(on), correct, spans: checkSpans(receiver, runs) }
}

// --- all ---------------------------------------------------------------------------------------------------------

export interface TracingResult {
  readonly cached?: CachedResult & { readonly pass: boolean }
  /** The cached path inside a caller's span (no target). */
  readonly cachedInSpan?: CachedResult
  readonly refresh?: RefreshResult & { readonly pass: boolean; readonly valid: boolean }
  readonly herd?: HerdTracingResult & { readonly valid: boolean }
  /** OTLP requests received, all spans in them, and requests the receiver could not decode. */
  readonly receiver: { readonly requests: number; readonly spans: number; readonly errors: ReadonlyArray<string> }
}

export type Part = "cached" | "refresh" | "herd"

export const runTracing = async (
  parts: ReadonlyArray<Part> = ["cached", "refresh", "herd"]
): Promise<TracingResult> => {
  const receiver = await startOtlpReceiver()
  // Two token endpoints: one answering at once (cached and refresh paths), one after 50 ms (herd).
  const instant = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  const slow = await startScriptedTokenEndpoint({ latencyMs: LATENCY_MS, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  try {
    const result: {
      -readonly [K in keyof TracingResult]: TracingResult[K]
    } = { receiver: { requests: 0, spans: 0, errors: [] } }
    if (parts.includes("cached")) {
      const { inSpan, plain } = await cachedPath(instant, receiver)
      result.cached = { ...plain, pass: plain.overheadPct <= CACHED_TARGET_PCT }
      result.cachedInSpan = inSpan
    }
    if (parts.includes("refresh")) {
      const refresh = await refreshPath(instant, receiver)
      const valid = spansValid(refresh.spans)
      result.refresh = { ...refresh, valid, pass: valid && refresh.overheadPct <= REFRESH_TARGET_PCT }
    }
    if (parts.includes("herd")) {
      const herded = await herd(slow, receiver)
      result.herd = { ...herded, valid: spansValid(herded.spans) }
    }
    result.receiver = { requests: receiver.requests.length, spans: receiver.spans.length, errors: receiver.errors }
    return result
  } finally {
    await slow.close()
    await instant.close()
    await receiver.close()
  }
}

export const describeSpans = (check: SpanCheck) =>
  `renew.refresh spans received ${check.received}/${check.expected}` +
  (check.emptyRuns > 0 ? `, ${check.emptyRuns} "on" run(s) with none: INVALID` : "") +
  (check.fromOff > 0 ? `, ${check.fromOff} from "off" runs: INVALID` : "")

export const printTracing = (r: TracingResult) => {
  console.log(
    `tracing: Otel.layer (SDK + BatchSpanProcessor + OTLP/HTTP protobuf) to a loopback OTLP receiver in this ` +
      `process vs no tracing; interleaved, median of ${RUNS} after a warm-up`
  )
  const runs = (values: ReadonlyArray<number>, digits = 1) => `[${values.map((v) => fmt(v, digits)).join(", ")}]`
  if (r.cached !== undefined) {
    const c = r.cached
    console.log(
      `  cached path       ${fmt(c.offNsPerOp).padStart(7)} → ${fmt(c.onNsPerOp).padStart(7)} ns/op  ` +
        `${signed(c.overheadPct)} %  (${CALLS.toLocaleString("en")} calls per run in ${SLICES} alternating slices; ` +
        `target ≤ +${CACHED_TARGET_PCT} %)  ${c.pass ? "PASS" : "FAIL"}`
    )
    console.log(`      runs ms: off ${runs(c.offRunsMs)}  on ${runs(c.onRunsMs)}`)
  }
  if (r.cachedInSpan !== undefined) {
    const c = r.cachedInSpan
    console.log(
      `  cached, in a span ${fmt(c.offNsPerOp).padStart(7)} → ${fmt(c.onNsPerOp).padStart(7)} ns/op  ` +
        `${signed(c.overheadPct)} %  (the same loop inside the caller's span; no target)`
    )
    console.log(`      runs ms: off ${runs(c.offRunsMs)}  on ${runs(c.onRunsMs)}`)
  }
  if (r.refresh !== undefined) {
    const f = r.refresh
    console.log(
      `  refresh path      ${fmt(f.offMsPerOp, 3).padStart(7)} → ${fmt(f.onMsPerOp, 3).padStart(7)} ms/op  ` +
        `${signed(f.overheadPct)} %  (${REFRESHES} sequential forced refreshes, endpoint latency 0; ` +
        `target ≤ +${REFRESH_TARGET_PCT} %)  ${f.valid ? (f.pass ? "PASS" : "FAIL") : "INVALID"}`
    )
    console.log(
      `      on → sink     ${fmt(f.offMsPerOp, 3).padStart(7)} → ${fmt(f.sinkMsPerOp, 3).padStart(7)} ms/op  ` +
        `${signed(f.sinkOverheadPct)} %  (exports discarded undecoded: the rest of "on" is the receiver's decoding; ` +
        `${f.sink.requests} exports, ${fmt(f.sink.bytes / 1024, 0)} KiB)`
    )
    console.log(
      `      runs ms/op: off ${runs(f.offRunsMs, 3)}  on ${runs(f.onRunsMs, 3)}  sink ${runs(f.sinkRunsMs, 3)}`
    )
    console.log(`      ${describeSpans(f.spans)}`)
  }
  if (r.herd !== undefined) {
    const h = r.herd
    console.log(
      `  herd              p50 ${signed(h.off.median.p50OverheadMs)} → ${signed(h.on.median.p50OverheadMs)} ms, ` +
        `p99 ${signed(h.off.median.p99OverheadMs)} → ${signed(h.on.median.p99OverheadMs)} ms  ` +
        `(${CALLERS.toLocaleString("en")} fibers, endpoint latency ${LATENCY_MS} ms; round with the median p99; ` +
        `no target)` + (h.correct ? "" : "  INCORRECT (requests or tokens)") + (h.valid ? "" : "  INVALID")
    )
    for (const side of ["off", "on"] as const) {
      for (const [i, round] of h[side].rounds.entries()) {
        console.log(`      ${side.padEnd(3)} round ${i + 1}: ${describeRound(round)}`)
      }
    }
    console.log(`      ${describeSpans(h.spans)}`)
  }
  console.log(
    `  receiver: ${r.receiver.requests} OTLP requests, ${r.receiver.spans} spans` +
      (r.receiver.errors.length > 0 ? `, ERRORS: ${r.receiver.errors.join("; ")}` : "")
  )
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2)
  const known: ReadonlyArray<Part> = ["cached", "refresh", "herd"]
  const unknown = args.filter((arg) => !known.includes(arg as Part))
  if (unknown.length > 0) {
    console.error(`unknown part(s): ${unknown.join(", ")}; expected any of ${known.join(", ")}`)
    process.exitCode = 2
  } else {
    printTracing(await runTracing(args.length > 0 ? (args as ReadonlyArray<Part>) : known))
  }
}
