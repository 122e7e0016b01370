/**
 * The API reference's two rules, checked with the TypeScript compiler over every public package (what
 * `@effect/docgen` enforces for the Effect packages; docgen itself cannot check an example's types without also running
 * it, and ours call real token endpoints):
 *
 * - every public module starts with a doc comment carrying `@since`, and every export of it has `@since` (on the
 *   declaration, or on the `export` statement that re-exports it);
 * - every ```ts block under an `@example` tag type-checks as its own ES module, with the project's compiler options,
 *   against the packages as users import them (`@renew/core`, `@renew/core/promise`, …). An example may use the few
 *   application-side names declared in PLACEHOLDERS below without defining them; anything else it uses, it imports.
 *
 * Needs the built declarations (`npm test` runs `tsc -b` first).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { assert, describe, it } from "vitest"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const PUBLIC = ["core", "store-kit", "store-sqlite", "store-redis", "store-postgres", "opentelemetry", "cli"] as const

// What an example may take as given: the application's own values and functions.
const PLACEHOLDERS = `import type { Effect, Layer } from "effect"
import type { Refresher } from "@renew/core"
declare global {
  /** Tokens from the application's authorization-code exchange. */
  const accessToken: string
  const refreshToken: string
  /** The application's way of telling a user to sign in again. */
  function emailUser(key: string, reason?: string): void
  /** An application program that needs the engine, and the engine's layer. */
  const program: Effect.Effect<void, unknown, Refresher.Refresher>
  const Engine: Layer.Layer<Refresher.Refresher>
}
export {}
`

const compilerOptions = (): ts.CompilerOptions => {
  const base = ts.readConfigFile(Path.join(ROOT, "tsconfig.base.json"), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(base.config, ts.sys, ROOT)
  return { ...parsed.options, noEmit: true, composite: false, declaration: false, declarationMap: false, incremental: false }
}

/** The public modules: every top-level file of src/ (internal/ is not exported). */
const publicModules = PUBLIC.flatMap((name) => {
  const src = Path.join(ROOT, "packages", name, "src")
  return Fs.readdirSync(src).filter((f) => f.endsWith(".ts")).map((f) => Path.join(src, f))
})

const relative = (file: string) => Path.relative(ROOT, file)

const hasSince = (node: ts.Node): boolean => ts.getJSDocTags(node).some((tag) => tag.tagName.text === "since")

/** `@since` on the declaration or on the statement that holds it (`export * as X from …`, `export { x }`). */
const documented = (declaration: ts.Node): boolean => {
  for (let node: ts.Node | undefined = declaration; node !== undefined; node = node.parent) {
    if (hasSince(node)) return true
    if (ts.isSourceFile(node) || ts.isStatement(node)) return false
  }
  return false
}

describe("API reference", () => {
  it("every public module and every export it makes has @since", () => {
    const program = ts.createProgram(publicModules, compilerOptions())
    const checker = program.getTypeChecker()
    const missing: Array<string> = []
    for (const file of publicModules) {
      const source = program.getSourceFile(file)!
      if (!/^(?:#!.*\n)?\s*\/\*\*(?:(?!\*\/)[\s\S])*@since/.test(source.text)) {
        missing.push(`${relative(file)}: the module's first doc comment has no @since`)
      }
      const moduleSymbol = checker.getSymbolAtLocation(source)
      if (moduleSymbol === undefined) continue // the executable: no exports
      for (const exported of checker.getExportsOfModule(moduleSymbol)) {
        const own = exported.declarations ?? []
        const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported
        // A re-export is documented where it is made or where the re-exported thing is declared.
        const ok = own.some(documented) ||
          (target !== exported && (target.declarations ?? []).length > 0 && (target.declarations ?? []).every(documented)) ||
          (target === exported && own.length > 0 && own.every(documented))
        if (!ok) missing.push(`${relative(file)}: export ${exported.name} has no @since`)
      }
    }
    assert.deepStrictEqual(missing, [])
  })

  it("every @example type-checks as an ES module against the packages as users import them", () => {
    const examples: Array<{ readonly from: string; readonly code: string }> = []
    const walk = (dir: string): Array<string> =>
      Fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(Path.join(dir, e.name)) : e.name.endsWith(".ts") ? [Path.join(dir, e.name)] : []
      )
    for (const name of PUBLIC) {
      for (const file of walk(Path.join(ROOT, "packages", name, "src"))) {
        const text = Fs.readFileSync(file, "utf8")
        for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
          const body = comment[0].split("\n").map((line) => line.replace(/^\s*\*(?: |$)/, "")).join("\n")
          for (const example of body.matchAll(/@example\s*\n```(?:ts|typescript)\n([\s\S]*?)\n```/g)) {
            const line = text.slice(0, comment.index! + comment[0].indexOf("@example")).split("\n").length
            examples.push({ from: `${relative(file)}:${line}`, code: example[1]! })
          }
        }
      }
    }
    assert.isAbove(examples.length, 0)

    // Inside the repository, so that `@renew/*`, `effect`, … resolve as they would for a user: through node_modules to
    // the packages' exports and declarations. `"type": "module"`: each example is an ES module (top-level await).
    const dir = Path.join(ROOT, "node_modules", ".cache", "api-examples")
    Fs.rmSync(dir, { recursive: true, force: true })
    Fs.mkdirSync(dir, { recursive: true })
    Fs.writeFileSync(Path.join(dir, "package.json"), JSON.stringify({ type: "module" }))
    Fs.writeFileSync(Path.join(dir, "placeholders.ts"), PLACEHOLDERS)
    const origin = new Map<string, string>()
    const files = examples.map((example, i) => {
      const file = Path.join(dir, `example-${i}.ts`)
      // `export {}` keeps an example without imports a module, so that examples do not share one script scope.
      Fs.writeFileSync(file, `${example.code}\nexport {}\n`)
      origin.set(file, example.from)
      return file
    })
    try {
      const program = ts.createProgram([Path.join(dir, "placeholders.ts"), ...files], {
        ...compilerOptions(),
        // Examples show a use, not a finished program: an unused name in one is fine.
        noUnusedLocals: false,
        noUnusedParameters: false
      })
      const problems = ts.getPreEmitDiagnostics(program).map((d) => {
        const where = d.file === undefined
          ? "(options)"
          : `${origin.get(d.file.fileName) ?? relative(d.file.fileName)} (example line ${
            d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1
          })`
        return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
      })
      assert.deepStrictEqual(problems, [])
    } finally {
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
