/**
 * The demo's settings: command-line flags, each with an environment variable, and the chaos switches to arm at start.
 */
import * as Path from "node:path"
import { parseArgs } from "node:util"

export interface StartChaos {
  /** Extra latency on every token request, ms. */
  readonly latencyMs?: number | undefined
  /** The next N token requests get 503. */
  readonly fail503?: number | undefined
  /** The next token request gets 429 with this Retry-After, seconds. */
  readonly rateLimitSeconds?: number | undefined
  readonly revoke: boolean
  readonly rotateSecret: boolean
  readonly cutNetwork: boolean
}

export interface DemoConfig {
  /** The client service's port (0: any free port). */
  readonly port: number
  readonly dataDir: string
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlSeconds: number
  readonly intervalMillis: number
  /** Renew's skew (never more than half the token's lifetime). */
  readonly skewMillis: number
  /** Renew's minValidity: callers wait for a refresh only when the token has less than this left. */
  readonly minValidityMillis: number
  /** How often Renew's RefreshScheduler sweeps the store for due grants; undefined: no scheduler. */
  readonly sweepIntervalMillis: number | undefined
  /** How long Renew pauses the client after InvalidClient. */
  readonly invalidClientPauseMillis: number
  readonly logFormat: "story" | "logfmt"
  readonly chaos: StartChaos
}

export const usage = `Renew demo: a real authorization server, a protected API and a client service that keeps its tokens fresh.

Usage: npm start -- [options]            (or: npx tsx apps/demo/src/main.ts [options])

Options (each also read from the environment variable shown):
  --port <n>                 client service port, 0 for any free port       DEMO_PORT              (4000)
  --data-dir <dir>           where the grant (SQLite) and the authorization  DEMO_DATA_DIR          (./.data)
                             server's state are kept across restarts
  --access-token-ttl <s>     access token lifetime, seconds                  DEMO_ACCESS_TOKEN_TTL  (15)
  --refresh-token-ttl <s>    refresh token lifetime, seconds (sliding)       DEMO_REFRESH_TOKEN_TTL (3600)
  --interval <d>             time between API calls: 2s, 300ms, 1.5          DEMO_INTERVAL          (2s)
  --skew <d>                 callers refresh this long before expiry; the   DEMO_SKEW              (3s)
                             scheduler twice as long (Renew caps both at
                             half the token's lifetime)
  --min-validity <d>         callers wait for a refresh only when the token  DEMO_MIN_VALIDITY      (1s)
                             has less than this left
  --sweep-interval <d|off>   how often Renew's RefreshScheduler looks for    DEMO_SWEEP_INTERVAL    (1s)
                             due grants; off: only callers refresh
  --invalid-client-pause <d> how long Renew pauses the client after          DEMO_INVALID_CLIENT_PAUSE (5s)
                             invalid_client (Renew's default is 30s)
  --log-format story|logfmt  story: one readable line per event; logfmt:     DEMO_LOG_FORMAT        (story)
                             Effect's logfmt lines with trace ids (Otel.logger)
  -h, --help

Chaos to arm at start (the same switches are POST /admin/chaos/<switch> on the client service):
  --latency <ms>             delay every token request                       DEMO_LATENCY
  --fail-503 <n>             answer the next n token requests with 503       DEMO_FAIL_503
  --rate-limit <s>           answer the next token request with 429,         DEMO_RATE_LIMIT
                             Retry-After: <s>
  --revoke                   revoke the grant at the authorization server    DEMO_REVOKE=1
  --rotate-secret            rotate the client secret at the server          DEMO_ROTATE_SECRET=1
  --cut-network              cut the client's network to the server          DEMO_CUT_NETWORK=1

Traces: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318 for the Jaeger of
apps/demo/docker-compose.yml) and every refresh is a trace there.`

export class ConfigError extends Error {}

/** "300ms", "2s", "1.5" (seconds), "1m" → milliseconds. */
export const parseDuration = (name: string, value: string): number => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(value)
  if (match === null) throw new ConfigError(`${name}: expected a duration such as 2s, 300ms or 1.5, got ${JSON.stringify(value)}`)
  const amount = Number(match[1])
  const unit = (match[2] ?? "s").toLowerCase()
  return Math.round(unit === "ms" ? amount : unit === "m" ? amount * 60_000 : amount * 1000)
}

const parseInteger = (name: string, value: string, min: number): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name}: expected an integer >= ${min}, got ${JSON.stringify(value)}`)
  return n
}

const truthy = (value: string | undefined): boolean =>
  value !== undefined && value !== "" && !["0", "false", "no", "off"].includes(value.toLowerCase())

/** Parses the flags (winning over the environment). Returns undefined when help was asked for. */
export const parseConfig = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): DemoConfig | undefined => {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        "data-dir": { type: "string" },
        "access-token-ttl": { type: "string" },
        "refresh-token-ttl": { type: "string" },
        interval: { type: "string" },
        skew: { type: "string" },
        "sweep-interval": { type: "string" },
        "min-validity": { type: "string" },
        "invalid-client-pause": { type: "string" },
        "log-format": { type: "string" },
        latency: { type: "string" },
        "fail-503": { type: "string" },
        "rate-limit": { type: "string" },
        revoke: { type: "boolean" },
        "rotate-secret": { type: "boolean" },
        "cut-network": { type: "boolean" },
        help: { type: "boolean", short: "h" }
      }
    })
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error))
  }
  const flags = parsed.values
  if (flags.help === true) return undefined
  const pick = (flag: string | undefined, variable: string): string | undefined => {
    if (flag !== undefined) return flag
    const value = env[variable]
    return value === undefined || value.trim() === "" ? undefined : value
  }

  const port = parseInteger("--port", pick(flags.port, "DEMO_PORT") ?? "4000", 0)
  if (port > 65535) throw new ConfigError(`--port: ${port} is not a TCP port`)
  // npm runs workspace scripts in the workspace's directory; a relative path means relative to where `npm start` was
  // typed (INIT_CWD), as the user expects.
  const base = env["INIT_CWD"] ?? process.cwd()
  const dataDir = Path.resolve(base, pick(flags["data-dir"], "DEMO_DATA_DIR") ?? "./.data")
  const accessTokenTtlSeconds = parseInteger(
    "--access-token-ttl",
    pick(flags["access-token-ttl"], "DEMO_ACCESS_TOKEN_TTL") ?? "15",
    1
  )
  const refreshTokenTtlSeconds = parseInteger(
    "--refresh-token-ttl",
    pick(flags["refresh-token-ttl"], "DEMO_REFRESH_TOKEN_TTL") ?? "3600",
    1
  )
  const intervalMillis = parseDuration("--interval", pick(flags.interval, "DEMO_INTERVAL") ?? "2s")
  if (intervalMillis < 10) throw new ConfigError("--interval: must be at least 10ms")
  const skewMillis = parseDuration("--skew", pick(flags.skew, "DEMO_SKEW") ?? "3s")
  const minValidityMillis = parseDuration("--min-validity", pick(flags["min-validity"], "DEMO_MIN_VALIDITY") ?? "1s")
  const sweepValue = pick(flags["sweep-interval"], "DEMO_SWEEP_INTERVAL") ?? "1s"
  const sweepIntervalMillis = ["off", "0", "false", "no"].includes(sweepValue.trim().toLowerCase())
    ? undefined
    : parseDuration("--sweep-interval", sweepValue)
  if (sweepIntervalMillis !== undefined && sweepIntervalMillis < 10) {
    throw new ConfigError("--sweep-interval: must be at least 10ms, or off")
  }
  const invalidClientPauseMillis = parseDuration(
    "--invalid-client-pause",
    pick(flags["invalid-client-pause"], "DEMO_INVALID_CLIENT_PAUSE") ?? "5s"
  )
  const logFormat = pick(flags["log-format"], "DEMO_LOG_FORMAT") ?? "story"
  if (logFormat !== "story" && logFormat !== "logfmt") {
    throw new ConfigError(`--log-format: expected story or logfmt, got ${JSON.stringify(logFormat)}`)
  }

  const latency = pick(flags.latency, "DEMO_LATENCY")
  const fail503 = pick(flags["fail-503"], "DEMO_FAIL_503")
  const rateLimit = pick(flags["rate-limit"], "DEMO_RATE_LIMIT")
  return {
    port,
    dataDir,
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds,
    intervalMillis,
    skewMillis,
    minValidityMillis,
    sweepIntervalMillis,
    invalidClientPauseMillis,
    logFormat,
    chaos: {
      latencyMs: latency === undefined ? undefined : parseInteger("--latency", latency, 0),
      fail503: fail503 === undefined ? undefined : parseInteger("--fail-503", fail503, 1),
      rateLimitSeconds: rateLimit === undefined ? undefined : parseInteger("--rate-limit", rateLimit, 0),
      revoke: flags.revoke === true || truthy(env["DEMO_REVOKE"]),
      rotateSecret: flags["rotate-secret"] === true || truthy(env["DEMO_ROTATE_SECRET"]),
      cutNetwork: flags["cut-network"] === true || truthy(env["DEMO_CUT_NETWORK"])
    }
  }
}
