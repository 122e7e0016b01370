/**
 * A separate process using one SQLite file, for the multi-process and crash tests.
 *
 * env: TOKEN_URL, DB_FILE, KEY, CALLERS (concurrent getAccessToken calls), LEASE_TTL_MS, CRASH_AT
 *   The per-attempt timeout is generous (30 s): on a loaded machine a loopback answer can take far longer than usual,
 *   and a timed-out attempt has an unknown outcome, so its refresh token is not presented again.
 *   CRASH_AT = lease-taken | outcome-received | committed : SIGKILL itself at that point of a refresh.
 * It waits for a line on stdin before calling, so the parent can start all children at once, and prints one JSON
 * line: { served, failed, tags, tokenHashes } — hashes, never tokens.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Refresher, Telemetry, TokenEndpoint, TokenStore } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Effect, Layer, Redacted } from "effect"
import * as Readline from "node:readline"

const env = process.env
const crashAt = env.CRASH_AT
const leaseTtlMillis = Number(env.LEASE_TTL_MS ?? 30_000)
const die = () => process.kill(process.pid, "SIGKILL")

// Crash points are injected around the real store, so the engine runs exactly as in production.
const store = Layer.effect(
  TokenStore.TokenStore,
  Effect.map(
    SqliteTokenStore.make({ filename: env.DB_FILE!, leaseTtl: leaseTtlMillis }),
    (inner) =>
      TokenStore.TokenStore.of({
        ...inner,
        withLock: (key, body) =>
          inner.withLock(key, (lease) => crashAt === "lease-taken" ? Effect.zipRight(Effect.sync(die), body(lease)) : body(lease)),
        compareAndSet: (key, version, grant) => {
          // The outcome write is the one without an intent.
          const outcome = grant.refreshStartedAt === undefined && grant.reauthRequired === undefined
          if (outcome && crashAt === "outcome-received") return Effect.sync(die) as never
          return inner.compareAndSet(key, version, grant).pipe(
            Effect.tap(() => (outcome && crashAt === "committed" ? Effect.sync(die) : Effect.void))
          )
        }
      })
  )
).pipe(Layer.provide(Layer.scope))

const engine = Refresher.layer().pipe(
  Layer.provide(TokenEndpoint.layer({
    url: env.TOKEN_URL!,
    clientId: "renew-test-client",
    clientSecret: Redacted.make("CANARY-client-secret-7f3a9c2e"),
    timeout: "30 seconds"
  })),
  Layer.provide(NodeHttpClient.layerUndici),
  Layer.provide(store)
)

const main = Effect.gen(function*() {
  const refresher = yield* Refresher.Refresher
  process.stdout.write("ready\n")
  yield* Effect.async<void>((resume) => {
    Readline.createInterface({ input: process.stdin }).once("line", () => resume(Effect.void))
  })
  const results = yield* Effect.all(
    Array.from({ length: Number(env.CALLERS ?? 1) }, () => Effect.either(refresher.getAccessToken(env.KEY!))),
    { concurrency: "unbounded" }
  )
  const tags: Record<string, number> = {}
  const hashes = new Set<string>()
  for (const result of results) {
    if (result._tag === "Right") hashes.add(Telemetry.hashKey(Redacted.value(result.right)))
    else tags[result.left._tag] = (tags[result.left._tag] ?? 0) + 1
  }
  process.stdout.write(
    JSON.stringify({
      served: results.filter((r) => r._tag === "Right").length,
      failed: results.filter((r) => r._tag === "Left").length,
      tags,
      tokenHashes: [...hashes]
    }) + "\n"
  )
})

Effect.runPromise(Effect.scoped(Effect.provide(main, engine))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`child failed: ${String(error)}\n`)
    process.exit(1)
  }
)
