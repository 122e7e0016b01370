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
    // Timeouts only catch a hang; on a loaded machine (npm run test:stress) an honest test can take several times its
    // quiet-machine duration, so they are generous.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    allowOnly: false
  }
})
