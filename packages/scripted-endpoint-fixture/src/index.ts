/**
 * A scripted OAuth 2.0 token endpoint on loopback, for tests and benchmarks (private).
 */
export * from "./ScriptedTokenEndpoint.js"
export * from "./Canary.js"
