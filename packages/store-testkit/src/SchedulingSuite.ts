/**
 * ONE conformance suite for every store's scheduling side (`TokenStore.Scheduling`): the due index written with each
 * grant, batch claims that hand each due grant to exactly one claimer, dead grants never due, and fleet-wide issuer
 * pauses. Times are explicit (`now` is an argument of every call), so nothing here depends on the machine's speed.
 */
import { assert, describe, it } from "@effect/vitest"
import { TokenStore } from "@renew/core"
import { Effect, Option } from "effect"
import type * as Scope from "effect/Scope"
import * as Grants from "./Grants.js"

export interface SchedulingSuiteOptions<E> {
  /**
   * Makes a fresh backend for one test (a new file, key prefix or schema: the due index is global to a backend, so a
   * test counts only what it wrote) and returns how to open clients of it; every client opened reaches that backend.
   */
  readonly backend: Effect.Effect<Effect.Effect<TokenStore.TokenStore["Type"], E, Scope.Scope>, E, Scope.Scope>
  /** Grants written by the exactly-once test (default 10,000). */
  readonly grants?: number | undefined
}

const T0 = 1_800_000_000_000

/** A grant due at `dueAt`. */
const dueGrant = (dueAt: number, overrides: Partial<Grants.GrantFields> = {}) =>
  Grants.sample({ issuedAt: T0 - 3_600_000, expiresAt: dueAt + 60_000, refreshDueAt: dueAt, ...overrides })

const schedulingOf = (store: TokenStore.TokenStore["Type"]): TokenStore.Scheduling => {
  if (store.scheduling === undefined) throw new Error("the store under test has no scheduling side")
  return store.scheduling
}

/** Writes many grants with bounded concurrency. */
const writeAll = (
  store: TokenStore.TokenStore["Type"],
  entries: ReadonlyArray<readonly [string, ReturnType<typeof dueGrant>]>
) =>
  Effect.forEach(entries, ([key, grant]) => store.compareAndSet(key, undefined, grant), {
    concurrency: 64,
    discard: true
  })

/**
 * @since 0.1.0
 */
export const suite = <E>(name: string, options: SchedulingSuiteOptions<E>): void => {
  const count = options.grants ?? 10_000

  describe(`${name}: scheduling`, () => {
    it.scoped("claims due grants earliest first, each moved to holdUntil, and no grant that is not due", () =>
      Effect.gen(function*() {
        const open = yield* Effect.orDie(options.backend)
        const store = yield* Effect.orDie(open)
        const scheduling = schedulingOf(store)
        yield* writeAll(store, [
          ["late", dueGrant(T0 + 5_000)],
          ["first", dueGrant(T0 - 2_000)],
          ["second", dueGrant(T0 - 1_000)],
          ["third", dueGrant(T0)]
        ])
        const claimed = yield* scheduling.claimDue({ now: T0, limit: 2, holdUntil: T0 + 60_000 })
        assert.deepStrictEqual(claimed, [{ key: "first", dueAt: T0 - 2_000 }, { key: "second", dueAt: T0 - 1_000 }])
        const rest = yield* scheduling.claimDue({ now: T0, limit: 10, holdUntil: T0 + 60_000 })
        assert.deepStrictEqual(rest, [{ key: "third", dueAt: T0 }])
        // Claimed grants are hidden until holdUntil, then due again (their claimer died).
        assert.deepStrictEqual(yield* scheduling.claimDue({ now: T0 + 59_999, limit: 10, holdUntil: T0 + 70_000 }), [
          { key: "late", dueAt: T0 + 5_000 }
        ])
        const again = yield* scheduling.claimDue({ now: T0 + 60_000, limit: 10, holdUntil: T0 + 120_000 })
        assert.deepStrictEqual(again.map((grant) => grant.key).sort(), ["first", "second", "third"])
        // The grant itself is untouched by a claim: same version, so a caller's compare-and-set still succeeds.
        const first = Option.getOrThrow(yield* store.get("first"))
        assert.strictEqual(first.version, 1)
        yield* store.compareAndSet("first", 1, dueGrant(T0 + 3_600_000))
      }))

    it.scoped("each write records the grant's due time; a delete, a dead grant or a missing refresh token unschedules it", () =>
      Effect.gen(function*() {
        const open = yield* Effect.orDie(options.backend)
        const store = yield* Effect.orDie(open)
        const scheduling = schedulingOf(store)
        yield* writeAll(store, [
          ["moved", dueGrant(T0 - 1_000)],
          ["dead", dueGrant(T0 - 1_000)],
          ["deleted", dueGrant(T0 - 1_000)],
          ["no-refresh-token", dueGrant(T0 - 1_000, { refreshToken: undefined })],
          ["derived", Grants.sample({ issuedAt: T0 - 3_600_000, expiresAt: T0 + 30_000 })]
        ])
        yield* store.compareAndSet("moved", 1, dueGrant(T0 + 3_600_000))
        yield* store.compareAndSet("dead", 1, dueGrant(T0 - 1_000, { reauthRequired: "revoked" }))
        yield* store.delete("deleted")
        const backlog = yield* scheduling.backlog(T0)
        assert.deepStrictEqual(backlog, { due: 1, oldestDueAt: T0 - 30_000, scheduled: 2 })
        // Without its own refreshDueAt, a grant is due a minute before expiry (TokenStore.dueAtOf).
        assert.deepStrictEqual(yield* scheduling.claimDue({ now: T0, limit: 10, holdUntil: T0 + 60_000 }), [
          { key: "derived", dueAt: T0 - 30_000 }
        ])
        assert.deepStrictEqual(yield* scheduling.backlog(T0), { due: 0, oldestDueAt: undefined, scheduled: 2 })
      }))

    it.scoped(`8 concurrent claimers of ${count} due grants: each grant is claimed exactly once`, () =>
      Effect.gen(function*() {
        const open = yield* Effect.orDie(options.backend)
        const store = yield* Effect.orDie(open)
        const scheduling = schedulingOf(store)
        const keys = Array.from({ length: count }, (_, i) => `due:${i}`)
        yield* writeAll(store, keys.map((key, i) => [key, dueGrant(T0 - (i % 1_000))] as const))
        // Each claimer is a client of its own (its own connection), as the replicas of a fleet are.
        const claimers = yield* Effect.forEach(Array.from({ length: 8 }), () => Effect.map(Effect.orDie(open), schedulingOf))
        const claimer = (mine: TokenStore.Scheduling) =>
          Effect.gen(function*() {
            const keys: Array<string> = []
            for (;;) {
              const batch = yield* mine.claimDue({ now: T0, limit: 100, holdUntil: T0 + 600_000 })
              if (batch.length === 0) return keys
              for (const grant of batch) keys.push(grant.key)
            }
          })
        const claims = (yield* Effect.all(claimers.map(claimer), { concurrency: "unbounded" })).flat()
        assert.strictEqual(claims.length, count)
        assert.strictEqual(new Set(claims).size, count)
        assert.deepStrictEqual(yield* scheduling.backlog(T0), { due: 0, oldestDueAt: undefined, scheduled: count })
      }), { timeout: 120_000 })

    it.scoped("an issuer pause is shared by every client of the store and keeps the later end", () =>
      Effect.gen(function*() {
        const open = Effect.orDie(yield* Effect.orDie(options.backend))
        const one = schedulingOf(yield* open)
        const other = schedulingOf(yield* open)
        const issuer = "https://issuer.example/token"
        assert.isUndefined(yield* other.issuerPausedUntil(issuer, T0))
        yield* one.pauseIssuer(issuer, T0 + 30_000)
        yield* other.pauseIssuer(issuer, T0 + 10_000)
        assert.strictEqual(yield* other.issuerPausedUntil(issuer, T0), T0 + 30_000)
        assert.isUndefined(yield* other.issuerPausedUntil("https://another.example/token", T0))
        assert.isUndefined(yield* one.issuerPausedUntil(issuer, T0 + 30_000))
      }))
  })
}
