/**
 * The bundled builds, made from the `tsc -b` output (run after it):
 *
 * - `packages/cli/dist/renew.js`: the `renew` executable with every JavaScript dependency inlined, so that it starts
 *   in a few hundred milliseconds instead of resolving and compiling ~1,000 ES modules one at a time (Node 20 has no
 *   compile cache). better-sqlite3 stays outside: it loads a native addon from its own directory.
 * - `packages/core/dist/promise.bundle.js`: `@renew/core/promise`, the Promise facade with `effect` and
 *   `@effect/platform` inlined (see packages/core/src/promise.ts for who should use it). Anything else it reaches
 *   (the SQLite store it loads on demand, OpenTelemetry's global API) stays an import, resolved in the application.
 *
 * Measurements behind both choices: bench/README.md (cold start).
 *
 *   node scripts/bundle.mjs            # both
 *   node scripts/bundle.mjs core cli   # some
 */
import { build } from "esbuild"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

const packageOf = (specifier) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]

// Bare imports of packages not in `inline` stay imports.
const externalUnless = (inline) => ({
  name: "external-unless-inlined",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith("node:") || !inline(packageOf(args.path)) ? { path: args.path, external: true } : undefined)
  }
})

const version = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version

const targets = {
  cli: {
    entryPoints: [join(root, "packages/cli/dist/main.js")],
    outfile: join(root, "packages/cli/dist/renew.js"),
    // Fully minified: the smaller the file, the less Node has to read and parse before the first line of output
    // (bench/README.md, cold start). An executable's failures reach its user as typed messages, not stack traces.
    minify: true,
    plugins: [externalUnless((name) => name !== "better-sqlite3")],
    banner: {
      js: `// renew: @renew/cli bundled with its dependencies (effect, @effect/*: MIT, Copyright (c) 2023 Effectful ` +
        `Technologies Inc; see their packages' LICENSE files).`
    }
  },
  core: {
    entryPoints: [join(root, "packages/core/dist/promise.js")],
    outfile: join(root, "packages/core/dist/promise.bundle.js"),
    // As for the CLI; renaming identifiers as well would take off a few more milliseconds and every readable name in
    // an application's stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    plugins: [externalUnless((name) => name === "effect" || name === "@effect/platform")],
    banner: {
      js: `// @renew/core/promise: the Promise facade with effect ${version("effect")} and @effect/platform ` +
        `${version("@effect/platform")} inlined (MIT, Copyright (c) 2023 Effectful Technologies Inc).`
    }
  }
}

const selected = process.argv.slice(2)
for (const name of selected.length === 0 ? Object.keys(targets) : selected) {
  const target = targets[name]
  if (target === undefined) throw new Error(`unknown bundle ${name}; known: ${Object.keys(targets).join(", ")}`)
  await build({
    ...target,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    legalComments: "none"
  })
}
