/**
 * The real executable (`npx tsx packages/cli/src/main.ts`, as `renew` runs from dist/main.js): exit codes, the
 * secret from the environment and the refresh token from a pipe, JSON on stdout, and no secret anywhere.
 */
import { type AuthServer, startAuthServer } from "@renew/auth-server-fixture"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, it } from "vitest"
import { assertNoSecrets } from "./support/run.js"

const root = fileURLToPath(new URL("../../../", import.meta.url))

const renew = (args: ReadonlyArray<string>, options: { env: Record<string, string>; stdin: string }) =>
  new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    const env: Record<string, string> = {}
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !name.startsWith("RENEW_")) env[name] = value
    }
    const child = spawn("npx", ["tsx", "packages/cli/src/main.ts", ...args], {
      cwd: root,
      env: { ...env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolve({ stdout, stderr, code }))
    child.stdin.end(options.stdin)
  })

let server: AuthServer
beforeAll(async () => {
  server = await startAuthServer()
})
afterAll(() => server?.close())

it("renew doctor as a process: exit 0 when healthy, 2 with a wrong secret; JSON on stdout; no secret printed", async () => {
  const [good, bad] = await Promise.all([server.obtainGrant(), server.obtainGrant()])
  const wrong = "not-the-secret-0123456789"
  // A generous per-check timeout: two `npx tsx` processes starting at once on a loaded machine are slow to answer.
  const args = [
    "doctor", "--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--refresh-token-stdin", "--json",
    "--timeout", "60"
  ]
  const [healthy, failing] = await Promise.all([
    renew(args, { env: { RENEW_CLIENT_SECRET: server.clients.basic.clientSecret }, stdin: `${good.refreshToken}\n` }),
    renew(args, { env: { RENEW_CLIENT_SECRET: wrong }, stdin: `${bad.refreshToken}\n` })
  ])
  assert.strictEqual(healthy.code, 0, healthy.stdout + healthy.stderr)
  assert.strictEqual(JSON.parse(healthy.stdout).summary.exitCode, 0)
  assert.include(healthy.stdout, "refresh token from stdin")
  assert.strictEqual(failing.code, 2, failing.stdout + failing.stderr)
  const report = JSON.parse(failing.stdout)
  assert.strictEqual(report.summary.firstFailure, "client-auth")
  assert.strictEqual(healthy.stderr + failing.stderr, "")
  assertNoSecrets(healthy.stdout + healthy.stderr + failing.stdout + failing.stderr, [
    server.clients.basic.clientSecret,
    server.clients.post.clientSecret,
    wrong,
    good.refreshToken,
    good.accessToken,
    bad.refreshToken,
    bad.accessToken
  ])
  // Starting `npx tsx` twice takes seconds on a quiet machine and a minute or more on a loaded one: the timeout only
  // bounds a hang.
}, 240_000)
