/**
 * Test support for the CLI: run a `renew` command line in-process with its stdout/stderr captured, the environment
 * and stdin under the test's control; small loopback servers for the faults the doctor must name; and the check
 * that no secret reaches any output.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cli, type Doctor } from "@renew/cli"
import { Token } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { createServer as createHttpServer, type Server } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import type { AddressInfo, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { format } from "node:util"

export interface RunResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
}

const capturingConsole = (out: Array<string>, err: Array<string>): Console.Console => {
  const write = (sink: Array<string>) => (...args: ReadonlyArray<unknown>) => void sink.push(format(...args) + "\n")
  const unsafe: Console.UnsafeConsole = {
    assert: () => {},
    clear: () => {},
    count: () => {},
    countReset: () => {},
    debug: write(err),
    dir: write(out),
    dirxml: write(out),
    error: write(err),
    group: () => {},
    groupCollapsed: () => {},
    groupEnd: () => {},
    info: write(out),
    log: write(out),
    table: write(out),
    time: () => {},
    timeEnd: () => {},
    timeLog: () => {},
    trace: write(err),
    warn: write(err)
  }
  const lift = <A extends ReadonlyArray<unknown>>(f: (...args: A) => void) => (...args: A) =>
    Effect.sync(() => f(...args))
  return {
    [Console.TypeId]: Console.TypeId,
    assert: lift(unsafe.assert),
    clear: Effect.void,
    count: lift(unsafe.count),
    countReset: lift(unsafe.countReset),
    debug: lift(unsafe.debug),
    dir: lift(unsafe.dir),
    dirxml: lift(unsafe.dirxml),
    error: lift(unsafe.error),
    group: () => Effect.void,
    groupEnd: Effect.void,
    info: lift(unsafe.info),
    log: lift(unsafe.log),
    table: lift(unsafe.table),
    time: lift(unsafe.time),
    timeEnd: lift(unsafe.timeEnd),
    timeLog: lift(unsafe.timeLog),
    trace: lift(unsafe.trace),
    warn: lift(unsafe.warn),
    unsafe
  } as Console.Console
}

/** Runs `renew <args>` in-process. The environment is exactly `env` (nothing leaks in from the test's own). */
export const runRenew = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly stdin?: string } = {}
): Promise<RunResult> => {
  const out: Array<string> = []
  const err: Array<string> = []
  return Cli.run(["node", "renew", ...args]).pipe(
    Effect.withConsole(capturingConsole(out, err)),
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {})))),
    Effect.provideService(Cli.Stdin, {
      readAll: options.stdin === undefined ? Effect.fail(new Error("no stdin in this test")) : Effect.succeed(options.stdin)
    }),
    Effect.provide(NodeContext.layer),
    Effect.map((exitCode) => ({ stdout: out.join(""), stderr: err.join(""), exitCode })),
    Effect.runPromise
  )
}

/** Runs `renew doctor <args> --json` and parses the report. */
export const doctorJson = async (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly stdin?: string } = {}
): Promise<RunResult & { readonly report: Doctor.Report }> => {
  const result = await runRenew(["doctor", ...args, "--json"], options)
  let report: Doctor.Report
  try {
    report = JSON.parse(result.stdout) as Doctor.Report
  } catch {
    throw new Error(`renew doctor --json did not print JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`)
  }
  return { ...result, report }
}

export const check = (report: Doctor.Report, name: Doctor.CheckName): Doctor.Check => {
  const found = report.checks.find((c) => c.name === name)
  if (found === undefined) throw new Error(`no check ${name} in ${JSON.stringify(report.checks.map((c) => c.name))}`)
  return found
}

/** Every check as "name STATUS", for readable assertion messages. */
export const statuses = (report: Doctor.Report): string => report.checks.map((c) => `${c.name} ${c.status}`).join(", ")

/**
 * Fails if any secret, or any 10-character piece of one, appears in `text`. Tokens are random; a 10-character
 * window of one cannot appear by chance.
 */
export const assertNoSecrets = (text: string, secrets: ReadonlyArray<string>): void => {
  for (const secret of secrets) {
    if (secret.length < 10) throw new Error("test secrets must be at least 10 characters")
    for (let i = 0; i + 10 <= secret.length; i++) {
      const piece = secret.slice(i, i + 10)
      if (text.includes(piece)) {
        throw new Error(`a piece of a secret (${secret.length} chars, offset ${i}) appears in the output`)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loopback servers
// ---------------------------------------------------------------------------------------------------------------

export interface Loopback {
  readonly url: string
  readonly port: number
  readonly requests: () => number
  close(): Promise<void>
}

const track = (server: Server) => {
  const sockets = new Set<Socket>()
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
}

const listen = (server: Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

/**
 * A token endpoint whose clock is `skewSeconds` off: its `Date` header is shifted, and it answers every refresh
 * with `invalid_grant` (so the client authenticates and nothing else fails).
 */
export const startSkewedServer = async (skewSeconds: number): Promise<Loopback> => {
  let count = 0
  const server = createHttpServer((req, res) => {
    count++
    req.resume()
    req.on("end", () => {
      res.sendDate = false
      const body = JSON.stringify({ error: "invalid_grant", error_description: "grant request is invalid" })
      res.writeHead(400, {
        date: new Date(Date.now() + skewSeconds * 1000).toUTCString(),
        "content-type": "application/json",
        "cache-control": "no-store",
        "content-length": String(Buffer.byteLength(body))
      })
      res.end(body)
    })
  })
  const close = track(server)
  const port = await listen(server)
  return { url: `http://127.0.0.1:${port}/token`, port, requests: () => count, close }
}

const execFileText = (file: string, args: ReadonlyArray<string>) =>
  new Promise<void>((resolve, reject) =>
    execFile(file, [...args], { timeout: 20_000 }, (error, _stdout, stderr) =>
      error === null ? resolve() : reject(new Error(`${file} failed: ${stderr}`))
    )
  )

/**
 * An https token endpoint on 127.0.0.1 with a self-signed certificate made at test time by
 * `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1`.
 */
export const startSelfSignedServer = async (): Promise<Loopback & { readonly certFile: string }> => {
  const dir = mkdtempSync(join(tmpdir(), "renew-tls-"))
  const keyFile = join(dir, "key.pem")
  const certFile = join(dir, "cert.pem")
  await execFileText("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-days",
    "1",
    "-keyout",
    keyFile,
    "-out",
    certFile
  ])
  let count = 0
  const server = createHttpsServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (req, res) => {
    count++
    req.resume()
    req.on("end", () => {
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: "invalid_grant" }))
    })
  })
  const closeServer = track(server)
  const port = await listen(server)
  return {
    url: `https://127.0.0.1:${port}/token`,
    port,
    certFile,
    requests: () => count,
    close: async () => {
      await closeServer()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * An https token endpoint on 127.0.0.1 whose certificate (subjectAltName IP:127.0.0.1, valid 1 day) is signed by a
 * private CA made at test time; `caFile` is that CA.
 */
export const startPrivateCaServer = async (): Promise<Loopback & { readonly caFile: string }> => {
  const dir = mkdtempSync(join(tmpdir(), "renew-ca-"))
  const file = (name: string) => join(dir, name)
  await execFileText("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Renew Test CA", "-days", "1",
    "-keyout", file("ca.key"), "-out", file("ca.pem")
  ])
  await execFileText("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-days", "1", "-keyout", file("leaf.key"), "-out", file("leaf.pem")
  ])
  let count = 0
  const server = createHttpsServer({ key: readFileSync(file("leaf.key")), cert: readFileSync(file("leaf.pem")) }, (req, res) => {
    count++
    req.resume()
    req.on("end", () => {
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: "invalid_grant", error_description: "grant request is invalid" }))
    })
  })
  const closeServer = track(server)
  const port = await listen(server)
  return {
    url: `https://127.0.0.1:${port}/token`,
    port,
    caFile: file("ca.pem"),
    requests: () => count,
    close: async () => {
      await closeServer()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------------------------------

export const tempDir = (): { readonly path: string; readonly remove: () => void } => {
  const path = mkdtempSync(join(tmpdir(), "renew-cli-"))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

/** Writes a grant into a SQLite store file, as a service using Renew would have. */
export const seedStore = (
  filename: string,
  key: string,
  grant: {
    readonly accessToken: string
    readonly refreshToken: string
    readonly expiresIn: number
    readonly scope?: string
    readonly refreshTokenExpiresAt?: number
    /** A refresh-in-flight intent, as a process that died mid-refresh leaves behind. */
    readonly refreshStartedAt?: number
  },
  encryption?: { readonly keyId: string; readonly key: string }
): Promise<Token.Grant> =>
  Effect.gen(function*() {
    const store = yield* SqliteTokenStore.make({
      filename,
      ...(encryption !== undefined
        ? { encryption: { keys: { [encryption.keyId]: Redacted.make(encryption.key) }, activeKeyId: encryption.keyId } }
        : {})
    })
    const now = Date.now()
    return yield* store.compareAndSet(
      key,
      undefined,
      new Token.Grant({
        accessToken: Redacted.make(grant.accessToken),
        refreshToken: Redacted.make(grant.refreshToken),
        tokenType: "Bearer",
        issuedAt: now,
        expiresAt: now + grant.expiresIn * 1000,
        ...(grant.scope !== undefined ? { scope: grant.scope } : {}),
        ...(grant.refreshTokenExpiresAt !== undefined ? { refreshTokenExpiresAt: grant.refreshTokenExpiresAt } : {}),
        ...(grant.refreshStartedAt !== undefined ? { refreshStartedAt: grant.refreshStartedAt } : {}),
        version: 0
      })
    )
  }).pipe(Effect.scoped, Effect.runPromise)

/** Reads a grant back through the store (decrypting nothing: the test stores are plain). */
export const readGrant = (filename: string, key: string): Promise<Token.Grant | undefined> =>
  Effect.gen(function*() {
    const store = yield* SqliteTokenStore.make({ filename })
    const found = yield* store.get(key)
    return found._tag === "Some" ? found.value : undefined
  }).pipe(Effect.scoped, Effect.runPromise)
