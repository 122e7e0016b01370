/**
 * Shared pieces of the benchmarks: the engine wiring (the same as packages/core/test/support/harness.ts) and a few
 * statistics helpers.
 */
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer, Redacted } from "effect"
import { Refresher, TokenEndpoint, TokenStore } from "../packages/core/src/index.js"
import type { ScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"

export const CLIENT_ID = "renew-bench-client"
export const CLIENT_SECRET = "bench-client-secret"

/** Refresher over an in-memory store, talking to `endpoint` over undici. */
export const engineLayer = (endpoint: ScriptedTokenEndpoint, options?: Refresher.RefresherOptions) =>
  Refresher.layer(options).pipe(
    Layer.provide(
      TokenEndpoint.layer({ url: endpoint.url, clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET) })
    ),
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provide(TokenStore.layerMemory),
    Layer.orDie
  )

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Nearest-rank percentile (`q` in 0..1) of an ascending array. */
export const percentile = (sorted: ArrayLike<number>, q: number): number =>
  sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!

export const fmt = (value: number, digits = 1): string => value.toFixed(digits)

/** With its sign: "+3.2", "-1.0". */
export const signed = (value: number, digits = 1): string => (value >= 0 ? "+" : "") + value.toFixed(digits)

/** True when the module at `url` is the script node was started with (not imported by another one). */
export const isMain = (url: string): boolean => {
  const script = process.argv[1]
  return script !== undefined && fileURLToPath(url).replace(/\.ts$/, "") === resolve(script).replace(/\.ts$/, "")
}
