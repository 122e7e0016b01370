/**
 * One replica of a fleet, as a separate OS process, for the fleet and lease tests and bench/fleet.ts.
 *
 * Started by test/support/fleetChild.ts as `node --import tsx --import test/support/register-src.mjs test/fleet/child.ts`
 * with its configuration in the environment. It prints JSON lines on stdout ({"event": …}) and logs on stderr; it
 * prints {"event":"ready"} once its store (and engine) is open, then waits for a line "go" on stdin.
 *
 * RENEW_STORE          redis | postgres
 * RENEW_STORE_URL      the store's URL (REDIS_URL / DATABASE_URL style)
 * RENEW_NAMESPACE      the Redis key prefix, or the PostgreSQL schema
 * RENEW_LEASE_TTL_MS   lease TTL (default 5000)
 * RENEW_MODE           herd: RENEW_CALLERS concurrent getAccessToken(RENEW_KEY) through a Refresher, then a result
 *                            (served callers, token fingerprints, error tags, elapsed ms, lock sequences started)
 *                      hold: take the grant's lock, read it, wait for a line "write" on stdin, write it with
 *                            compare-and-set on the version read (access token "at_from_child"), release; each step is
 *                            an event (the test decides when the write happens, not a timer racing it)
 * RENEW_KEY            the grant key
 * RENEW_TOKEN_URL, RENEW_CLIENT_ID, RENEW_CLIENT_SECRET, RENEW_AUTH_METHOD   the token endpoint (herd)
 * RENEW_CALLERS        callers (herd, default 1000)
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Refresher, Token, TokenEndpoint, TokenStore } from "@renew/core"
import { PgTokenStore } from "@renew/store-postgres"
import { RedisTokenStore } from "@renew/store-redis"
import { Duration, Effect, Either, Layer, Logger, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import * as Readline from "node:readline"

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback
  if (value === undefined) throw new Error(`child: ${name} is not set`)
  return value
}

const emit = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + "\n")

/** Tokens are never printed: a short hash identifies them. */
export const fingerprint = (token: string): string => createHash("sha256").update(token).digest("hex").slice(0, 16)

const storeKind = env("RENEW_STORE")
const leaseTtl = Duration.millis(Number(env("RENEW_LEASE_TTL_MS", "5000")))
const url = Redacted.make(env("RENEW_STORE_URL"))
const namespace = env("RENEW_NAMESPACE")
const key = env("RENEW_KEY")

const storeLayer: Layer.Layer<TokenStore.TokenStore, unknown> = storeKind === "redis"
  ? RedisTokenStore.layer({ url, prefix: namespace, leaseTtl })
  : PgTokenStore.layer({ url, schema: namespace, leaseTtl, maxConnections: 4 })

/** Counts the lock sequences this process starts (SF-2: at most one per key, however many callers). */
let lockCalls = 0
const countingStore = Layer.effect(
  TokenStore.TokenStore,
  Effect.map(TokenStore.TokenStore, (store) => ({
    ...store,
    withLock: <A, E, R>(k: string, body: (lease: TokenStore.Lease) => Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        lockCalls++
        return store.withLock(k, body)
      })
  }))
).pipe(Layer.provide(storeLayer))

/** Lines received on stdin, and who waits for which. */
const received: Array<string> = []
const waiting = new Map<string, () => void>()
Readline.createInterface({ input: process.stdin }).on("line", (raw) => {
  const line = raw.trim()
  received.push(line)
  waiting.get(line)?.()
  waiting.delete(line)
})

/** Waits until the parent has sent `word` on a line of its own. */
const line = (word: string) =>
  Effect.async<void>((resume) => {
    if (received.includes(word)) resume(Effect.void)
    else waiting.set(word, () => resume(Effect.void))
  })

const go = line("go")

const herd = Effect.gen(function*() {
  const refresher = yield* Refresher.Refresher
  const callers = Number(env("RENEW_CALLERS", "1000"))
  emit({ event: "ready", pid: process.pid })
  yield* go
  const started = performance.now()
  const results = yield* Effect.forEach(
    Array.from({ length: callers }, (_, i) => i),
    () => Effect.either(refresher.getAccessToken(key)),
    { concurrency: "unbounded" }
  )
  const elapsedMs = performance.now() - started
  const tokens: Record<string, number> = {}
  const errors: Record<string, number> = {}
  for (const result of results) {
    if (Either.isRight(result)) {
      const id = fingerprint(Redacted.value(result.right))
      tokens[id] = (tokens[id] ?? 0) + 1
    } else {
      errors[result.left._tag] = (errors[result.left._tag] ?? 0) + 1
    }
  }
  emit({ event: "result", callers, served: results.filter(Either.isRight).length, tokens, errors, elapsedMs, lockCalls })
}).pipe(
  Effect.provide(
    Refresher.layer().pipe(
      Layer.provide(TokenEndpoint.layer({
        url: env("RENEW_TOKEN_URL", "http://127.0.0.1:1/token"),
        clientId: env("RENEW_CLIENT_ID", "renew-fleet-client"),
        clientSecret: Redacted.make(env("RENEW_CLIENT_SECRET", "renew-fleet-secret")),
        authMethod: env("RENEW_AUTH_METHOD", "client_secret_basic") as TokenEndpoint.AuthMethod
      })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provide(countingStore)
    )
  )
)

const hold = Effect.gen(function*() {
  const store = yield* TokenStore.TokenStore
  emit({ event: "ready", pid: process.pid })
  yield* go
  yield* store.withLock(
    key,
    (lease) => Effect.gen(function*() {
      emit({ event: "acquired" })
      const grant = Option.getOrThrow(yield* store.get(key))
      emit({ event: "read", version: grant.version })
      yield* line("write")
      // Fencing: what the holder knows about its lease before it writes (it writes anyway, to prove the CAS fence).
      const confirmed = yield* lease.confirm
      const written = yield* Effect.either(
        store.compareAndSet(key, grant.version, new Token.Grant({ ...grant, accessToken: Redacted.make("at_from_child") }))
      )
      emit({
        event: "write",
        confirmed,
        lost: lease.isLost(),
        outcome: Either.isRight(written) ? "written" : written.left._tag
      })
    })
  )
  emit({ event: "released" })
}).pipe(Effect.provide(storeLayer))

const program = env("RENEW_MODE") === "hold" ? hold : herd

Effect.runPromise(
  program.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))))
).then(
  () => process.exit(0),
  (error: unknown) => {
    emit({ event: "crashed", error: String(error) })
    process.exit(1)
  }
)
