/**
 * The conformance suite every TokenStore must pass: in-memory, SQLite, Redis, PostgreSQL.
 */
export * as TokenStoreSuite from "./TokenStoreSuite.js"
