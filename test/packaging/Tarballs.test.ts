/**
 * The published packages as a user gets them: every public package is packed with `npm pack`, and the tarballs are
 * installed with `npm install` into a fresh project outside the workspace (real directories, no links; the pinned
 * Effect packages and every other dependency from the registry, through npm's cache). There:
 *
 * - the README's runnable examples (examples/node-promise.ts, examples/effect-app.ts), copied verbatim, compile with
 *   TypeScript against the published declarations (skipLibCheck off, so every .d.ts they reach is checked) together
 *   with one import of every public entry point, and run against a loopback token endpoint;
 * - every entry point loads with plain `node`; `npx renew doctor --help` works from the bundled executable, and
 *   `npx renew doctor` diagnoses a healthy grant on a real authorization server (oidc-provider on loopback).
 *
 * Needs the built packages (`npm test` runs `tsc -b` and `npm run bundle` first). Without CI, when the registry cannot
 * be reached, the tests are skipped with a message; in CI they always run.
 */
import { type AuthServer, startAuthServer } from "@renew/auth-server-fixture"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "vitest"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

/** The packages users install; every other workspace package must stay private. */
const PUBLIC = ["core", "store-kit", "store-sqlite", "store-redis", "store-postgres", "opentelemetry", "cli"] as const

const inCI = (): boolean => {
  const ci = process.env["CI"]
  return ci !== undefined && ci !== "" && ci !== "0" && ci.toLowerCase() !== "false"
}

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

// npm passes its configuration to scripts as npm_* variables (this file runs under `npm test`): the fresh project's
// npm must read its own.
const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.toLowerCase().startsWith("npm_") && name !== "INIT_CWD") env[name] = value
  }
  return { ...env, NPM_CONFIG_UPDATE_NOTIFIER: "false", NPM_CONFIG_FUND: "false", NPM_CONFIG_AUDIT: "false", ...extra }
}

/** Runs a command without blocking this process's event loop (the token endpoint the children call lives here). */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: {
    readonly cwd: string
    readonly env?: Record<string, string>
    readonly input?: string
    readonly timeoutMs?: number
  }
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: cleanEnv(options.env), stdio: ["pipe", "pipe", "pipe"] })
    child.stdin.end(options.input ?? "")
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 240_000)
    child.on("error", (error) => (clearTimeout(timer), reject(error)))
    child.on("close", (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })))
  })

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`

const readJson = (path: string) => JSON.parse(Fs.readFileSync(path, "utf8"))

const registry: { readonly reachable: boolean; readonly reason: string } = inCI()
  ? { reachable: true, reason: "" }
  : await run("npm", ["ping", "--fetch-timeout=10000", "--fetch-retries=0"], { cwd: Os.tmpdir(), timeoutMs: 30_000 })
    .then(
      (r) => ({ reachable: r.code === 0, reason: (r.stderr.trim().split("\n").pop() ?? "").slice(0, 200) }),
      (error: unknown) => ({ reachable: false, reason: String(error) })
    )

if (!registry.reachable) {
  it.skip(
    `npm registry unreachable (${registry.reason}): tarball install tests skipped; they run when it answers \`npm ping\`, and always in CI`,
    () => {}
  )
}

interface Packed {
  readonly name: string
  readonly filename: string
  readonly files: ReadonlyArray<{ readonly path: string }>
}

describe.runIf(registry.reachable)("the public packages, installed from tarballs into a fresh project", () => {
  let dir: string
  let app: string
  let packed: ReadonlyArray<Packed>
  let typecheck: Run
  let endpoint: ScriptedTokenEndpoint
  let api: Server
  let authServer: AuthServer
  const secret = "tarball-client-secret-4f1c9a"

  beforeAll(async () => {
    for (const file of ["packages/core/dist/promise.bundle.js", "packages/cli/dist/renew.js"]) {
      if (!Fs.existsSync(Path.join(ROOT, file))) {
        throw new Error(`${file} is missing: build first (npm test does; or npx tsc -b && npm run bundle)`)
      }
    }
    dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-tarballs-"))
    app = Path.join(dir, "app")
    Fs.mkdirSync(Path.join(app, "src"), { recursive: true })

    // Scripts are not run: `npm test` has just built dist/, and prepack would build it again per package.
    const pack = await run(
      "npm",
      ["pack", "--json", "--ignore-scripts", "--pack-destination", dir, ...PUBLIC.flatMap((p) => ["-w", `packages/${p}`])],
      { cwd: ROOT }
    )
    assert.strictEqual(pack.code, 0, show(pack))
    packed = JSON.parse(pack.stdout)

    const pins = readJson(Path.join(ROOT, "package.json")).devDependencies
    const typesNode = readJson(Path.join(ROOT, "node_modules/@types/node/package.json")).version
    Fs.writeFileSync(
      Path.join(app, "package.json"),
      JSON.stringify({ name: "renew-tarball-check", private: true, type: "module" }, null, 2)
    )
    // --ignore-scripts: better-sqlite3 (under @renew/store-sqlite) would compile its addon from source (~100 s on two
    // cores). Its addon is loaded only when a database is opened, which nothing here does.
    const install = await run("npm", [
      "install",
      "--ignore-scripts",
      "--prefer-offline",
      ...packed.map((p) => Path.join(dir, p.filename)),
      `effect@${pins.effect}`,
      `@effect/platform@${pins["@effect/platform"]}`,
      `typescript@${pins.typescript}`,
      `@types/node@${typesNode}`
    ], { cwd: app })
    assert.strictEqual(install.code, 0, show(install))

    for (const example of ["node-promise.ts", "effect-app.ts"]) {
      Fs.copyFileSync(Path.join(ROOT, "examples", example), Path.join(app, "src", example))
    }
    const entries = [
      "@renew/core",
      "@renew/core/promise",
      "@renew/core/TokenManager",
      ...PUBLIC.filter((p) => p !== "core").map((p) => `@renew/${p}`)
    ]
    Fs.writeFileSync(
      Path.join(app, "src", "entries.ts"),
      entries.map((e, i) => `import * as M${i} from "${e}"\n`).join("") +
        `export const entries = { ${entries.map((e, i) => `${JSON.stringify(e)}: M${i}`).join(", ")} }\n` +
        `if (Object.values(entries).some((m) => Object.keys(m).length === 0)) process.exit(1)\n`
    )
    Fs.writeFileSync(
      Path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          types: ["node"],
          rootDir: "src",
          outDir: "dist"
        },
        include: ["src"]
      })
    )
    typecheck = await run("npx", ["tsc", "-p", "."], { cwd: app })

    authServer = await startAuthServer()
    endpoint = await startScriptedTokenEndpoint({ clientId: "my-app", clientSecret: secret })
    api = await new Promise<Server>((resolve) => {
      const server = createServer((req, res) => {
        const issued = endpoint.lastIssued()?.accessToken
        res.writeHead(issued !== undefined && req.headers.authorization === `Bearer ${issued}` ? 200 : 401).end()
      }).listen(0, "127.0.0.1", () => resolve(server))
    })
  }, 600_000)

  afterAll(async () => {
    api?.close()
    await authServer?.close()
    await endpoint?.close()
    if (dir !== undefined) Fs.rmSync(dir, { recursive: true, force: true })
  })

  it("each tarball holds built JS, declarations and LICENSE, every file its manifest points to, and no build leftovers", () => {
    assert.sameMembers(packed.map((p) => p.name), PUBLIC.map((p) => `@renew/${p}`))
    for (const p of packed) {
      const files = new Set(p.files.map((f) => f.path))
      const manifest = readJson(Path.join(ROOT, "packages", p.name.slice("@renew/".length), "package.json"))
      const targets: Array<string> = [manifest.types]
      const collect = (value: unknown): void => {
        if (typeof value === "string") targets.push(value)
        else if (value !== null && typeof value === "object") Object.values(value).forEach(collect)
      }
      collect(manifest.exports)
      collect(manifest.bin)
      for (const target of targets) {
        const path = target.replace(/^\.\//, "").replace("*", "index")
        assert.isTrue(files.has(path), `${p.name}: ${target} is in its manifest but not in the tarball`)
      }
      for (const file of ["LICENSE", "CHANGELOG.md"]) assert.isTrue(files.has(file), `${p.name}: no ${file} in the tarball`)
      const leftovers = [...files].filter((f) => /tsbuildinfo|(^|\/)test\/|\.test\.|\.tmp\./.test(f))
      assert.deepStrictEqual(leftovers, [], `${p.name}: build or test files in the tarball`)
    }
  })

  it("each public manifest says what npm and bundlers need; internal dependencies are version ranges", () => {
    for (const name of PUBLIC) {
      const m = readJson(Path.join(ROOT, "packages", name, "package.json"))
      assert.notStrictEqual(m.private, true, `${m.name} is private`)
      assert.strictEqual(m.license, "MIT", m.name)
      assert.strictEqual(m.type, "module", m.name)
      assert.strictEqual(m.engines?.node, ">=20.19.0", m.name)
      assert.strictEqual(m.repository?.directory, `packages/${name}`, m.name)
      assert.strictEqual(m.publishConfig?.access, "public", m.name)
      assert.isDefined(m.sideEffects, m.name)
      assert.deepStrictEqual(Object.keys(m.exports["."]), ["types", "import", "default"], m.name)
      // "*" would let npm take any version from the registry, including one published by someone else. The peer range
      // on the core is wide on purpose (CONTRIBUTING.md: all are released together).
      for (const [dep, range] of Object.entries<string>(m.dependencies ?? {})) {
        if (dep.startsWith("@renew/")) assert.match(range, /^\^\d+\.\d+\.\d+$/, `${m.name} dependencies ${dep}`)
      }
      for (const [dep, range] of Object.entries<string>(m.peerDependencies ?? {})) {
        if (dep.startsWith("@renew/")) assert.strictEqual(range, ">=0.1.0 <1.0.0", `${m.name} peerDependencies ${dep}`)
      }
    }
    for (const parent of ["packages", "apps"]) {
      for (const name of Fs.readdirSync(Path.join(ROOT, parent))) {
        const file = Path.join(ROOT, parent, name, "package.json")
        if (!Fs.existsSync(file) || (parent === "packages" && (PUBLIC as ReadonlyArray<string>).includes(name))) continue
        assert.strictEqual(readJson(file).private, true, `${parent}/${name} is not listed as public, so must be private`)
      }
    }
  })

  it("installs as real directories outside the workspace, with one consistent dependency tree", async () => {
    for (const name of PUBLIC) {
      const installed = Path.join(app, "node_modules", "@renew", name)
      assert.isFalse(Fs.lstatSync(installed).isSymbolicLink(), `${installed} is a link`)
      assert.isFalse(Fs.realpathSync(installed).startsWith(ROOT), `${installed} resolves into the workspace`)
    }
    const ls = await run("npm", ["ls", "--all"], { cwd: app })
    assert.strictEqual(ls.code, 0, show(ls))
  })

  it("the examples and an import of every entry point compile against the published declarations", () => {
    assert.strictEqual(typecheck.code, 0, show(typecheck))
  })

  it("every entry point loads with plain node", async () => {
    const r = await run("node", ["dist/entries.js"], { cwd: app })
    assert.strictEqual(r.code, 0, show(r))
  })

  it("@renew/core/promise resolves to the self-contained build, which loads no Effect module", async () => {
    const r = await run("node", ["--input-type=module", "-e", `console.log(import.meta.resolve("@renew/core/promise"))`], {
      cwd: app
    })
    assert.strictEqual(r.code, 0, show(r))
    const file = fileURLToPath(r.stdout.trim())
    assert.strictEqual(Path.basename(file), "promise.bundle.js")
    const imports = [...Fs.readFileSync(file, "utf8").matchAll(/\bfrom\s*"([^"]+)"|\bimport\s*\(\s*"([^"]+)"/g)]
      .map((m) => m[1] ?? m[2])
    assert.deepStrictEqual(imports.filter((i) => i?.startsWith("effect") || i?.startsWith("@effect/")), [])
  })

  it("the README's Promise example (examples/node-promise.ts, @renew/core/promise) gets a token", async () => {
    const before = endpoint.refreshRequests
    const r = await run("node", ["dist/node-promise.js"], {
      cwd: app,
      env: { TOKEN_URL: endpoint.url, CLIENT_ID: "my-app", CLIENT_SECRET: secret, REFRESH_TOKEN: endpoint.mintRefreshToken() }
    })
    assert.strictEqual(r.code, 0, show(r))
    assert.include(r.stdout, "got an access token")
    assert.strictEqual(endpoint.refreshRequests, before + 1, "one refresh for two concurrent callers")
    assert.notInclude(r.stdout + r.stderr, secret)
  })

  it("the README's Effect example (examples/effect-app.ts) refreshes and calls the API with the new token", async () => {
    const before = endpoint.refreshRequests
    const r = await run("node", ["dist/effect-app.js"], {
      cwd: app,
      env: {
        TOKEN_URL: endpoint.url,
        CLIENT_ID: "my-app",
        CLIENT_SECRET: secret,
        REFRESH_TOKEN: endpoint.mintRefreshToken(),
        API_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}/me`
      }
    })
    assert.strictEqual(r.code, 0, show(r))
    assert.include(r.stdout, "API answered 200")
    assert.strictEqual(endpoint.refreshRequests, before + 1)
    assert.notInclude(r.stdout + r.stderr, secret)
  })

  it("npx renew doctor --help runs the bundled executable", async () => {
    const r = await run("npx", ["--no-install", "renew", "doctor", "--help"], { cwd: app, env: { NO_COLOR: "1" } })
    assert.strictEqual(r.code, 0, show(r))
    assert.include(r.stdout, "--issuer")
    assert.include(r.stdout, "--refresh-token-stdin")
    assert.strictEqual(
      Fs.realpathSync(Path.join(app, "node_modules", ".bin", "renew")),
      Path.join(Fs.realpathSync(app), "node_modules", "@renew", "cli", "dist", "renew.js")
    )
  })

  it("npx renew doctor diagnoses a healthy grant on a real authorization server (the bundled executable at work)", async () => {
    const grant = await authServer.obtainGrant()
    const client = authServer.clients.basic
    const r = await run("npx", [
      "--no-install", "renew", "doctor", "--issuer", authServer.issuer, "--client-id", client.clientId,
      "--refresh-token-stdin", "--json", "--timeout", "60"
    ], { cwd: app, env: { RENEW_CLIENT_SECRET: client.clientSecret }, input: `${grant.refreshToken}\n` })
    assert.strictEqual(r.code, 0, show(r))
    assert.strictEqual(JSON.parse(r.stdout).summary.exitCode, 0, r.stdout)
    assert.notInclude(r.stdout + r.stderr, client.clientSecret)
    assert.notInclude(r.stdout + r.stderr, grant.refreshToken)
  })
})
