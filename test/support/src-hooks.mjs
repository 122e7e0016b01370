// Module resolve hook for child processes and benchmarks run outside vitest: `@renew/<pkg>[/<module>]` resolves to
// the package's TypeScript sources (as vitest's alias does), never to a possibly stale dist/, so a process loads ONE
// copy of each package. Registered by register-src.mjs; tsx (loaded first) compiles the .ts files.
const packages = new URL("../../packages/", import.meta.url)

export async function resolve(specifier, context, next) {
  const match = /^@renew\/([a-z-]+)(?:\/(.+))?$/.exec(specifier)
  if (match !== null) {
    // Handed on to tsx's resolver, which marks the .ts file for compilation.
    return next(new URL(`${match[1]}/src/${match[2] ?? "index"}.ts`, packages).href, context)
  }
  return next(specifier, context)
}
