/**
 * The memory store's due index against a naive model, over generated histories of writes, deletes and claims: every
 * claim returns exactly the model's due keys (earliest first, up to the limit), moved to `holdUntil`, and the backlog
 * agrees. Together with the store suites' examples, this is what makes "each due grant goes to one claimer" hold for
 * the heap with lazy deletion and its compaction.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as DueIndex from "../src/internal/dueIndex.js"

type Op =
  | { readonly _tag: "set"; readonly key: string; readonly dueAt: number | undefined }
  | { readonly _tag: "claim"; readonly now: number; readonly limit: number; readonly hold: number }
  | { readonly _tag: "backlog"; readonly now: number }

const key = FastCheck.constantFrom("k0", "k1", "k2")
// Few keys and times, so ties, rewrites to an earlier time and duplicate heap entries are common.
const time = FastCheck.integer({ min: 0, max: 5 })
const op: FastCheck.Arbitrary<Op> = FastCheck.oneof(
  FastCheck.record({ _tag: FastCheck.constant("set" as const), key, dueAt: FastCheck.option(time, { nil: undefined }) }),
  FastCheck.record({
    _tag: FastCheck.constant("claim" as const),
    now: time,
    limit: FastCheck.integer({ min: 1, max: 5 }),
    hold: FastCheck.integer({ min: 1, max: 4 })
  }),
  FastCheck.record({ _tag: FastCheck.constant("backlog" as const), now: time })
)

describe("due index (memory store)", () => {
  it.prop("any history of writes, deletes and claims agrees with a naive model", { ops: FastCheck.array(op, { maxLength: 200 }) }, ({ ops }) => {
    const index = DueIndex.make()
    const model = new Map<string, number>()
    for (const step of ops) {
      switch (step._tag) {
        case "set":
          index.set(step.key, step.dueAt)
          if (step.dueAt === undefined) model.delete(step.key)
          else model.set(step.key, step.dueAt)
          break
        case "claim": {
          const expected = [...model]
            .filter(([, dueAt]) => dueAt <= step.now)
            .sort(([ka, a], [kb, b]) => a - b || (ka < kb ? -1 : 1))
            .slice(0, step.limit)
          const claimed = index.claim(step.now, step.limit, step.now + step.hold)
          assert.deepStrictEqual(claimed.map((e) => [e.key, e.dueAt]), expected)
          for (const [k] of expected) model.set(k, step.now + step.hold)
          break
        }
        case "backlog": {
          const due = [...model.values()].filter((dueAt) => dueAt <= step.now)
          assert.deepStrictEqual(index.backlog(step.now), {
            due: due.length,
            oldestDueAt: due.length === 0 ? undefined : Math.min(...due),
            scheduled: model.size
          })
        }
      }
    }
  }, { fastCheck: { numRuns: 3000 } })
})
