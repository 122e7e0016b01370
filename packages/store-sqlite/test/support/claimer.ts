/**
 * A separate process claiming due grants from one SQLite file, for the multi-process exactly-once test.
 *
 * env: DB_FILE, NOW, HOLD_UNTIL. It prints "ready", waits for a line on stdin (so the parent starts every claimer at
 * once), claims batches of 50 until none is due, and prints one JSON line: the keys it claimed.
 */
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Effect } from "effect"
import * as Readline from "node:readline"

const main = Effect.gen(function*() {
  const store = yield* SqliteTokenStore.make({ filename: process.env.DB_FILE! })
  const scheduling = store.scheduling!
  process.stdout.write("ready\n")
  yield* Effect.async<void>((resume) => {
    Readline.createInterface({ input: process.stdin }).once("line", () => resume(Effect.void))
  })
  const claimed: Array<string> = []
  for (;;) {
    const batch = yield* scheduling.claimDue({
      now: Number(process.env.NOW),
      limit: 50,
      holdUntil: Number(process.env.HOLD_UNTIL)
    })
    if (batch.length === 0) break
    for (const grant of batch) claimed.push(grant.key)
  }
  process.stdout.write(JSON.stringify({ claimed }) + "\n")
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`claimer failed: ${String(error)}\n`)
    process.exit(1)
  }
)
