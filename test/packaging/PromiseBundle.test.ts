/**
 * `@renew/core/promise` is a separate copy of the engine with Effect inlined (scripts/bundle.mjs). What it must still
 * do with the packages around it, in a plain `node` process that resolves it as a user's would (through the package's
 * `exports`, to dist/promise.bundle.js):
 *
 * - `store: "<file>.db"` loads `@renew/store-sqlite`, built on the other copy of Effect and of the core, and grants
 *   persist across managers;
 * - rejections are the tagged errors, and `instanceof` works against the entry point's own `RefreshError` classes.
 *
 * Needs the built bundle (`npm test` builds it before the tests run).
 */
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, it } from "vitest"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

// The child reports on a marker line; the engine's own log lines go to the same stdout.
const CHILD = `
import { RefreshError, TokenManager } from "@renew/core/promise"
const env = process.env
const report = (value) => console.log("RESULT " + JSON.stringify(value))
const resolved = import.meta.resolve("@renew/core/promise")
const open = () => TokenManager.createTokenManager({
  tokenEndpoint: env.TOKEN_URL, clientId: "my-app", clientSecret: env.CLIENT_SECRET, store: env.DB
})
const first = open()
await first.setGrant("user-1", { accessToken: "", refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })
const token = await first.getAccessToken("user-1")
const missing = await first.getAccessToken("nobody").then(() => undefined, (error) => ({
  tag: error._tag, isClass: error instanceof RefreshError.GrantNotFound, isRefreshError: RefreshError.isRefreshError(error)
}))
await first.dispose()
const second = open() // a new manager on the same file: the refreshed grant is there
const again = await second.getAccessToken("user-1")
await second.dispose()
report({ resolved, token, again, missing })
`

it("@renew/core/promise with a SQLite store file, in a plain node process", async () => {
  const endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: "bundle-secret" })
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-promise-bundle-"))
  try {
    const out = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn("node", ["--input-type=module", "-e", CHILD], {
        cwd: ROOT,
        env: {
          ...process.env,
          TOKEN_URL: endpoint.url,
          CLIENT_SECRET: "bundle-secret",
          REFRESH_TOKEN: endpoint.mintRefreshToken(),
          DB: Path.join(dir, "grants.db")
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.on("error", reject)
      child.on("close", (code) => resolve({ code, output }))
    })
    assert.strictEqual(out.code, 0, out.output)
    const line = out.output.split("\n").find((l) => l.startsWith("RESULT "))
    assert.isDefined(line, out.output)
    const result = JSON.parse(line!.slice("RESULT ".length))
    assert.strictEqual(Path.basename(fileURLToPath(result.resolved)), "promise.bundle.js")
    assert.strictEqual(result.token, endpoint.lastIssued()!.accessToken)
    assert.strictEqual(result.again, result.token, "the second manager read the refreshed grant from the file")
    assert.strictEqual(endpoint.refreshRequests, 1)
    assert.deepStrictEqual(result.missing, { tag: "GrantNotFound", isClass: true, isRefreshError: true })
    assert.notInclude(out.output, "bundle-secret")
  } finally {
    await endpoint.close()
    Fs.rmSync(dir, { recursive: true, force: true })
  }
})
