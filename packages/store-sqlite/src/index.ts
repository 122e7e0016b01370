/**
 * @since 0.1.0
 */
export * as SqliteTokenStore from "./SqliteTokenStore.js"
