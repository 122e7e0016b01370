/**
 * The README's provider table is generated from the profiles: it fails here when a profile changed and the README
 * was not regenerated (`npm run docs:providers`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Providers } from "@renew/core"
import { readFileSync } from "node:fs"
import { README, renderTable, withTable } from "./support/providerTable.js"

describe("README provider table", () => {
  it("matches the profiles (run `npm run docs:providers` after changing one)", () => {
    const readme = readFileSync(README, "utf8")
    assert.strictEqual(withTable(readme, renderTable()), readme)
  })

  it("has one row per shipped profile, each with its sources", () => {
    const rows = renderTable().split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| Provider") && !line.startsWith("| ---"))
    assert.strictEqual(rows.length, Providers.all.length)
    for (const row of rows) assert.match(row, /\[1\]\(https:\/\//)
  })
})
