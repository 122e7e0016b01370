/**
 * Which real services the tests can reach, and what to do when one is missing.
 *
 * - With `CI` set, a missing service is a FAILURE (the thrown error names the service and how to start it): CI must
 *   never turn "Redis was down" into a green run of skipped tests.
 * - Without `CI`, the tests that need it are skipped, with a message saying how to enable them.
 *
 * Usage at the top of a test file (top-level await):
 *
 *   const redis = await Services.redis()            // throws under CI when unreachable
 *   describe.runIf(redis.available)("...", ...)
 *   Services.skipNotice(redis)                       // one skipped test whose name says how to enable the rest
 *
 * Endpoints: REDIS_URL (default redis://127.0.0.1:6379) and DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/test). `redis-server` on the PATH is needed by the fault and durability tests that
 * start their own servers.
 */
import { it } from "@effect/vitest"
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

export const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
export const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

export interface Service {
  readonly name: string
  readonly available: boolean
  /** Why it is unavailable and how to make it available. */
  readonly reason: string
}

const inCI = (): boolean => {
  const ci = process.env["CI"]
  return ci !== undefined && ci !== "" && ci !== "0" && ci.toLowerCase() !== "false"
}

/**
 * Opens a TCP connection, writes `probe`, and resolves with the first chunk answered (or rejects). The default
 * timeout is generous: a closed port refuses at once, and on a loaded machine a live server's answer can wait behind a
 * busy event loop (in CI a probe that timed out would fail the whole file as "service unavailable").
 */
const ask = (host: string, port: number, probe: Buffer, timeoutMs = 10_000): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once("connect", () => socket.write(probe))
    socket.once("data", (chunk) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(chunk)
    })
    socket.once("error", (error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    })
  })

const settle = (service: Service): Service => {
  if (!service.available && inCI()) {
    throw new Error(
      `${service.name} is required in CI (CI=${process.env["CI"]}) but unavailable: ${service.reason}`
    )
  }
  if (!service.available) console.warn(`[services] skipping ${service.name} tests: ${service.reason}`)
  return service
}

const endpointOf = (url: string, defaultPort: number) => {
  const parsed = new URL(url)
  return { host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || defaultPort) }
}

/** Redis at REDIS_URL answers PING. */
export const redis = async (): Promise<Service> => {
  const { host, port } = endpointOf(REDIS_URL, 6379)
  try {
    const answer = (await ask(host, port, Buffer.from("PING\r\n"))).toString()
    // "+PONG" or "-NOAUTH ..." both prove a Redis is there; the tests then use REDIS_URL's credentials.
    if (!answer.startsWith("+PONG") && !answer.startsWith("-NOAUTH")) throw new Error(`unexpected answer ${answer}`)
    return settle({ name: "Redis", available: true, reason: "" })
  } catch (error) {
    return settle({
      name: "Redis",
      available: false,
      reason: `no Redis at ${host}:${port} (${(error as Error).message}). Start one ` +
        `(redis-server --port ${port} --save "" --appendonly no) or point REDIS_URL at one`
    })
  }
}

/** PostgreSQL at DATABASE_URL answers an SSLRequest (it does so before authentication). */
export const postgres = async (): Promise<Service> => {
  const { host, port } = endpointOf(DATABASE_URL, 5432)
  try {
    // SSLRequest: length 8, code 80877103. A PostgreSQL server answers one byte, 'S' or 'N'.
    const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
    const answer = (await ask(host, port, sslRequest)).toString("latin1")
    if (answer !== "S" && answer !== "N") throw new Error("not a PostgreSQL server")
    return settle({ name: "PostgreSQL", available: true, reason: "" })
  } catch (error) {
    return settle({
      name: "PostgreSQL",
      available: false,
      reason: `no PostgreSQL at ${host}:${port} (${(error as Error).message}). Start one ` +
        `(pg_ctlcluster <version> main start) or point DATABASE_URL at one (e.g. postgres://postgres@127.0.0.1:5432/test)`
    })
  }
}

/** `redis-server` is on the PATH (the tests that start their own servers need it). */
export const redisServerBinary = (): Service => {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "pipe" })
    return settle({ name: "redis-server binary", available: true, reason: "" })
  } catch {
    return settle({
      name: "redis-server binary",
      available: false,
      reason: "redis-server is not on the PATH. Install it (apt-get install redis-server)"
    })
  }
}

/**
 * On a machine without the service (never in CI: `settle` throws there), registers one skipped test whose name says
 * how to enable the skipped ones, so the skip is visible in the summary instead of silent.
 */
export const skipNotice = (...services: ReadonlyArray<Service>): void => {
  for (const service of services) {
    if (!service.available) it.skip(`${service.name} unavailable, tests skipped: ${service.reason}`, () => {})
  }
}

/** A free TCP port on loopback (racy in theory; fine for loopback tests). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close((error) => (error ? reject(error) : resolve(port)))
    })
  })

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly dir: string
  readonly process: ChildProcess
  /** SIGKILL and wait until the port is closed. */
  kill(): Promise<void>
  /** Starts a new server on the same port and directory (same arguments). */
  restart(): Promise<RedisServer>
}

const waitUntil = async (check: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const pingOk = async (port: number) => {
  try {
    // "-LOADING" while an AOF is replayed: not ready yet.
    return (await ask("127.0.0.1", port, Buffer.from("PING\r\n"), 2_000)).toString().startsWith("+PONG")
  } catch {
    return false
  }
}

/**
 * Starts a private `redis-server` on `port` (a free one by default) in its own temporary directory, as a child of
 * this process (`--daemonize no`), so the test can SIGKILL it. `args` are extra server arguments.
 */
export const startRedisServer = async (
  options: { readonly port?: number; readonly dir?: string; readonly args?: ReadonlyArray<string> } = {}
): Promise<RedisServer> => {
  const port = options.port ?? await freePort()
  const dir = options.dir ?? Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-redis-"))
  const args = [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--daemonize", "no",
    "--save", "",
    "--appendonly", "no",
    "--dir", dir,
    "--logfile", "",
    "--loglevel", "warning",
    ...(options.args ?? [])
  ]
  const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr}`)
      return pingOk(port)
    }, 60_000, `redis-server on port ${port}`)
  } catch (error) {
    child.kill("SIGKILL")
    throw error
  }
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    process: child,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
      await waitUntil(async () => !(await pingOk(port)), 30_000, `port ${port} to close`)
    },
    restart: () => startRedisServer({ ...options, port, dir })
  }
  return server
}
