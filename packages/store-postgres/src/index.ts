/**
 * @since 0.1.0
 */
export * as PgTokenStore from "./PgTokenStore.js"
