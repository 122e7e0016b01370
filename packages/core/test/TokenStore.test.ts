import { TokenStore } from "@renew/core"
import { TokenStoreSuite } from "@renew/store-testkit"
import { Effect } from "effect"

// Every open() reaches the same map, as clients of one backend do.
const shared = Effect.runSync(TokenStore.makeMemory)

TokenStoreSuite.suite("memory", { open: Effect.succeed(shared), durability: "memory" })
