/**
 * `npm run test:stress`: the whole suite, exactly as `npm test` runs it (`tsc -b && vitest run`), with a CPU hog
 * (a Node busy loop in a child process, one core) running beside it the whole time. A test that passes here does not
 * depend on how fast the machine is; one that fails here is a flake waiting to happen in CI.
 *
 * Arguments after `--` go to vitest (`npm run test:stress -- packages/cli`). The exit code is the suite's. The hog is
 * killed when the suite ends, whatever the outcome, and on SIGINT/SIGTERM; should this process die without a word
 * (SIGKILL), the hog notices its parent is gone and exits by itself.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

// The loop looks up its parent every few million turns: a busy loop never reaches the event loop, so no event
// (disconnect, a signal handler) could tell it.
const HOG = `
const parent = process.ppid
for (let i = 0; ; i++) {
  if (i % 5e6 === 0 && process.ppid !== parent) process.exit(0)
}
`

const hog = spawn(process.execPath, ["-e", HOG], { stdio: "ignore" })
let suite: ChildProcess | undefined

const stopHog = () => {
  if (hog.exitCode === null && hog.signalCode === null) hog.kill("SIGKILL")
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    stopHog()
    suite?.kill(signal)
    process.exit(130)
  })
}
process.on("exit", stopHog)

const args = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === "--"))
const started = Date.now()
console.log(`test:stress: CPU hog pid ${hog.pid} busy on one core; running npm test${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`)
suite = spawn("npm", ["test", ...(args.length > 0 ? ["--", ...args] : [])], { cwd: root, stdio: "inherit" })
suite.on("error", (error) => {
  console.error(`test:stress: could not start npm test: ${error.message}`)
  stopHog()
  process.exit(1)
})
suite.on("exit", (code, signal) => {
  stopHog()
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  const outcome = code === 0 ? "passed" : `FAILED (${signal ?? `exit code ${code}`})`
  console.log(`test:stress: ${outcome} in ${seconds} s with a CPU hog beside it`)
  process.exit(code ?? 1)
})
