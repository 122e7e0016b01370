/**
 * The PostgreSQL store's scheduling side. The due index is the `due_at` column (a partial index), written by the
 * grant's own compare-and-set statement. A claim is one autocommit statement (SC-3): it locks the due rows it picks
 * with `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other nor pick the same row, moves them to
 * `holdUntil`, and commits at once. No transaction outlives the statement and no advisory lock is taken, so it works
 * behind transaction pooling (SC-4).
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { RefreshError, TokenStore } from "@renew/core"
import * as Scheduling from "@renew/store-kit/Scheduling"
import * as Effect from "effect/Effect"
import type { Tables } from "./schema.js"

/** @internal */
export type Run = <A>(operation: string, effect: Effect.Effect<A, SqlError>) => Effect.Effect<A, RefreshError.StoreError>

/** @internal */
export const make = (sql: SqlClient.SqlClient, tables: Tables, run: Run): TokenStore.Scheduling => {
  const grants = sql(tables.grants)
  const pauses = sql(tables.issuerPauses)
  return {
    claimDue: (request) =>
      Effect.flatMap(Scheduling.claim(request), ({ holdUntil, limit, now }) =>
        limit === 0
          ? Effect.succeed([])
          : Effect.map(
            run(
              "claimDue",
              // The CTE keeps the due time each row had when locked; UPDATE … RETURNING alone only sees the new one.
              // Only due_at changes: the grant's version, write id and lease are left as they are.
              sql<{ key: string; due_at: string }>`
                WITH picked AS (
                  SELECT key, due_at FROM ${grants}
                  WHERE due_at <= ${now}
                  ORDER BY due_at, key
                  LIMIT ${limit}
                  FOR UPDATE SKIP LOCKED
                )
                UPDATE ${grants} AS g SET due_at = ${holdUntil}
                FROM picked WHERE g.key = picked.key
                RETURNING g.key, picked.due_at`
            ),
            (rows) => Scheduling.claimed(rows.map((row) => ({ key: row.key, dueAt: row.due_at })))
          )),
    backlog: (now) =>
      Effect.flatMap(Scheduling.millis("backlog", now, "floor"), (at) =>
        Effect.map(
          run(
            "backlog",
            // Index scans of the partial index on due_at, never of the whole table.
            sql<{ due: string; oldest: string | null; scheduled: string }>`SELECT
              (SELECT count(*) FROM ${grants} WHERE due_at <= ${at}) AS due,
              (SELECT min(due_at) FROM ${grants} WHERE due_at IS NOT NULL) AS oldest,
              (SELECT count(*) FROM ${grants} WHERE due_at IS NOT NULL) AS scheduled`
          ),
          (rows) => Scheduling.backlog(at, rows[0]!)
        )),
    pauseIssuer: (issuer, until) =>
      Effect.flatMap(Scheduling.millis("pauseIssuer", until, "ceil"), (end) =>
        Effect.asVoid(run(
          "pauseIssuer",
          sql`INSERT INTO ${pauses} AS p (issuer, paused_until) VALUES (${issuer}, ${end})
            ON CONFLICT (issuer) DO UPDATE SET paused_until = GREATEST(p.paused_until, excluded.paused_until)`
        ))),
    issuerPausedUntil: (issuer, now) =>
      Effect.flatMap(Scheduling.millis("issuerPausedUntil", now, "floor"), (at) =>
        Effect.map(
          run(
            "issuerPausedUntil",
            sql<{ paused_until: string }>`SELECT paused_until FROM ${pauses} WHERE issuer = ${issuer}`
          ),
          (rows) => Scheduling.pausedUntil(at, rows[0]?.paused_until)
        ))
  }
}
