/**
 * Package boundaries, checked on the sources:
 *
 * - each package's sources and tests import only what its package.json declares (dependencies, devDependencies or
 *   peerDependencies; Node built-ins and the package itself aside), and never reach into another package's files by
 *   a relative path;
 * - no hand-written SQL against a store's tables outside that store's package: the CLI reads store-sqlite through
 *   its read API (`SqliteTokenStore.listGrants`), as it reads Redis through `RedisTokenStore.inspectDurability`.
 */
import { assert, describe, it } from "vitest"
import * as Fs from "node:fs"
import { builtinModules } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("..", import.meta.url))

const packageDirs = ["packages", "apps"].flatMap((parent) =>
  Fs.readdirSync(Path.join(ROOT, parent))
    .map((name) => Path.join(ROOT, parent, name))
    .filter((dir) => Fs.existsSync(Path.join(dir, "package.json")))
)

const sourceFiles = (dir: string): Array<string> =>
  Fs.existsSync(dir)
    ? Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = Path.join(dir, entry.name)
      if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "dist" ? [] : sourceFiles(path)
      return /\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : []
    })
    : []

// Static imports, re-exports and dynamic imports of a string literal.
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|(?:^|\n)\s*import\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g

const importsOf = (file: string): Array<string> =>
  [...Fs.readFileSync(file, "utf8").matchAll(IMPORT)].map((m) => (m[1] ?? m[2] ?? m[3])!)

const packageName = (specifier: string) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!

const builtins = new Set(builtinModules)

describe("package boundaries", () => {
  for (const dir of packageDirs) {
    const manifest = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8"))
    const declared = new Set([
      manifest.name,
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.devDependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {})
    ])
    it(`${manifest.name}: sources and tests import only what its package.json declares, and no other package's files`, () => {
      const problems: Array<string> = []
      for (const file of [...sourceFiles(Path.join(dir, "src")), ...sourceFiles(Path.join(dir, "test"))]) {
        for (const specifier of importsOf(file)) {
          const where = Path.relative(ROOT, file)
          if (specifier.startsWith(".")) {
            const target = Path.resolve(Path.dirname(file), specifier)
            if (!target.startsWith(dir + Path.sep)) problems.push(`${where} reaches outside its package: ${specifier}`)
            continue
          }
          if (specifier.startsWith("node:") || builtins.has(specifier)) continue
          if (!declared.has(packageName(specifier))) problems.push(`${where} imports undeclared ${specifier}`)
        }
      }
      assert.deepStrictEqual(problems, [])
    })
  }

  it("no hand-written SQL against a store's tables outside that store's package", () => {
    const owners: ReadonlyArray<readonly [RegExp, string]> = [
      // The tables of store-sqlite and store-postgres (same names; PostgreSQL may prefix them differently).
      [/\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+(?:[\w${}.`]*\.)?(?:\$\{[^}]*\}|renew_)(?:grants|leases|schema_version)\b/i, "store"]
    ]
    const roots = ["packages", "apps", "test", "bench", "examples"].map((d) => Path.join(ROOT, d))
    const problems: Array<string> = []
    for (const file of roots.flatMap(sourceFiles)) {
      const relative = Path.relative(ROOT, file)
      // A store's own package (sources and tests) may address its tables; nothing else may.
      if (/^packages\/store-(sqlite|postgres)\//.test(relative)) continue
      const text = Fs.readFileSync(file, "utf8")
      for (const [pattern] of owners) {
        if (pattern.test(text) || /renew_(grants|leases)/.test(text.replace(/renew_grants_reauth_required_total/g, ""))) {
          problems.push(relative)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })
})
