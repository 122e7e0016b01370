import type { Reporter, TestModule } from "vitest/node"

/**
 * Prints the one line CI reads — `Tests: N passed, N failed, N skipped` — as the very last line of the run.
 * Vitest's own summary is printed after `onTestRunEnd`, so the line is written from an exit handler.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
      // A file that fails to load has no tests; count it so a broken file cannot look green.
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++
    }
    failed += unhandledErrors.length
    process.once("exit", () => {
      process.stdout.write(`Tests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
    })
  }
}
