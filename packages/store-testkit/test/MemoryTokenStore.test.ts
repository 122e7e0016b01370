/**
 * The memory store (in @renew/core) against the conformance suite. It runs here, in the suite's own package, rather
 * than in core's tests: core cannot depend on store-testkit, which depends on core.
 */
import { TokenStore } from "@renew/core"
import { SchedulerSuite, SchedulingSuite, TokenStoreSuite } from "@renew/store-testkit"
import { Effect } from "effect"

// Every open() reaches the same map, as clients of one backend do.
const shared = Effect.runSync(TokenStore.makeMemory)

TokenStoreSuite.suite("memory", { open: Effect.succeed(shared), durability: "memory", lease: undefined })

// The due index is global to a backend: each scheduling test gets a map of its own.
SchedulingSuite.suite("memory", { backend: Effect.map(TokenStore.makeMemory, Effect.succeed) })
SchedulerSuite.suite("memory", { backend: Effect.map(TokenStore.makeMemory, Effect.succeed), grants: 10_000 })
