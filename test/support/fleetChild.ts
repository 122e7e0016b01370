/**
 * Spawns test/fleet/child.ts as a separate OS process (node + tsx, with `@renew/*` resolved to sources) and reads its
 * JSON-line events. Used by the lease tests (SIGSTOP / SIGKILL a holder), the fleet herd test and bench/fleet.ts.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
const childScript = fileURLToPath(new URL("../fleet/child.ts", import.meta.url))
const register = fileURLToPath(new URL("./register-src.mjs", import.meta.url))

export interface ChildEvent {
  readonly event: string
  readonly [field: string]: unknown
}

export interface FleetChild {
  readonly process: ChildProcess
  readonly events: ReadonlyArray<ChildEvent>
  /** Everything the child wrote on stderr (its log lines). */
  readonly stderr: () => string
  /** Resolves with the first event named `name` (rejects if the child exits first, or after `timeoutMs`). */
  readonly waitFor: (name: string, timeoutMs?: number) => Promise<ChildEvent>
  readonly go: () => void
  /** Sends one line on the child's stdin ("write" tells a holder to write). */
  readonly send: (line: string) => void
  readonly signal: (signal: NodeJS.Signals) => void
  /** Resolves with the exit code (or signal) once the child has exited. */
  readonly exited: Promise<number | string>
}

export const spawnChild = (env: Record<string, string>): FleetChild => {
  const child = spawn(process.execPath, ["--import", "tsx", "--import", register, childScript], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  const events: Array<ChildEvent> = []
  const listeners = new Set<() => void>()
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
    let newline: number
    while ((newline = stdout.indexOf("\n")) >= 0) {
      const line = stdout.slice(0, newline).trim()
      stdout = stdout.slice(newline + 1)
      if (line.startsWith("{")) {
        try {
          events.push(JSON.parse(line) as ChildEvent)
        } catch {
          // not one of ours
        }
      }
    }
    for (const listener of [...listeners]) listener()
  })
  child.stderr!.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
  let exitedWith: number | string | undefined
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      exitedWith = code ?? signal ?? "unknown"
      for (const listener of [...listeners]) listener()
      resolve(exitedWith)
    })
  )
  // Generous: several children starting at once (tsx compiling them) can take a minute on a loaded machine.
  const waitFor = (name: string, timeoutMs = 120_000) =>
    new Promise<ChildEvent>((resolve, reject) => {
      const check = () => {
        const found = events.find((event) => event.event === name)
        if (found !== undefined) {
          done()
          resolve(found)
        } else if (exitedWith !== undefined) {
          done()
          reject(new Error(`child ${child.pid} exited (${exitedWith}) before "${name}"; stderr:\n${stderr.slice(-2000)}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`child ${child.pid}: no "${name}" within ${timeoutMs} ms; stderr:\n${stderr.slice(-2000)}`))
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })
  return {
    process: child,
    events,
    stderr: () => stderr,
    waitFor,
    go: () => void child.stdin!.write("go\n"),
    send: (line) => void child.stdin!.write(`${line}\n`),
    signal: (signal) => {
      if (exitedWith === undefined) child.kill(signal)
    },
    exited
  }
}
