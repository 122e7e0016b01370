import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const packages = fileURLToPath(new URL("./packages", import.meta.url))

export default defineConfig({
  resolve: {
    // Tests always run against sources, never a stale dist/.
    alias: [
      { find: /^@renew\/([a-z-]+)$/, replacement: `${packages}/$1/src/index.ts` },
      { find: /^@renew\/([a-z-]+)\/(.+)$/, replacement: `${packages}/$1/src/$2.ts` }
    ]
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "apps/*/test/**/*.test.ts", "test/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    allowOnly: false
  }
})
