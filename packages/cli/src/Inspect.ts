/**
 * `renew inspect`: what a `@renew/store-sqlite` file holds, grant by grant — key, version, expiries, status (active,
 * needs re-auth and why, refresh in flight) and scope. Reads the file read-only and never touches the token columns.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { type GrantRow, listGrants, StoreFileError } from "./internal/storeFile.js"
import { formatAgo, formatIn, table } from "./internal/text.js"

/**
 * The store file could not be read: missing, not a SQLite database, or not a Renew store.
 *
 * @since 0.1.0
 * @category errors
 */
export { StoreFileError }

/**
 * @since 0.1.0
 * @category models
 */
export type GrantStatus = "active" | "needs_reauth" | "refresh_in_flight" | "refresh_interrupted"

/**
 * One grant as `renew inspect` describes it. Times are ISO 8601; `…InSeconds` are relative to `now` (negative: past).
 *
 * @since 0.1.0
 * @category models
 */
export interface GrantSummary {
  readonly key: string
  readonly version: number
  readonly tokenType: string
  readonly issuedAt: string
  readonly expiresAt: string
  readonly expiresInSeconds: number
  readonly refreshTokenExpiresAt: string | null
  readonly refreshTokenExpiresInSeconds: number | null
  readonly status: GrantStatus
  /** Why the grant needs re-authorization, or when the in-flight (or interrupted) refresh started. */
  readonly reason: string | null
  readonly scope: string | null
  /** The encryption key id of the row, when its tokens are encrypted at rest. */
  readonly keyId: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Inventory {
  readonly store: string
  readonly grants: ReadonlyArray<GrantSummary>
}

const seconds = (millis: number) => Math.round(millis / 1000)

const summarize = (row: GrantRow, now: number): GrantSummary => {
  let status: GrantStatus = "active"
  let reason: string | null = null
  if (row.reauthRequired !== undefined) {
    status = "needs_reauth"
    reason = row.reauthRequired
  } else if (row.refreshStartedAt !== undefined) {
    const live = row.leaseExpiresAt !== undefined && row.leaseExpiresAt > now
    status = live ? "refresh_in_flight" : "refresh_interrupted"
    reason = `started ${formatIn(row.refreshStartedAt - now)}`
  } else if (row.refreshTokenExpiresAt !== undefined && row.refreshTokenExpiresAt <= now) {
    status = "needs_reauth"
    reason = "refresh token expired"
  }
  return {
    key: row.key,
    version: row.version,
    tokenType: row.tokenType,
    issuedAt: new Date(row.issuedAt).toISOString(),
    expiresAt: new Date(row.expiresAt).toISOString(),
    expiresInSeconds: seconds(row.expiresAt - now),
    refreshTokenExpiresAt: row.refreshTokenExpiresAt === undefined ? null : new Date(row.refreshTokenExpiresAt).toISOString(),
    refreshTokenExpiresInSeconds: row.refreshTokenExpiresAt === undefined ? null : seconds(row.refreshTokenExpiresAt - now),
    status,
    reason,
    scope: row.scope ?? null,
    keyId: row.keyId ?? null
  }
}

/**
 * Reads the store's grants (metadata only).
 *
 * @since 0.1.0
 * @category constructors
 */
export const inspect = (filename: string): Effect.Effect<Inventory, StoreFileError> =>
  Effect.map(listGrants(filename), (rows) => {
    const now = Date.now()
    return { store: filename, grants: rows.map((row) => summarize(row, now)) }
  })

const statusText = (grant: GrantSummary): string => {
  switch (grant.status) {
    case "active":
      return "active"
    case "needs_reauth":
      return `needs re-auth (${grant.reason})`
    case "refresh_in_flight":
      return `refresh in flight (${grant.reason})`
    case "refresh_interrupted":
      return `refresh interrupted (${grant.reason})`
  }
}

const relative = (seconds: number): string =>
  seconds > 0 ? `expires ${formatIn(seconds * 1000)}` : seconds === 0 ? "expires now" : `expired ${formatAgo(-seconds * 1000)}`

/**
 * The inventory as a table.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (inventory: Inventory): string => {
  if (inventory.grants.length === 0) return `${inventory.store}: no grants stored`
  const encrypted = inventory.grants.some((g) => g.keyId !== null)
  const header = ["KEY", "VERSION", "ACCESS TOKEN", "REFRESH TOKEN", "STATUS", ...(encrypted ? ["KEY ID"] : []), "SCOPE"]
  const rows = inventory.grants.map((g) => [
    g.key,
    String(g.version),
    relative(g.expiresInSeconds),
    g.refreshTokenExpiresInSeconds === null ? "expiry unknown" : relative(g.refreshTokenExpiresInSeconds),
    statusText(g),
    ...(encrypted ? [g.keyId ?? "-"] : []),
    g.scope ?? "-"
  ])
  const notes: Array<string> = []
  if (inventory.grants.some((g) => g.status === "refresh_interrupted")) {
    notes.push(
      "refresh interrupted: a process died mid-refresh. The next use retries with the stored refresh token; if the server had already rotated it, the grant is marked rotation_lost and needs re-auth."
    )
  }
  if (inventory.grants.some((g) => g.status === "needs_reauth")) {
    notes.push("needs re-auth: the user must authorize again; `renew doctor --store … --key …` shows the details.")
  }
  return `${inventory.store}: ${inventory.grants.length} grant${inventory.grants.length === 1 ? "" : "s"}\n\n${
    table([header, ...rows])
  }${notes.length > 0 ? `\n\n${notes.join("\n")}` : ""}`
}
