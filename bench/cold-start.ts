/**
 * Cold start: what a fresh Node process pays before it has its first access token, Renew's Promise facade against
 * google-auth-library (the baseline) and openid-client, and how long `renew --help` takes.
 *
 *   npm test (or npx tsc -b && npm run bundle), then: npx tsx bench/cold-start.ts            (~1 min)
 *   npx tsx bench/cold-start.ts --options   also the ways of loading the facade that were not chosen
 *
 * Every subject runs in its own fresh `node` process, 10 rounds, subjects interleaved within a round (so a burst of
 * load on the machine hits all of them alike); medians. In each process: `import` time (performance.now() around the
 * dynamic import), and import + first refresh (from before the import to the access token in hand, against a
 * loopback token endpoint started by this process; every library gets the same endpoint and answers). The wall time
 * of the whole process is measured from here, spawn to exit. Needs the built packages (dist/ and the bundles).
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { fmt, isMain, median } from "./support.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const ROUNDS = 10
const IMPORT_TARGET = 2 // × google-auth-library
const HELP_TARGET_MS = 400

interface Subject {
  readonly name: string
  /** ES module code run with `node --input-type=module -e` in the repository root; reports with `report(...)`. */
  readonly code?: (tokenUrl: string) => string
  /** Or a command, timed as a whole. */
  readonly argv?: ReadonlyArray<string>
}

// Each library's own documented way to refresh with a stored refresh token.
const refreshWith = {
  renew: (specifier: string, accessor: string) => (tokenUrl: string) => `
    const t0 = performance.now()
    const module = await import(${JSON.stringify(specifier)})
    const t1 = performance.now()
    const tokens = module${accessor}.createTokenManager({ tokenEndpoint: ${JSON.stringify(tokenUrl)}, clientId: "bench", clientSecret: "bench-secret" })
    await tokens.setGrant("user-1", { accessToken: "", refreshToken: "rt-1", expiresIn: 0 })
    const token = await tokens.getAccessToken("user-1")
    report(t0, t1, token)
    await tokens.dispose()`,
  google: (tokenUrl: string) => `
    const t0 = performance.now()
    const { OAuth2Client } = await import("google-auth-library")
    const t1 = performance.now()
    const client = new OAuth2Client({ clientId: "bench", clientSecret: "bench-secret", endpoints: { oauth2TokenUrl: ${JSON.stringify(tokenUrl)} } })
    client.setCredentials({ refresh_token: "rt-1" })
    const { token } = await client.getAccessToken()
    report(t0, t1, token)`,
  openid: (tokenUrl: string) => `
    const t0 = performance.now()
    const client = await import("openid-client")
    const t1 = performance.now()
    const config = new client.Configuration({ issuer: ${JSON.stringify(new URL(tokenUrl).origin)}, token_endpoint: ${JSON.stringify(tokenUrl)} }, "bench", "bench-secret")
    client.allowInsecureRequests(config)
    const { access_token: token } = await client.refreshTokenGrant(config, "rt-1")
    report(t0, t1, token)`
}

// A marker line, so that anything else the subject prints (Renew logs one line per refresh) does not matter.
const PRELUDE = `const report = (t0, t1, token) => console.log("COLD-START " + JSON.stringify({
  importMs: t1 - t0, firstTokenMs: performance.now() - t0, token: typeof token === "string" && token.startsWith("at-")
}))`

const subjects = (
  options: { readonly all: boolean; readonly variants: { readonly plain: string; readonly minified: string } | undefined }
): Array<Subject> => [
  { name: "node -e 0 (process start)", argv: ["node", "-e", "0"] },
  { name: "google-auth-library", code: refreshWith.google },
  { name: "openid-client", code: refreshWith.openid },
  { name: "renew: @renew/core/promise (bundled)", code: refreshWith.renew("@renew/core/promise", ".TokenManager") },
  { name: "renew: @renew/core (Effect's modules)", code: refreshWith.renew("@renew/core", ".TokenManager") },
  ...(options.all
    ? [
      { name: "option: @renew/core/TokenManager (deep)", code: refreshWith.renew("@renew/core/TokenManager", "") },
      ...(options.variants === undefined ? [] : [
        { name: "option: bundle, not minified", code: refreshWith.renew(options.variants.plain, ".TokenManager") },
        { name: "option: bundle, identifiers too", code: refreshWith.renew(options.variants.minified, ".TokenManager") }
      ])
    ]
    : []),
  { name: "renew --help (bundled bin)", argv: ["node", "packages/cli/dist/renew.js", "--help"] },
  ...(options.all ? [{ name: "option: renew --help unbundled", argv: ["node", "packages/cli/dist/main.js", "--help"] }] : [])
]

interface Sample {
  readonly wallMs: number
  readonly importMs?: number
  readonly firstTokenMs?: number
}

const runOnce = (subject: Subject, tokenUrl: string): Promise<Sample> =>
  new Promise((resolve, reject) => {
    const argv = subject.argv ?? ["node", "--input-type=module", "-e", `${PRELUDE}\n${subject.code!(tokenUrl)}`]
    const started = performance.now()
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      const wallMs = performance.now() - started
      if (code !== 0) return reject(new Error(`${subject.name} exited with ${code}:\n${out}`))
      if (subject.argv !== undefined) return resolve({ wallMs })
      const line = out.split("\n").find((l) => l.startsWith("COLD-START "))
      if (line === undefined) return reject(new Error(`${subject.name} reported nothing:\n${out}`))
      const result = JSON.parse(line.slice("COLD-START ".length))
      if (!result.token) return reject(new Error(`${subject.name} got no access token from the endpoint:\n${out}`))
      resolve({ wallMs, importMs: result.importMs, firstTokenMs: result.firstTokenMs })
    })
  })

/** A loopback token endpoint that answers every refresh_token grant, for every library alike. */
const startEndpoint = () =>
  new Promise<{ url: string; requests: () => number; close: () => void }>((resolve) => {
    let requests = 0
    const server = createServer((req, res) => {
      let body = ""
      req.on("data", (chunk: Buffer) => (body += chunk.toString()))
      req.on("end", () => {
        requests++
        const ok = req.method === "POST" && new URLSearchParams(body).get("grant_type") === "refresh_token"
        res.writeHead(ok ? 200 : 400, { "content-type": "application/json", "cache-control": "no-store" })
        res.end(JSON.stringify(
          ok
            ? { access_token: `at-${requests}`, token_type: "Bearer", expires_in: 3600, refresh_token: `rt-${requests}` }
            : { error: "invalid_request" }
        ))
      })
    })
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
        requests: () => requests,
        close: () => server.close()
      }))
  })

export interface ColdStartRow {
  readonly name: string
  readonly wallMs: number
  readonly importMs: number | undefined
  readonly firstTokenMs: number | undefined
}

export interface ColdStartResult {
  readonly rows: ReadonlyArray<ColdStartRow>
  /** @renew/core/promise import ÷ google-auth-library import. */
  readonly importRatio: number
  readonly importPass: boolean
  readonly helpMs: number
  readonly helpPass: boolean
}

/** Other builds of the facade bundle than scripts/bundle.mjs's, made on the fly (only for `--options`). */
const buildVariant = async (dir: string, name: string, minify: Record<string, boolean>): Promise<string> => {
  const { build } = await import("esbuild")
  const outfile = join(dir, `${name}.mjs`)
  await build({
    entryPoints: [join(ROOT, "packages/core/dist/promise.js")],
    outfile,
    bundle: true,
    ...minify,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    external: ["@renew/*", "@opentelemetry/*"]
  })
  return outfile
}

export const runColdStart = async (options: { readonly all?: boolean } = {}): Promise<ColdStartResult> => {
  const endpoint = await startEndpoint()
  // Inside the repository, so that whatever the bundle leaves as an import resolves from its node_modules.
  mkdirSync(join(ROOT, "node_modules/.cache"), { recursive: true })
  const dir = mkdtempSync(join(ROOT, "node_modules/.cache/cold-start-"))
  try {
    const variants = options.all
      ? {
        plain: await buildVariant(dir, "plain", {}),
        minified: await buildVariant(dir, "minified", { minify: true })
      }
      : undefined
    const list = subjects({ all: options.all ?? false, variants })
    // One unmeasured round: the first process to read a file pays for the page cache.
    for (const subject of list) await runOnce(subject, endpoint.url)
    const samples = list.map(() => [] as Array<Sample>)
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order from round to round, so that no subject always runs right after another.
      for (let k = 0; k < list.length; k++) {
        const i = (k + round) % list.length
        samples[i]!.push(await runOnce(list[i]!, endpoint.url))
      }
    }
    const of = (values: ReadonlyArray<number | undefined>) =>
      values[0] === undefined ? undefined : median(values as ReadonlyArray<number>)
    const rows = list.map((subject, i) => ({
      name: subject.name,
      wallMs: median(samples[i]!.map((s) => s.wallMs)),
      importMs: of(samples[i]!.map((s) => s.importMs)),
      firstTokenMs: of(samples[i]!.map((s) => s.firstTokenMs))
    }))
    const row = (prefix: string) => rows.find((r) => r.name.startsWith(prefix))!
    const importRatio = row("renew: @renew/core/promise").importMs! / row("google-auth-library").importMs!
    const helpMs = row("renew --help (bundled").wallMs
    return { rows, importRatio, importPass: importRatio <= IMPORT_TARGET, helpMs, helpPass: helpMs <= HELP_TARGET_MS }
  } finally {
    endpoint.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export const printColdStart = (result: ColdStartResult): void => {
  const google = result.rows.find((r) => r.name === "google-auth-library")!
  const ratio = (value: number | undefined, base: number | undefined) =>
    value === undefined || base === undefined ? "" : ` (${fmt(value / base, 2)}×)`
  console.log(`cold start: medians of ${ROUNDS} fresh processes each; × = against google-auth-library`)
  const table = result.rows.map((r) => [
    r.name,
    r.importMs === undefined ? "-" : `${fmt(r.importMs, 0)} ms${ratio(r.importMs, google.importMs)}`,
    r.firstTokenMs === undefined ? "-" : `${fmt(r.firstTokenMs, 0)} ms${ratio(r.firstTokenMs, google.firstTokenMs)}`,
    `${fmt(r.wallMs, 0)} ms`
  ])
  const header = ["subject", "import", "import + first refresh", "process wall"]
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  console.log(line(header))
  console.log(line(widths.map((w) => "-".repeat(w))))
  for (const row of table) console.log(line(row))
  console.log(
    `@renew/core/promise import: ${fmt(result.importRatio, 2)}× google-auth-library (target ≤ ${IMPORT_TARGET}×) ` +
      `${result.importPass ? "PASS" : "FAIL"}; renew --help: ${fmt(result.helpMs, 0)} ms (target ≤ ${HELP_TARGET_MS} ms) ` +
      `${result.helpPass ? "PASS" : "FAIL"}`
  )
}

if (isMain(import.meta.url)) {
  runColdStart({ all: process.argv.includes("--options") }).then(printColdStart).catch((error: unknown) => {
    console.error("benchmark crashed:", error)
    process.exitCode = 1
  })
}
