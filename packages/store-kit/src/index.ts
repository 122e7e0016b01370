/**
 * @since 0.1.0
 */
export * as Cipher from "./Cipher.js"
export * as Lease from "./Lease.js"
export * as GrantRecord from "./GrantRecord.js"
export * as StoreOptions from "./StoreOptions.js"
export * as Scheduling from "./Scheduling.js"
