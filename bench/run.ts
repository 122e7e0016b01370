/**
 * Runs every benchmark and prints a summary table. Exits non-zero only when a benchmark crashes; a missed target is
 * reported as FAIL in the table but is not an error.
 *
 * npm run bench   (= tsx bench/run.ts)
 */
import { printColdStart, runColdStart } from "./cold-start.js"
import { printFastPath, runFastPath } from "./fast-path.js"
import { printHerd, runHerd } from "./herd.js"
import { printStore, runStore } from "./store.js"
import { fmt, signed } from "./support.js"
import { describeSpans, printTracing, runTracing, type TracingResult } from "./tracing.js"

interface Row {
  readonly benchmark: string
  readonly measured: string
  readonly target: string
  readonly result: string
}

const printTable = (rows: ReadonlyArray<Row>) => {
  const columns = ["benchmark", "measured", "target", "result"] as const
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => row[column].length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()
  console.log(line(columns))
  console.log(line(widths.map((width) => "-".repeat(width))))
  for (const row of rows) console.log(line(columns.map((column) => row[column])))
}

const tracingRows = (t: TracingResult): Array<Row> => {
  const rows: Array<Row> = []
  if (t.cached !== undefined) {
    rows.push({
      benchmark: "tracing, cached path",
      measured: `${fmt(t.cached.offNsPerOp)} → ${fmt(t.cached.onNsPerOp)} ns/op = ${signed(t.cached.overheadPct)} %`,
      target: "≤ +5 %",
      result: t.cached.pass ? "PASS" : "FAIL"
    })
  }
  if (t.refresh !== undefined) {
    const r = t.refresh
    rows.push({
      benchmark: "tracing, refresh path",
      measured: `${fmt(r.offMsPerOp, 3)} → ${fmt(r.onMsPerOp, 3)} ms/op = ${signed(r.overheadPct)} % ` +
        `(to a discarding sink ${signed(r.sinkOverheadPct)} %); ${describeSpans(r.spans)}`,
      target: "≤ +10 %",
      result: r.valid ? (r.pass ? "PASS" : "FAIL") : "INVALID"
    })
  }
  if (t.herd !== undefined) {
    const h = t.herd
    rows.push({
      benchmark: "tracing, herd",
      measured: `p50 ${signed(h.off.median.p50OverheadMs)} → ${signed(h.on.median.p50OverheadMs)} ms, ` +
        `p99 ${signed(h.off.median.p99OverheadMs)} → ${signed(h.on.median.p99OverheadMs)} ms; ${describeSpans(h.spans)}`,
      target: "-",
      result: !h.valid ? "INVALID" : !h.correct ? "FAIL" : "ref"
    })
  }
  return rows
}

const main = async () => {
  const started = performance.now()
  const fastPath = await runFastPath()
  printFastPath(fastPath)
  console.log()
  const herd = await runHerd()
  printHerd(herd)
  console.log()
  const stores = await runStore()
  printStore(stores)
  console.log()
  const tracing = await runTracing()
  printTracing(tracing)
  console.log()
  const coldStart = await runColdStart()
  printColdStart(coldStart)
  console.log()
  const memory = stores.find((r) => r.name === "memory")!

  const rows: Array<Row> = [
    ...fastPath.map((r) => ({
      benchmark: `fast path, ${r.name}`,
      measured: `${fmt(r.subjectNsPerOp)} vs ${fmt(r.baselineNsPerOp)} ns/op = ${fmt(r.ratio, 2)}×`,
      target: `≤ ${r.target}×`,
      result: r.pass ? "PASS" : "FAIL"
    })),
    ...herd.map((r) => ({
      benchmark: `herd, ${r.name}`,
      measured: `${r.median.requests ?? "-"} req, p50 ${signed(r.median.p50OverheadMs)} ms, ` +
        `p99 ${signed(r.median.p99OverheadMs)} ms, wall ${fmt(r.median.wallMs)} ms`,
      target: r.hasTarget ? "1 req, p99 ≤ +10 ms" : "-",
      result: r.hasTarget ? (r.pass ? "PASS" : "FAIL") : "ref"
    })),
    ...stores.filter((r) => r.name !== "memory").map((r) => ({
      benchmark: `store, ${r.name} vs memory`,
      measured: `get ${fmt(r.getPerSecond / memory.getPerSecond, 3)}×, cas ${
        fmt(r.casPerSecond / memory.casPerSecond, 2)
      }×, refresh under lease ${fmt(r.refreshPerSecond / memory.refreshPerSecond, 2)}× (${fmt(r.refreshPerSecond, 0)}/s)`,
      target: "-",
      result: "ref"
    })),
    ...tracingRows(tracing),
    {
      benchmark: "cold start, @renew/core/promise import",
      measured: `${fmt(coldStart.importRatio, 2)}× google-auth-library`,
      target: "≤ 2×",
      result: coldStart.importPass ? "PASS" : "FAIL"
    },
    {
      benchmark: "cold start, renew --help",
      measured: `${fmt(coldStart.helpMs, 0)} ms`,
      target: "≤ 400 ms",
      result: coldStart.helpPass ? "PASS" : "FAIL"
    }
  ]
  console.log(`summary (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ` +
    `${fmt((performance.now() - started) / 1000)} s)`)
  printTable(rows)
}

main().catch((error: unknown) => {
  console.error("benchmark crashed:", error)
  process.exitCode = 1
})
