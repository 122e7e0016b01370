/**
 * The SQLite store's scheduling side: the due index is the `due_at` column (partial index), written by the grant's
 * own compare-and-set statement.
 *
 * Every operation is ONE statement, which SQLite runs atomically. No multi-statement transaction: better-sqlite3 is
 * synchronous, so a connection waiting for another connection's write lock in the same process would block the very
 * thread that has to finish that transaction.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { RefreshError, TokenStore } from "@renew/core"
import * as Scheduling from "@renew/store-kit/Scheduling"
import * as Effect from "effect/Effect"

/** @internal */
export type Run = <A>(operation: string, effect: Effect.Effect<A, SqlError>) => Effect.Effect<A, RefreshError.StoreError>

/** @internal */
export const make = (sql: SqlClient.SqlClient, run: Run): TokenStore.Scheduling => ({
  claimDue: (request) =>
    Effect.flatMap(Scheduling.claim(request), ({ holdUntil, limit, now }) =>
      limit === 0
        ? Effect.succeed([])
        : Effect.map(
          run(
            "claimDue",
            // SET expressions read the row before the update, RETURNING the row after it: claimed_due_at carries the
            // due time the grant had when claimed. The grant itself (version, lease) is not touched.
            sql<{ key: string; due_at: number }>`UPDATE renew_grants SET claimed_due_at = due_at, due_at = ${holdUntil}
              WHERE key IN (
                SELECT key FROM renew_grants WHERE due_at <= ${now} ORDER BY due_at, key LIMIT ${limit}
              )
              RETURNING key, claimed_due_at AS due_at`
          ),
          (rows) => Scheduling.claimed(rows.map((row) => ({ key: row.key, dueAt: row.due_at })))
        )),
  backlog: (now) =>
    Effect.flatMap(Scheduling.millis("backlog", now, "floor"), (at) =>
      Effect.map(
        run(
          "backlog",
          // Three index lookups (the partial index on due_at), never a scan of the grants.
          sql<{ due: number; oldest: number | null; scheduled: number }>`SELECT
            (SELECT count(*) FROM renew_grants WHERE due_at <= ${at}) AS due,
            (SELECT min(due_at) FROM renew_grants WHERE due_at IS NOT NULL) AS oldest,
            (SELECT count(*) FROM renew_grants WHERE due_at IS NOT NULL) AS scheduled`
        ),
        (rows) => Scheduling.backlog(at, rows[0]!)
      )),
  pauseIssuer: (issuer, until) =>
    Effect.flatMap(Scheduling.millis("pauseIssuer", until, "ceil"), (end) =>
      Effect.asVoid(run(
        "pauseIssuer",
        sql`INSERT INTO renew_issuer_pauses (issuer, paused_until) VALUES (${issuer}, ${end})
          ON CONFLICT (issuer) DO UPDATE SET paused_until = max(paused_until, excluded.paused_until)`
      ))),
  issuerPausedUntil: (issuer, now) =>
    Effect.flatMap(Scheduling.millis("issuerPausedUntil", now, "floor"), (at) =>
      Effect.map(
        run(
          "issuerPausedUntil",
          sql<{ paused_until: number }>`SELECT paused_until FROM renew_issuer_pauses WHERE issuer = ${issuer}`
        ),
        (rows) => Scheduling.pausedUntil(at, rows[0]?.paused_until)
      ))
})
