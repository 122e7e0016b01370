/**
 * `renew doctor`: why does refreshing fail? A fixed sequence of checks, from "is the URL sane" down to "does a real
 * refresh work", each PASS / WARN / FAIL / SKIP with the evidence it saw and the remedy for what it found. A check
 * that cannot run because an earlier one failed is SKIP, "blocked by <check>".
 *
 * Nothing here prints a secret: client secrets and tokens stay `Redacted`, the refresh token is shown only as its
 * `Telemetry.hashKey`, and every evidence and remedy string is scrubbed of the known secret values before it leaves.
 *
 * @since 0.1.0
 */
import type { RefreshError, TokenEndpoint } from "@renew/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Redacted from "effect/Redacted"
import * as ClockSkew from "./internal/checks/clockSkew.js"
import * as Config from "./internal/checks/config.js"
import * as Discovery from "./internal/checks/discovery.js"
import * as Network from "./internal/checks/network.js"
import * as Pipeline from "./internal/checks/pipeline.js"
import * as Refresh from "./internal/checks/refresh.js"
import * as RefreshToken from "./internal/checks/refreshToken.js"
import * as Remedies from "./internal/checks/remedies.js"
import * as ScopeCheck from "./internal/checks/scope.js"
import * as TokenEndpointChecks from "./internal/checks/tokenEndpoint.js"
import { layerHttpClient, readCaFile } from "./internal/http.js"
import { scrubSecrets } from "./internal/text.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Status = "PASS" | "WARN" | "FAIL" | "SKIP"

/**
 * The checks, in the order they run and print.
 *
 * @since 0.1.0
 * @category models
 */
export const CheckNames = [
  "config",
  "dns",
  "tcp",
  "tls",
  "discovery",
  "clock-skew",
  "client-auth",
  "token-endpoint",
  "refresh-token",
  "scope",
  "refresh"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export type CheckName = typeof CheckNames[number]

/**
 * @since 0.1.0
 * @category models
 */
export interface Check {
  readonly name: CheckName
  readonly status: Status
  /** What the check saw. Never a secret; the refresh token appears only as its hash. */
  readonly evidence: string
  /** What to do about it; `null` when there is nothing to do. */
  readonly remedy: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  /** The worst status: FAIL, else WARN, else PASS. */
  readonly status: "PASS" | "WARN" | "FAIL"
  /** 0: every check PASS or SKIP; 1: some WARN, no FAIL; 2: some FAIL. */
  readonly exitCode: 0 | 1 | 2
  readonly pass: number
  readonly warn: number
  readonly fail: number
  readonly skip: number
  /** The first failing check, if any: where to start. */
  readonly firstFailure: CheckName | null
  readonly tokenEndpoint: string | null
  readonly clientId: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly checks: ReadonlyArray<Check>
  readonly summary: Summary
}

/**
 * Where a secret came from, for the evidence (never its value).
 *
 * @since 0.1.0
 * @category models
 */
export type SecretSource = string

/**
 * @since 0.1.0
 * @category models
 */
export interface DoctorOptions {
  readonly issuer?: string | undefined
  readonly tokenEndpoint?: string | undefined
  readonly introspectionEndpoint?: string | undefined
  readonly clientId: string
  readonly clientSecret?: { readonly value: Redacted.Redacted<string>; readonly source: SecretSource } | undefined
  readonly authMethod?: TokenEndpoint.AuthMethod | undefined
  /** A refresh token given directly (flag, environment or stdin). */
  readonly refreshToken?: { readonly value: Redacted.Redacted<string>; readonly source: SecretSource } | undefined
  /** A refresh token read from a `@renew/store-sqlite` file; `--refresh` writes the rotated grant back. */
  readonly store?: {
    readonly filename: string
    readonly key: string
    readonly encryptionKey?: Redacted.Redacted<string> | undefined
    readonly encryptionKeyId?: string | undefined
  } | undefined
  readonly scope?: string | undefined
  /** Do a real refresh (rotates the refresh token on most servers). */
  readonly refresh?: boolean | undefined
  /** Budget of each network step. Default 10 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** A PEM file of extra CA certificates to trust (a private CA). */
  readonly caFile?: string | undefined
  /** Problems found while gathering the options (conflicting flags, unreadable stdin), reported by `config`. */
  readonly inputProblems?: ReadonlyArray<string> | undefined
}

/**
 * Access tokens shorter-lived than this make refresh traffic dominate: with Renew's skew (60 s, at most half the
 * lifetime) a token is refreshed every half-lifetime or more often.
 *
 * @since 0.1.0
 * @category thresholds
 */
export const shortAccessTokenSeconds = Refresh.shortAccessTokenSeconds

/**
 * @since 0.1.0
 * @category thresholds
 */
export const clockSkewWarnSeconds = ClockSkew.clockSkewWarnSeconds

/**
 * @since 0.1.0
 * @category thresholds
 */
export const clockSkewFailSeconds = ClockSkew.clockSkewFailSeconds

/**
 * @since 0.1.0
 * @category thresholds
 */
export const certificateWarnDays = Network.certificateWarnDays

/**
 * The remedy for a refresh failure, by its tag.
 *
 * @since 0.1.0
 * @category remedies
 */
export const remedyFor: (error: RefreshError.RefreshError | RefreshError.ConfigurationError) => string =
  Remedies.remedyFor

const DEFAULT_TIMEOUT = Duration.seconds(10)

/**
 * Runs every check and returns the report. Never fails: every problem is a check's verdict.
 *
 * @since 0.1.0
 * @category constructors
 */
export const diagnose = (options: DoctorOptions): Effect.Effect<Report> =>
  Effect.suspend(() => {
    // Read once: the TLS probes and the HTTP client trust the same extra CAs; config reports an unreadable file.
    const ca = options.caFile !== undefined ? readCaFile(options.caFile) : undefined
    return runChecks(options, ca).pipe(
      Effect.provide(layerHttpClient(ca !== undefined ? Either.getOrUndefined(ca) : undefined)),
      Effect.scoped
    )
  })

/**
 * The checks in order, each given what the earlier ones established. Whether a check runs at all is the pipeline's
 * business: one that depends on a failed (or itself blocked) check is SKIP, "blocked by <check>".
 */
const runChecks = (options: DoctorOptions, ca: Either.Either<ReadonlyArray<string>, string> | undefined) =>
  Effect.gen(function*() {
    const timeoutMillis = Duration.toMillis(options.timeout ?? DEFAULT_TIMEOUT)
    const pipeline = Pipeline.make()

    const config = yield* pipeline.first("config", Config.check(options, timeoutMillis, ca))
    const { credentials, stored, refreshToken } = config
    const probing: Network.ProbeContext = { timeoutMillis, extraCa: config.extraCa }

    // Every host given on the command line is probed; one discovered later is probed by the discovery check.
    const hosts = yield* pipeline.runWith(
      "dns",
      ["config"],
      () => Network.dns({ ...probing, urls: [options.tokenEndpoint, options.issuer, options.introspectionEndpoint] }),
      []
    )
    yield* pipeline.run("tcp", ["dns"], () => Network.tcp(hosts))
    yield* pipeline.run("tls", ["tcp"], () => Network.tls(hosts))

    const flags = { tokenEndpoint: options.tokenEndpoint, introspectionEndpoint: options.introspectionEndpoint }
    const endpoints = yield* pipeline.runWith(
      "discovery",
      ["tls"],
      () =>
        Discovery.check({
          ...probing,
          ...flags,
          issuer: options.issuer,
          clientId: options.clientId,
          authMethod: credentials.authMethod,
          authMethodIsDefault: options.authMethod === undefined,
          probed: hosts.map((host) => host.target)
        }),
      Discovery.fromFlags(flags)
    )

    const endpointContext: TokenEndpointChecks.EndpointContext = {
      credentials,
      scope: options.scope,
      timeoutMillis,
      introspectionUrl: endpoints.introspectionUrl
    }
    const endpoint = yield* TokenEndpointChecks.makeEndpoint(endpoints.tokenEndpointUrl, endpointContext)
    // Without a token endpoint (no flag, no usable metadata) discovery has failed or is blocked: the checks that
    // talk to the endpoint are blocked by it, so they never run without one.
    const endpointDeps: ReadonlyArray<CheckName> = endpoint === undefined ? ["tls", "discovery"] : ["tls"]

    yield* pipeline.run("clock-skew", ["tls"], () => ClockSkew.check(endpoint, endpoints.discovery?.lastAnswer))
    yield* pipeline.run("client-auth", endpointDeps, () => TokenEndpointChecks.clientAuth(endpoint!, endpointContext))
    yield* pipeline.run("token-endpoint", endpointDeps, () => TokenEndpointChecks.tokenEndpoint(endpoint!))

    const grantedScope = yield* pipeline.runWith(
      "refresh-token",
      ["client-auth"],
      () =>
        RefreshToken.check({
          stored,
          refreshToken,
          introspectionUrl: endpoints.introspectionUrl,
          credentials,
          timeoutMillis
        }),
      undefined
    )
    yield* pipeline.run(
      "scope",
      ["client-auth", "refresh-token"],
      () => ScopeCheck.check({ requested: options.scope, introspected: grantedScope, stored: stored?.grant.scope })
    )

    // A real refresh needs everything before it to hold; not requested, it only says how to ask for it.
    const obtained = yield* pipeline.runWith(
      "refresh",
      options.refresh === true ? [...endpointDeps, "client-auth", "token-endpoint", "refresh-token", "scope"] : [],
      () => Refresh.check({ requested: options.refresh === true, refreshToken, endpoint, stored }),
      []
    )

    const secrets = [...config.secrets, ...obtained]
    const checks = pipeline.checks().map((check): Check => ({
      name: check.name,
      status: check.status,
      evidence: scrubSecrets(check.evidence, secrets),
      remedy: check.remedy === null ? null : scrubSecrets(check.remedy, secrets)
    }))
    return { checks, summary: summarize(checks, endpoints.tokenEndpointUrl ?? null, options.clientId) }
  })

/**
 * @since 0.1.0
 * @category constructors
 */
export const summarize = (checks: ReadonlyArray<Check>, tokenEndpoint: string | null, clientId: string): Summary => {
  const count = (status: Status) => checks.filter((c) => c.status === status).length
  const fail = count("FAIL")
  const warn = count("WARN")
  return {
    status: fail > 0 ? "FAIL" : warn > 0 ? "WARN" : "PASS",
    exitCode: fail > 0 ? 2 : warn > 0 ? 1 : 0,
    pass: count("PASS"),
    warn,
    fail,
    skip: count("SKIP"),
    firstFailure: checks.find((c) => c.status === "FAIL")?.name ?? null,
    tokenEndpoint,
    clientId
  }
}

const wrap = (text: string, width: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/)) {
    if (word === "") continue
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  if (line !== "") lines.push(line)
  return lines.length === 0 ? [""] : lines
}

/**
 * The report as a readable table: one block per check (status, name, evidence, then the remedy for anything not
 * PASS), and a summary line with the exit code.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (report: Report, options: { readonly width?: number } = {}): string => {
  const nameWidth = Math.max(...CheckNames.map((n) => n.length))
  const indent = " ".repeat(4 + 2 + nameWidth + 2)
  const width = Math.max(40, (options.width ?? 120) - indent.length)
  const out: Array<string> = [
    `renew doctor: client ${JSON.stringify(report.summary.clientId)}${
      report.summary.tokenEndpoint !== null ? ` at ${report.summary.tokenEndpoint}` : ""
    }`,
    ""
  ]
  for (const check of report.checks) {
    const [first, ...rest] = wrap(check.evidence, width)
    out.push(`${check.status}  ${check.name.padEnd(nameWidth)}  ${first}`)
    for (const line of rest) out.push(`${indent}${line}`)
    // A blocked check's remedy ("fix X first") adds nothing to the table; the JSON keeps it.
    if (check.remedy !== null && check.status !== "PASS" && !check.evidence.startsWith("blocked by ")) {
      const label = check.status === "SKIP" ? "hint: " : "remedy: "
      const [head, ...tail] = wrap(check.remedy, width - label.length)
      out.push(`${indent}${label}${head}`)
      for (const line of tail) out.push(`${indent}${" ".repeat(label.length)}${line}`)
    }
  }
  const s = report.summary
  out.push(
    "",
    `${s.status}: ${s.pass} pass, ${s.warn} warn, ${s.fail} fail, ${s.skip} skip; exit code ${s.exitCode}${
      s.firstFailure !== null ? ` (start with ${s.firstFailure})` : ""
    }`
  )
  return out.join("\n")
}
