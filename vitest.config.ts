import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src`, import.meta.url))

export default defineConfig({
  resolve: {
    // Tests always run against sources, never a stale dist/.
    alias: [
      { find: /^@renew\/core$/, replacement: `${src("core")}/index.ts` },
      { find: /^@renew\/core\/(.*)$/, replacement: `${src("core")}/$1.ts` },
      { find: /^@renew\/auth-server-fixture$/, replacement: fileURLToPath(new URL("./packages/auth-server-fixture/src/index.ts", import.meta.url)) }
    ]
  },
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    allowOnly: false
  }
})
