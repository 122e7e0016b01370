/**
 * TokenStore throughput: get, compare-and-set, and a whole refresh under the grant's lease (Refresher.refresh against
 * a loopback token endpoint), for the SQLite store (plain and encrypted) against the in-memory store in the same run.
 *
 * npx tsx bench/store.ts
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Refresher, Token, TokenEndpoint, TokenStore } from "../packages/core/src/index.js"
import { SqliteTokenStore } from "../packages/store-sqlite/src/index.js"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET, fmt, isMain, median } from "./support.js"

const RUNS = 3
const GETS = 20_000
const WRITES = 3_000
const REFRESHES = 300

type Open = Effect.Effect<TokenStore.TokenStore["Type"], unknown, import("effect/Scope").Scope>

const stores: ReadonlyArray<{ readonly name: string; readonly open: () => Open }> = [
  { name: "memory", open: () => TokenStore.makeMemory },
  {
    name: "sqlite",
    open: () => SqliteTokenStore.make({ filename: Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-bench-")), "g.db") })
  },
  {
    name: "sqlite + AES-256-GCM",
    open: () =>
      SqliteTokenStore.make({
        filename: Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-bench-")), "g.db"),
        encryption: { keys: { k1: Redacted.make(Buffer.alloc(32, 7).toString("base64")) }, activeKeyId: "k1" }
      })
  }
]

const grant = (refreshToken: string) =>
  Either.getOrThrow(Token.grantFromInput(
    { accessToken: "at_bench", refreshToken, expiresIn: 3600 },
    { now: Date.now(), defaultLifetime: "1 hour", version: 0 }
  ))

/** Operations per second of `n` sequential runs of `op`. */
const opsPerSecond = (n: number, op: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const started = performance.now()
    for (let i = 0; i < n; i++) yield* op(i)
    return n / ((performance.now() - started) / 1000)
  })

export interface StoreResult {
  readonly name: string
  readonly getPerSecond: number
  readonly casPerSecond: number
  readonly refreshPerSecond: number
}

export const runStore = async (): Promise<ReadonlyArray<StoreResult>> => {
  const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  try {
    const results: Array<StoreResult> = []
    for (const { name, open } of stores) {
      const samples = { get: [] as Array<number>, cas: [] as Array<number>, refresh: [] as Array<number> }
      for (let run = 0; run <= RUNS; run++) {
        const measured = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
          const store = yield* open()
          const key = `bench-${run}`
          const first = yield* store.compareAndSet(key, undefined, grant(endpoint.mintRefreshToken()))
          const get = yield* opsPerSecond(GETS, () => Effect.map(store.get(key), Option.getOrThrow))
          let version = first.version
          const cas = yield* opsPerSecond(WRITES, () =>
            Effect.map(store.compareAndSet(key, version, grant("rt_x")), (written) => void (version = written.version)))
          // A real refresh each time: lease, re-read, intent write, HTTP, compare-and-set, release.
          const engine = yield* Layer.build(Refresher.layer({ forcedRefreshCooldown: 0 }).pipe(
            Layer.provide(TokenEndpoint.layer({
              url: endpoint.url,
              clientId: CLIENT_ID,
              clientSecret: Redacted.make(CLIENT_SECRET),
              timeout: "5 seconds"
            })),
            Layer.provide(NodeHttpClient.layerUndici),
            Layer.provide(Layer.succeed(TokenStore.TokenStore, store))
          ))
          const refresher = (yield* Effect.provide(Refresher.Refresher, engine))
          yield* refresher.setGrant("refreshed", { accessToken: "at", refreshToken: endpoint.mintRefreshToken() })
          const refresh = yield* opsPerSecond(REFRESHES, () => refresher.refresh("refreshed"))
          return { get, cas, refresh }
        })))
        if (run === 0) continue // warm-up
        samples.get.push(measured.get)
        samples.cas.push(measured.cas)
        samples.refresh.push(measured.refresh)
      }
      results.push({
        name,
        getPerSecond: median(samples.get),
        casPerSecond: median(samples.cas),
        refreshPerSecond: median(samples.refresh)
      })
    }
    return results
  } finally {
    await endpoint.close()
  }
}

export const printStore = (results: ReadonlyArray<StoreResult>) => {
  const memory = results.find((r) => r.name === "memory")!
  console.log(`stores: ops/s (median of ${RUNS} runs after a warm-up), ratio = store / memory`)
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(22)} get ${fmt(r.getPerSecond, 0).padStart(8)}/s (${fmt(r.getPerSecond / memory.getPerSecond, 3)}×)` +
        `  cas ${fmt(r.casPerSecond, 0).padStart(7)}/s (${fmt(r.casPerSecond / memory.casPerSecond, 3)}×)` +
        `  refresh under lease ${fmt(r.refreshPerSecond, 0).padStart(5)}/s (${
          fmt(r.refreshPerSecond / memory.refreshPerSecond, 2)
        }×)`
    )
  }
}

if (isMain(import.meta.url)) {
  runStore().then(printStore).catch((error: unknown) => {
    console.error("benchmark crashed:", error)
    process.exitCode = 1
  })
}
