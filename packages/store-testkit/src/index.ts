/**
 * Test support shared by every TokenStore's tests (private): the conformance, lease and encryption suites, grant
 * samples and arbitraries, the engine on a scripted endpoint, and which real services (Redis, PostgreSQL) are up.
 */
export * as Engine from "./Engine.js"
export * as Grants from "./Grants.js"
export * as LeaseSuite from "./LeaseSuite.js"
export * as SchedulerSuite from "./SchedulerSuite.js"
export * as SchedulingSuite from "./SchedulingSuite.js"
export * as SealingSuite from "./SealingSuite.js"
export * as Services from "./Services.js"
export * as TokenStoreSuite from "./TokenStoreSuite.js"
