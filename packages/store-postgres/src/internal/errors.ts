/**
 * What the PostgreSQL store says when the database fails: advice, never row data or credentials.
 *
 * @internal
 */

/** @internal host:port/database of the URL, never its credentials. */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname || "localhost"}:${parsed.port || "5432"}${parsed.pathname || ""}`
  } catch {
    return "the configured DATABASE_URL (unparsable)"
  }
}

/** The driver error inside a SqlError (or a defect), or the value itself. */
const rootCause = (error: unknown): unknown => {
  let current = error
  for (let i = 0; i < 3; i++) {
    if (typeof current === "object" && current !== null && "cause" in current && (current as { cause: unknown }).cause) {
      current = (current as { cause: unknown }).cause
    } else break
  }
  return current
}

/** @internal Turns what pg / PostgreSQL say into advice. Never quotes row data or credentials. */
export const explain = (where: string, error: unknown): string => {
  const cause = rootCause(error)
  const code = typeof cause === "object" && cause !== null ? String((cause as { code?: unknown }).code ?? "") : ""
  const message = cause instanceof Error ? cause.message : String(cause)
  if (code === "ECONNREFUSED") {
    return `PostgreSQL at ${where} refused the connection. Check that it is running and DATABASE_URL points at it`
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `the host of ${where} does not resolve. Check DATABASE_URL`
  if (/timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(message) || code === "ETIMEDOUT") {
    return `connecting to PostgreSQL at ${where} timed out. Check that it is up, the network path, and max_connections`
  }
  if (code === "57P01" || code === "57P02" || /terminating connection/i.test(message)) {
    return `PostgreSQL at ${where} terminated the connection (restart, failover, or pg_terminate_backend). ` +
      "The pool opens a new one on the next call; a write that was in flight may or may not have been applied"
  }
  if (code === "57P03") return `PostgreSQL at ${where} is starting up or shutting down. Retry in a moment`
  if (/Connection terminated|ECONNRESET|EPIPE|Client has encountered a connection error/i.test(message) || code === "ECONNRESET" || code.startsWith("08")) {
    return `the connection to PostgreSQL at ${where} was lost. Check that it is up; the pool reconnects by itself on the next call`
  }
  if (code === "28P01" || code === "28000") {
    return `PostgreSQL at ${where} rejected the credentials. Check the user and password in DATABASE_URL (and pg_hba.conf)`
  }
  if (code === "3D000") return `the database in ${where} does not exist. Create it or fix DATABASE_URL`
  if (code === "42501") {
    return `the database user lacks a privilege (${message}). Grant USAGE and CREATE on the schema and SELECT, INSERT, UPDATE, DELETE on the renew tables`
  }
  if (code === "42P01") {
    return `a renew table is missing (${message}). Was it dropped? Restart the process so the store migrates again`
  }
  if (code === "53300") return `PostgreSQL at ${where} has no free connection slots. Lower maxConnections or put a pooler in front`
  if (code === "25006") return `PostgreSQL at ${where} is a read-only standby. Point DATABASE_URL at the primary`
  if (code === "53100") return `PostgreSQL at ${where} is out of disk space. Free space on its data volume`
  if (code === "57014") return `a statement was cancelled (statement_timeout or queryTimeout). PostgreSQL is overloaded or a row is locked`
  if (code === "40001" || code === "40P01") return `a serialization failure or deadlock. Retry`
  return `PostgreSQL at ${where} failed: ${message.split("\n")[0]!.slice(0, 200)}${code ? ` (SQLSTATE ${code})` : ""}`
}
