/** Moved to the private package @renew/scripted-endpoint-fixture; this path is kept for files not yet updated. */
export * from "@renew/scripted-endpoint-fixture"
