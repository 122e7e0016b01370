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
import * as HttpClient from "@effect/platform/HttpClient"
import { Refresher, RefreshError, Telemetry, type Token, TokenEndpoint, TokenStore } from "@renew/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { type Discovery, discover } from "./internal/discovery.js"
import {
  type Answer,
  authenticatedPost,
  type ClientCredentials,
  exchange,
  jsonObject,
  layerHttpClient,
  readCa
} from "./internal/http.js"
import * as Probes from "./internal/probes.js"
import { openStore } from "./internal/storeFile.js"
import { formatAgo, formatDuration, formatIn, scrubSecrets } from "./internal/text.js"

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
export const shortAccessTokenSeconds = 60

/**
 * @since 0.1.0
 * @category thresholds
 */
export const clockSkewWarnSeconds = 30

/**
 * @since 0.1.0
 * @category thresholds
 */
export const clockSkewFailSeconds = 300

/**
 * @since 0.1.0
 * @category thresholds
 */
export const certificateWarnDays = 14

/** Remedies shared by several checks, so each cause reads the same wherever it is found. */
const Remedies = {
  reauthorize:
    "The user must authorize again (run your authorization-code flow) and the new grant must be stored; no retry can revive this refresh token. If this keeps happening, check the server's refresh-token lifetime / idle timeout, and that only one process (or one shared store) refreshes this grant: with rotation, a refresh token is single-use.",
  clientCredentials:
    "Check --client-id (is this client registered on this server? an unknown client id gets the same answer as a wrong secret) and the client secret (rotated? copied with a trailing newline?), and the auth method (--auth-method client_secret_basic or client_secret_post, as registered for the client). The user's grants are untouched: fix the credentials, not the grants.",
  scope:
    "Request the granted scope or a subset of it (--scope, or the `scope` option of your TokenEndpoint), or leave scope out so the server keeps the granted one. A wider scope needs a new authorization by the user that asks for it."
} as const

const DEFAULT_TIMEOUT = Duration.seconds(10)

interface Target {
  readonly url: URL
  readonly port: number
}

interface Probe {
  readonly result: Either.Either<Token.TokenResponse, RefreshError.RefreshError>
  /** The raw HTTP answer's status and headers, when one arrived. */
  readonly http: { readonly status: number; readonly headers: Readonly<Record<string, string | undefined>> } | undefined
  readonly sentAt: number
  readonly receivedAt: number
}

const oauthError = (error: RefreshError.RefreshError): string => {
  const parts: Array<string> = []
  if ("status" in error && typeof error.status === "number") parts.push(`HTTP ${error.status}`)
  if ("oauthError" in error && error.oauthError !== undefined) parts.push(error.oauthError)
  if ("errorDescription" in error && error.errorDescription !== undefined) {
    parts.push(JSON.stringify(error.errorDescription))
  }
  return parts.join(" ")
}

/**
 * The remedy for a refresh failure, by its tag.
 *
 * @since 0.1.0
 * @category remedies
 */
export const remedyFor = (error: RefreshError.RefreshError | RefreshError.ConfigurationError): string => {
  switch (error._tag) {
    case "InvalidGrant":
      return Remedies.reauthorize
    case "InvalidClient":
      return Remedies.clientCredentials
    case "UnauthorizedClient":
      return "Enable the refresh_token grant type for this client on the authorization server (and issue refresh tokens to it, e.g. with the offline_access scope)."
    case "InvalidScope":
      return Remedies.scope
    case "InvalidRequest":
    case "UnsupportedGrantType":
      return "A configuration or server problem: check the token endpoint URL and the client's auth method; the server's description says what it did not accept."
    case "RateLimited":
      return "The server is throttling this client: Renew waits for Retry-After. Look for refresh loops (many processes without a shared store, tokens refreshed on every call) and reduce refresh traffic."
    case "ServerError":
      return "The authorization server (or a proxy in front of it) is failing. Renew retries 5xx with backoff and serves still-valid tokens meanwhile; if it persists, check the server's status and logs."
    case "NetworkError":
      return "Check DNS, routing, firewalls and TLS to the token endpoint host (the dns, tcp and tls checks above narrow it down)."
    case "Timeout":
      return "The server did not answer in time: check its health, or raise the per-attempt timeout (--timeout here, `timeout` in TokenEndpoint options)."
    case "MalformedResponse":
      return "The server answered 2xx without a valid token response: check the token endpoint URL (a login page or proxy answers HTML) and the server's logs."
    case "NoRefreshToken":
      return "Authorize again asking for offline access (e.g. the offline_access scope, or access_type=offline on Google) so the server issues a refresh token."
    case "GrantNotFound":
      return "Check --key and --store; `renew inspect --store <file>` lists the stored keys."
    case "StoreError":
    case "LockTimeout":
    case "StaleWrite":
      return "A storage problem, not an authorization one: see the message; `renew inspect --store <file>` shows the grant's state."
    case "ConfigurationError":
      return "Fix the option named above."
  }
}

const defaultPort = (url: URL) => url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80

const dnsRemedy = (host: string, code: string): string =>
  code === "ENOTFOUND" || code === "ENODATA"
    ? `The name ${host} does not exist in DNS. Check the URL for typos, and that this machine uses the DNS that knows it (VPN, split-horizon DNS, /etc/resolv.conf, /etc/hosts); \`getent hosts ${host}\` must print an address.`
    : `The DNS resolver did not answer for ${host} (${code}): check that this machine can reach its DNS server (/etc/resolv.conf), then try again.`

const tcpRemedy = (target: Target, code: string): string =>
  code === "ECONNREFUSED"
    ? `Nothing accepts connections on ${target.url.hostname}:${target.port}. Check the port in the URL and that the authorization server is running and listening on that address; a firewall may also reject the connection.`
    : code === "ETIMEDOUT"
    ? `Connections to ${target.url.hostname}:${target.port} get no answer: a firewall or security group is dropping them, or the host is down. If you need a proxy to reach it, note that Node does not use HTTPS_PROXY by itself.`
    : `Check routing and firewalls between this machine and ${target.url.hostname}:${target.port} (${code}).`

const tlsRemedy = (code: string, hostname: string): string => {
  switch (code) {
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
      return "The server's certificate is self-signed or signed by a CA that Node does not trust. Serve a certificate from a trusted CA, or make Node trust your private CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem for your service (--ca-file for renew). Do not set NODE_TLS_REJECT_UNAUTHORIZED=0: it disables the check that keeps tokens from being sent to an impostor."
    case "CERT_HAS_EXPIRED":
      return "The server's certificate has expired: it must be renewed on the server. If it looks valid from elsewhere, check this machine's clock."
    case "CERT_NOT_YET_VALID":
      return "The certificate is not valid yet: this machine's clock is probably behind. Synchronise it (NTP)."
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `The certificate does not cover ${hostname}. Use the host name the certificate is issued for in the URL, or fix the certificate's subjectAltName.`
    default:
      return `The TLS handshake with ${hostname} failed (${code}). If the port serves plain http, use an http:// URL (loopback only) or the server's https port; otherwise check the server's TLS configuration.`
  }
}

/**
 * Runs every check and returns the report. Never fails: every problem is a check's verdict.
 *
 * @since 0.1.0
 * @category constructors
 */
export const diagnose = (options: DoctorOptions): Effect.Effect<Report> =>
  Effect.gen(function*() {
    const timeoutMillis = Duration.toMillis(options.timeout ?? DEFAULT_TIMEOUT)
    const checks: Array<Check> = []
    /** For each FAIL (itself) and each blocked SKIP (its root cause): what blocks the checks that depend on it. */
    const blockedBy = new Map<CheckName, CheckName>()
    const record = (check: Check) => {
      checks.push(check)
      if (check.status === "FAIL") blockedBy.set(check.name, check.name)
    }
    const blocker = (deps: ReadonlyArray<CheckName>): CheckName | undefined => {
      for (const dep of deps) {
        const root = blockedBy.get(dep)
        if (root !== undefined) return root
      }
      return undefined
    }
    const gate = <R>(
      name: CheckName,
      deps: ReadonlyArray<CheckName>,
      body: Effect.Effect<Omit<Check, "name">, never, R>
    ): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        const root = blocker(deps)
        if (root !== undefined) {
          checks.push({ name, status: "SKIP", evidence: `blocked by ${root}`, remedy: `Fix ${root} first.` })
          blockedBy.set(name, root)
          return Effect.void
        }
        return Effect.map(body, (check) => record({ name, ...check }))
      })
    const pass = (evidence: string): Omit<Check, "name"> => ({ status: "PASS", evidence, remedy: null })
    const skip = (evidence: string, remedy: string | null = null): Omit<Check, "name"> => ({
      status: "SKIP",
      evidence,
      remedy
    })

    // -------------------------------------------------------------------------------------------------------------
    // config: the options make sense, the URLs are https (or loopback http), the grant can be read
    // -------------------------------------------------------------------------------------------------------------
    const problems: Array<{ readonly problem: string; readonly remedy: string }> = (options.inputProblems ?? []).map((
      problem
    ) => ({
      problem,
      remedy: "Fix the inputs named above (see `renew doctor --help`); a secret must not carry surrounding whitespace or a newline."
    }))
    const primaryUrl = options.tokenEndpoint ?? options.issuer
    const clientSecret = options.clientSecret?.value
    const authMethod: TokenEndpoint.AuthMethod = options.authMethod ??
      (clientSecret !== undefined ? "client_secret_basic" : "none")
    const credentials: ClientCredentials = { clientId: options.clientId, clientSecret, authMethod }
    const validate = (option: string, url: string, introspectionUrl?: string) =>
      Either.match(
        TokenEndpoint.validateOptions({
          url,
          clientId: options.clientId,
          clientSecret,
          authMethod,
          introspectionUrl,
          timeout: timeoutMillis
        }),
        {
          onLeft: (error) => {
            const renamed = error.option === "url" ? option : error.option === "introspectionUrl"
              ? "--introspection-endpoint"
              : error.option === "clientSecret"
              ? "client secret"
              : error.option === "clientId"
              ? "--client-id"
              : error.option
            problems.push({
              problem: `${renamed}: ${error.detail}`,
              remedy: error.option === "clientSecret"
                ? "Give the client secret (--client-secret-stdin, RENEW_CLIENT_SECRET or --client-secret), or --auth-method none for a public client."
                : error.option === "url" || error.option === "introspectionUrl"
                ? "Use the server's https:// URL; plain http is only accepted on loopback hosts (127.0.0.1, ::1, localhost)."
                : remedyFor(error)
            })
          },
          onRight: () => undefined
        }
      )
    if (primaryUrl === undefined) {
      problems.push({
        problem: "neither --issuer nor --token-endpoint given",
        remedy: "Pass --issuer <url> (the server's metadata gives the endpoints) or --token-endpoint <url>."
      })
    } else {
      validate(options.tokenEndpoint !== undefined ? "--token-endpoint" : "--issuer", primaryUrl, options.introspectionEndpoint)
      if (options.issuer !== undefined && options.tokenEndpoint !== undefined) validate("--issuer", options.issuer)
    }
    if (options.refreshToken !== undefined && options.store !== undefined) {
      problems.push({
        problem: "both a refresh token and --store/--key given",
        remedy: "Give the refresh token one way only: --store/--key, or --refresh-token-stdin / RENEW_REFRESH_TOKEN / --refresh-token."
      })
    }
    let extraCa: ReadonlyArray<string> | undefined
    if (options.caFile !== undefined) {
      try {
        extraCa = [Fs.readFileSync(options.caFile, "utf8")]
      } catch (error) {
        problems.push({
          problem: `--ca-file ${options.caFile}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`,
          remedy: "Point --ca-file at a readable PEM file with your CA certificate(s)."
        })
      }
    }

    let grant: Token.Grant | undefined
    let store: TokenStore.TokenStore["Type"] | undefined
    if (options.store !== undefined && problems.length === 0) {
      const storeOptions = options.store
      const opened = yield* Effect.either(openStore(storeOptions))
      if (Either.isLeft(opened)) {
        problems.push({
          problem: opened.left.message,
          remedy: "Check --store (and --encryption-key for an encrypted store)."
        })
      } else {
        store = opened.right
        const found = yield* Effect.either(store.get(storeOptions.key))
        if (Either.isLeft(found)) {
          problems.push({
            problem: found.left.message,
            remedy: /encrypt|decrypt/.test(found.left.message)
              ? "Give the store's encryption key: RENEW_ENCRYPTION_KEY or --encryption-key (base64; the key id defaults to the one recorded on the grant, else --encryption-key-id)."
              : remedyFor(found.left)
          })
        } else if (Option.isNone(found.right)) {
          problems.push({
            problem: `no grant is stored under key ${JSON.stringify(storeOptions.key)} in ${storeOptions.filename}`,
            remedy: "Check --key; `renew inspect --store <file>` lists the stored keys. A missing grant means the user never authorized (or it was removed): authorize first."
          })
        } else {
          grant = found.right.value
        }
      }
    }
    const refreshToken = options.refreshToken?.value ?? grant?.refreshToken
    const secrets: Array<string> = []
    if (clientSecret !== undefined) secrets.push(Redacted.value(clientSecret))
    if (options.refreshToken !== undefined) secrets.push(Redacted.value(options.refreshToken.value))
    if (grant?.refreshToken !== undefined) secrets.push(Redacted.value(grant.refreshToken))
    if (grant?.accessToken !== undefined) secrets.push(Redacted.value(grant.accessToken))
    if (options.store?.encryptionKey !== undefined) secrets.push(Redacted.value(options.store.encryptionKey))

    if (problems.length > 0) {
      record({
        name: "config",
        status: "FAIL",
        evidence: problems.map((p) => p.problem).join("; "),
        remedy: [...new Set(problems.map((p) => p.remedy))].join(" ")
      })
    } else {
      const parts = [
        options.tokenEndpoint !== undefined
          ? `token endpoint ${options.tokenEndpoint}`
          : `issuer ${options.issuer} (token endpoint from its metadata)`,
        `client ${JSON.stringify(options.clientId)} with ${authMethod}${
          options.clientSecret !== undefined ? ` (secret from ${options.clientSecret.source})` : " (no secret)"
        }`,
        options.refreshToken !== undefined
          ? `refresh token from ${options.refreshToken.source}`
          : grant !== undefined
          ? `grant ${JSON.stringify(options.store!.key)} version ${grant.version} from ${options.store!.filename}`
          : "no refresh token (token checks will be skipped)"
      ]
      if (primaryUrl !== undefined && new URL(primaryUrl).protocol === "http:") {
        parts.push("plain http is accepted because the host is loopback")
      }
      record({ name: "config", ...pass(parts.join("; ")) })
    }

    // Every host given on the command line is probed; one discovered later is probed by the discovery check.
    const targets: Array<Target> = []
    if (!blockedBy.has("config")) {
      for (const raw of [options.tokenEndpoint, options.issuer, options.introspectionEndpoint]) {
        if (raw === undefined) continue
        const url = new URL(raw)
        const port = defaultPort(url)
        if (targets.some((t) => t.url.hostname === url.hostname && t.port === port)) continue
        targets.push({ url, port })
      }
    }

    // -------------------------------------------------------------------------------------------------------------
    // dns, tcp, tls
    // -------------------------------------------------------------------------------------------------------------
    const probeHost = (target: Target) =>
      Effect.gen(function*() {
        const host = target.url.hostname
        const dns = yield* Probes.resolve(host, timeoutMillis)
        if (dns._tag === "Failed") {
          return {
            failed: "dns" as const,
            evidence: `${host} did not resolve: ${dns.code}`,
            remedy: dnsRemedy(host, dns.code)
          }
        }
        const addresses = dns._tag === "Literal" ? [dns.address] : dns.addresses
        const dnsEvidence = dns._tag === "Literal"
          ? `${host} is an IP address (no lookup needed)`
          : `${host} → ${addresses.join(", ")} (${dns.millis} ms)`
        const tcp = yield* Probes.connect(addresses, target.port, timeoutMillis)
        if (tcp._tag === "Failed") {
          const code = tcp.attempts[0]?.code ?? "ECONNREFUSED"
          return {
            failed: "tcp" as const,
            dnsEvidence,
            evidence: `cannot connect to ${host}:${target.port}: ${
              tcp.attempts.map((a) => `${a.address} ${a.code}`).join(", ")
            }`,
            remedy: tcpRemedy(target, code)
          }
        }
        const tcpEvidence = `connected to ${tcp.address}:${target.port} (${tcp.millis} ms)`
        if (target.url.protocol !== "https:") {
          return { failed: undefined, dnsEvidence, tcpEvidence, tls: undefined }
        }
        const tls = yield* Probes.handshake({
          address: tcp.address,
          port: target.port,
          hostname: host,
          ca: extraCa,
          timeoutMillis
        })
        return { failed: undefined, dnsEvidence, tcpEvidence, tls }
      })
    type HostProbe = Effect.Effect.Success<ReturnType<typeof probeHost>>
    const hostProbes: Array<{ readonly target: Target; readonly probe: HostProbe }> = []
    if (!blockedBy.has("config")) {
      for (const target of targets) hostProbes.push({ target, probe: yield* probeHost(target) })
    }

    yield* gate(
      "dns",
      ["config"],
      Effect.sync(() => {
        const failed = hostProbes.filter((h) => h.probe.failed === "dns")
        if (failed.length > 0) {
          return {
            status: "FAIL" as const,
            evidence: failed.map((h) => h.probe.evidence).join("; "),
            remedy: failed.map((h) => h.probe.remedy).join(" ")
          }
        }
        return pass(hostProbes.map((h) => "dnsEvidence" in h.probe ? h.probe.dnsEvidence : "").join("; "))
      })
    )
    yield* gate(
      "tcp",
      ["dns"],
      Effect.sync(() => {
        const failed = hostProbes.filter((h) => h.probe.failed === "tcp")
        if (failed.length > 0) {
          return {
            status: "FAIL" as const,
            evidence: failed.map((h) => h.probe.evidence).join("; "),
            remedy: failed.map((h) => h.probe.remedy).join(" ")
          }
        }
        return pass(hostProbes.map((h) => "tcpEvidence" in h.probe ? h.probe.tcpEvidence : "").join("; "))
      })
    )
    const describeTls = (target: Target, tls: Probes.TlsResult, now: number) => {
      const host = target.url.hostname
      if (tls._tag === "Failed") {
        return {
          status: "FAIL" as const,
          evidence: `TLS handshake with ${host}:${target.port} failed: ${tls.code} (${tls.message})`,
          remedy: tlsRemedy(tls.code, host)
        }
      }
      const cert = tls.certificate
      const certText = cert === undefined
        ? "no certificate details"
        : `certificate ${cert.subject}, issued by ${cert.issuer}, valid until ${new Date(cert.validTo).toISOString()} (${
          Math.floor((cert.validTo - now) / 86_400_000)
        } days left)`
      if (!tls.authorized) {
        const code = tls.authorizationError ?? "UNTRUSTED_CERTIFICATE"
        return {
          status: "FAIL" as const,
          evidence: `${host}:${target.port} presented a certificate Node does not accept: ${code}; ${certText}`,
          remedy: tlsRemedy(code, host)
        }
      }
      if (cert !== undefined && cert.validTo - now < certificateWarnDays * 86_400_000) {
        return {
          status: "WARN" as const,
          evidence: `${tls.protocol ?? "TLS"} with ${host}:${target.port}; ${certText}`,
          remedy:
            `Renew the server certificate before ${new Date(cert.validTo).toISOString()}: once it expires every refresh fails with CERT_HAS_EXPIRED.`
        }
      }
      return pass(`${tls.protocol ?? "TLS"} with ${host}:${target.port} in ${tls.millis} ms; ${certText}`)
    }
    yield* gate(
      "tls",
      ["tcp"],
      Effect.sync(() => {
        const now = Date.now()
        const withTls = hostProbes.flatMap((h) => h.probe.failed === undefined && h.probe.tls !== undefined
          ? [{ target: h.target, tls: h.probe.tls }]
          : []
        )
        if (withTls.length === 0) {
          return skip(
            `${hostProbes.map((h) => `${h.target.url.hostname}:${h.target.port}`).join(", ")} is plain http on loopback: no TLS to check`
          )
        }
        const verdicts = withTls.map(({ target, tls }) => describeTls(target, tls, now))
        const worst = verdicts.find((v) => v.status === "FAIL") ?? verdicts.find((v) => v.status === "WARN")
        if (worst !== undefined) {
          return {
            status: worst.status,
            evidence: verdicts.map((v) => v.evidence).join("; "),
            remedy: verdicts.flatMap((v) => v.remedy === null ? [] : [v.remedy]).join(" ")
          }
        }
        return pass(verdicts.map((v) => v.evidence).join("; "))
      })
    )

    // -------------------------------------------------------------------------------------------------------------
    // discovery
    // -------------------------------------------------------------------------------------------------------------
    let tokenEndpointUrl = options.tokenEndpoint
    let introspectionUrl = options.introspectionEndpoint
    let discovery: Discovery | undefined
    yield* gate(
      "discovery",
      ["tls"],
      Effect.gen(function*() {
        if (options.issuer === undefined) {
          return skip(
            "no --issuer: the server's metadata was not checked",
            "Pass --issuer to check that the server supports the refresh_token grant and your auth method."
          )
        }
        discovery = yield* discover(options.issuer, timeoutMillis)
        const tried = discovery.attempts.map((a) => `${a.url} → ${a.outcome}`).join("; ")
        if (discovery.found === undefined) {
          return {
            status: "FAIL" as const,
            evidence: `no authorization server metadata: ${tried}`,
            remedy:
              "Check --issuer: it is the server's issuer identifier (the `iss` of its tokens, e.g. https://auth.example.com/realms/main), without /.well-known. Or pass --token-endpoint (and --introspection-endpoint) directly."
          }
        }
        const { metadata, url } = discovery.found
        const notes: Array<string> = [`metadata from ${url}`]
        const warnings: Array<{ note: string; remedy: string }> = []
        const failures: Array<{ note: string; remedy: string }> = []
        const normalise = (s: string) => s.replace(/\/+$/, "")
        if (metadata.issuer !== undefined && normalise(metadata.issuer) !== normalise(options.issuer)) {
          warnings.push({
            note: `the metadata's issuer is ${metadata.issuer}, not ${options.issuer}`,
            remedy: "Use the issuer exactly as the metadata states it (scheme, host, port and path): RFC 8414 clients must reject a mismatch."
          })
        }
        if (metadata.tokenEndpoint === undefined) {
          failures.push({
            note: "the metadata has no token_endpoint",
            remedy: "Pass --token-endpoint; the server's metadata does not say where it is."
          })
        } else {
          notes.push(`token_endpoint ${metadata.tokenEndpoint}`)
          if (options.tokenEndpoint !== undefined && options.tokenEndpoint !== metadata.tokenEndpoint) {
            warnings.push({
              note: `--token-endpoint ${options.tokenEndpoint} differs from the metadata's token_endpoint`,
              remedy: `Use the token_endpoint the server advertises (${metadata.tokenEndpoint}) unless you know why not.`
            })
          }
          const valid = TokenEndpoint.validateOptions({ url: metadata.tokenEndpoint, clientId: options.clientId })
          if (Either.isLeft(valid)) {
            failures.push({
              note: `the advertised token_endpoint is unusable: ${valid.left.detail}`,
              remedy: "The server advertises a token endpoint Renew refuses (plain http on a non-loopback host?): fix the server's issuer/base URL configuration."
            })
          } else {
            tokenEndpointUrl ??= metadata.tokenEndpoint
          }
        }
        if (metadata.grantTypesSupported === undefined) {
          notes.push("grant_types_supported not advertised")
        } else if (metadata.grantTypesSupported.includes("refresh_token")) {
          notes.push("refresh_token is in grant_types_supported")
        } else {
          // Metadata is advisory: the token-endpoint probe below says what the server really does.
          warnings.push({
            note: `refresh_token is not in grant_types_supported [${metadata.grantTypesSupported.join(", ")}]`,
            remedy: "The server does not advertise the refresh_token grant: enable it on the authorization server (and for this client)."
          })
        }
        const methods = metadata.authMethodsSupported
        if (methods === undefined) {
          notes.push("token_endpoint_auth_methods_supported not advertised (default client_secret_basic)")
          if (authMethod !== "client_secret_basic") {
            warnings.push({
              note: `${authMethod} is not advertised (only the default client_secret_basic is implied)`,
              remedy: "If client authentication fails, try --auth-method client_secret_basic."
            })
          }
        } else if (methods.includes(authMethod)) {
          notes.push(`${authMethod} is in token_endpoint_auth_methods_supported`)
        } else {
          warnings.push({
            note: `${authMethod}${options.authMethod === undefined ? " (the default)" : ""} is not in token_endpoint_auth_methods_supported [${
              methods.join(", ")
            }]`,
            remedy: `Use an auth method the server supports: --auth-method ${
              methods.find((m) => m === "client_secret_basic" || m === "client_secret_post" || m === "none") ?? methods[0]
            } (and register the client with it).`
          })
        }
        if (metadata.introspectionEndpoint !== undefined) {
          notes.push(`introspection_endpoint ${metadata.introspectionEndpoint}`)
          introspectionUrl ??= metadata.introspectionEndpoint
        }
        // A token endpoint on a host the earlier checks did not see gets the same probes here.
        if (tokenEndpointUrl !== undefined) {
          const url = new URL(tokenEndpointUrl)
          const port = defaultPort(url)
          if (!targets.some((t) => t.url.hostname === url.hostname && t.port === port)) {
            const target: Target = { url, port }
            const probe = yield* probeHost(target)
            if (probe.failed !== undefined) {
              failures.push({ note: `token endpoint host: ${probe.evidence}`, remedy: probe.remedy })
            } else if (probe.tls !== undefined) {
              const verdict = describeTls(target, probe.tls, Date.now())
              if (verdict.status === "FAIL") failures.push({ note: verdict.evidence, remedy: verdict.remedy ?? "" })
              else notes.push(`token endpoint host reachable (${verdict.evidence})`)
            } else {
              notes.push(`token endpoint host reachable (${probe.tcpEvidence})`)
            }
          }
        }
        if (failures.length > 0) {
          return {
            status: "FAIL" as const,
            evidence: [...failures.map((f) => f.note), ...warnings.map((w) => w.note), ...notes].join("; "),
            remedy: [...failures, ...warnings].map((f) => f.remedy).join(" ")
          }
        }
        if (warnings.length > 0) {
          return {
            status: "WARN" as const,
            evidence: [...warnings.map((w) => w.note), ...notes].join("; "),
            remedy: warnings.map((w) => w.remedy).join(" ")
          }
        }
        return pass(notes.join("; "))
      })
    )
    // Without a token endpoint (no flag, no metadata) the checks that talk to it are blocked by discovery.
    const endpointDeps: ReadonlyArray<CheckName> = tokenEndpointUrl === undefined
      ? ["tls", "discovery"]
      : ["tls"]

    // The one request to the token endpoint that the probing checks share: a refresh_token grant with a made-up
    // token. It consumes nothing; its answer says whether the client authenticates and whether the server answers.
    const endpointOptions: TokenEndpoint.TokenEndpointOptions | undefined = tokenEndpointUrl === undefined
      ? undefined
      : {
        url: tokenEndpointUrl,
        clientId: options.clientId,
        clientSecret,
        authMethod,
        scope: options.scope,
        timeout: timeoutMillis,
        introspectionUrl
      }
    const probeToken = Redacted.make(`renew-doctor-probe-${Crypto.randomBytes(12).toString("hex")}`)
    const grantProbe: Effect.Effect<Probe, never, HttpClient.HttpClient> = Effect.gen(function*() {
      const seen: { http?: Probe["http"] } = {}
      const client = (yield* HttpClient.HttpClient).pipe(
        HttpClient.tap((response) =>
          Effect.sync(() => void (seen.http = { status: response.status, headers: response.headers }))
        )
      )
      const sentAt = Date.now()
      const result = yield* TokenEndpoint.make({ ...endpointOptions!, scope: undefined, introspectionUrl: undefined }).pipe(
        // Validated by config (flags) or discovery (metadata) before any probe runs.
        Effect.orDie,
        Effect.flatMap((endpoint) => endpoint.refresh({ refreshToken: probeToken })),
        Effect.provideService(HttpClient.HttpClient, client),
        Effect.either
      )
      return { result, http: seen.http, sentAt, receivedAt: Date.now() }
    })
    const probe = yield* Effect.cached(grantProbe)

    // -------------------------------------------------------------------------------------------------------------
    // clock-skew
    // -------------------------------------------------------------------------------------------------------------
    yield* gate(
      "clock-skew",
      ["tls"],
      Effect.gen(function*() {
        let sample: { readonly date: string; readonly sentAt: number; readonly receivedAt: number; readonly from: string } |
          undefined
        if (tokenEndpointUrl !== undefined) {
          const answer = yield* probe
          const date = answer.http?.headers["date"]
          if (date !== undefined) {
            sample = { date, sentAt: answer.sentAt, receivedAt: answer.receivedAt, from: "the token endpoint" }
          }
        }
        const last: Answer | undefined = discovery?.lastAnswer
        if (sample === undefined && last?.headers["date"] !== undefined) {
          sample = { date: last.headers["date"], sentAt: last.sentAt, receivedAt: last.receivedAt, from: "the metadata URL" }
        }
        if (sample === undefined) {
          return skip("no HTTP answer with a Date header to compare clocks with")
        }
        const serverMillis = Date.parse(sample.date)
        if (Number.isNaN(serverMillis)) return skip(`the server's Date header is not a date: ${JSON.stringify(sample.date)}`)
        // Date has one-second resolution (truncated): the server's time was somewhere in the following second.
        const localMillis = (sample.sentAt + sample.receivedAt) / 2
        const skewSeconds = Math.round((serverMillis + 500 - localMillis) / 1000)
        const direction = skewSeconds > 0 ? "ahead of" : "behind"
        // The estimate is good to about half a second either way: a one-second difference is noise.
        const evidence = Math.abs(skewSeconds) <= 1
          ? `the server's clock (Date from ${sample.from}: ${sample.date}) agrees with this machine's to within a second`
          : `the server's clock is ${formatDuration(Math.abs(skewSeconds) * 1000)} ${direction} this machine's (Date from ${sample.from}: ${sample.date}; local ${
            new Date(localMillis).toUTCString()
          })`
        const remedy =
          "Synchronise the clocks with NTP (`timedatectl set-ntp true`, chrony) on this machine, or on the server if this one is right. Skew shifts every absolute time: token `exp`/`iat` checks on the server and resource servers, refresh-token expiry, JWT client assertions; tokens look expired early (or valid too long)."
        if (Math.abs(skewSeconds) > clockSkewFailSeconds) return { status: "FAIL" as const, evidence, remedy }
        if (Math.abs(skewSeconds) > clockSkewWarnSeconds) return { status: "WARN" as const, evidence, remedy }
        return pass(evidence)
      })
    )

    // -------------------------------------------------------------------------------------------------------------
    // client-auth and token-endpoint: from the probe (and from introspection of a made-up token, when possible)
    // -------------------------------------------------------------------------------------------------------------
    yield* gate(
      "client-auth",
      endpointDeps,
      Effect.gen(function*() {
        const answer = yield* probe
        let viaIntrospection: { readonly accepted: boolean; readonly detail: string } | undefined
        if (introspectionUrl !== undefined) {
          const result = yield* exchange(
            authenticatedPost(introspectionUrl, { token: Redacted.value(probeToken), token_type_hint: "refresh_token" }, credentials),
            timeoutMillis
          )
          if (Either.isRight(result)) {
            const json = jsonObject(result.right.body)
            if (result.right.status === 200 && typeof json?.active === "boolean") {
              viaIntrospection = { accepted: true, detail: "the introspection endpoint accepted the client's credentials (HTTP 200)" }
            } else {
              const error = typeof json?.error === "string" ? ` ${json.error}` : ""
              const description = typeof json?.error_description === "string"
                ? ` ${JSON.stringify(json.error_description)}`
                : ""
              const detail = `HTTP ${result.right.status}${error}${description}`
              if (result.right.status === 401 || json?.error === "invalid_client") {
                viaIntrospection = { accepted: false, detail: `the introspection endpoint rejected the client's credentials: ${detail}` }
              }
            }
          }
        }
        const result = answer.result
        if (Either.isLeft(result)) {
          const error = result.left
          switch (error._tag) {
            case "InvalidGrant":
            case "InvalidScope":
              return pass(
                `the token endpoint authenticated the client: a made-up refresh token got ${oauthError(error)} (not invalid_client)${
                  viaIntrospection !== undefined
                    ? `; ${viaIntrospection.detail}${viaIntrospection.accepted ? "" : " (this client may not be allowed to introspect)"}`
                    : ""
                }`
              )
            case "InvalidClient":
              return {
                status: "FAIL" as const,
                evidence: `the token endpoint rejected the client credentials: ${oauthError(error)}${
                  viaIntrospection !== undefined ? `; ${viaIntrospection.detail}` : ""
                } (client ${JSON.stringify(options.clientId)}, ${authMethod})`,
                remedy: Remedies.clientCredentials
              }
            case "UnauthorizedClient":
              return {
                status: "FAIL" as const,
                evidence: `the client authenticated but may not use the refresh_token grant: ${oauthError(error)}`,
                remedy: remedyFor(error)
              }
          }
        } else {
          return pass("the token endpoint authenticated the client (and even accepted a made-up refresh token!)")
        }
        // The token endpoint gave no verdict on the client (5xx, timeout, …): introspection may still have one.
        if (viaIntrospection !== undefined) {
          return viaIntrospection.accepted
            ? pass(`${viaIntrospection.detail}; the token endpoint gave no verdict (see token-endpoint)`)
            : { status: "FAIL" as const, evidence: viaIntrospection.detail, remedy: Remedies.clientCredentials }
        }
        return skip(
          `inconclusive: the token endpoint did not give an OAuth answer about the client (${result.left._tag}; see token-endpoint)`,
          "Fix token-endpoint first, then run renew doctor again."
        )
      })
    )

    yield* gate(
      "token-endpoint",
      endpointDeps,
      Effect.gen(function*() {
        const answer = yield* probe
        const millis = answer.receivedAt - answer.sentAt
        const result = answer.result
        if (Either.isRight(result)) {
          return {
            status: "WARN" as const,
            evidence: `the token endpoint issued tokens for a made-up refresh token (HTTP ${answer.http?.status ?? 200})`,
            remedy: "The server does not validate refresh tokens: report it to the server's operators."
          }
        }
        const error = result.left
        switch (error._tag) {
          case "InvalidGrant":
          case "InvalidClient":
          case "UnauthorizedClient":
          case "InvalidScope":
            return pass(`${tokenEndpointUrl} answered ${oauthError(error)} in ${millis} ms: a well-formed OAuth error`)
          case "ServerError":
            return {
              status: "FAIL" as const,
              evidence: `server error: ${tokenEndpointUrl} answered ${oauthError(error)}${
                error.retryAfterMillis !== undefined ? ` (Retry-After ${formatDuration(error.retryAfterMillis)})` : ""
              }${error.bodyExcerpt !== undefined ? `; body ${JSON.stringify(error.bodyExcerpt)}` : ""}`,
              remedy: remedyFor(error)
            }
          case "RateLimited":
            return {
              status: "WARN" as const,
              evidence: `rate limited: ${tokenEndpointUrl} answered ${oauthError(error)}${
                error.retryAfterMillis !== undefined ? ` (Retry-After ${formatDuration(error.retryAfterMillis)})` : ""
              }`,
              remedy: remedyFor(error)
            }
          case "InvalidRequest":
          case "UnsupportedGrantType": {
            const status = "status" in error ? error.status : undefined
            return {
              status: "FAIL" as const,
              evidence: `${tokenEndpointUrl} refused the refresh request: ${oauthError(error)}`,
              remedy: status === 404 || status === 405
                ? `HTTP ${status}: this URL is not the token endpoint. Check --token-endpoint (or the issuer's metadata).`
                : remedyFor(error)
            }
          }
          case "NetworkError":
            return {
              status: "FAIL" as const,
              evidence: `the request to ${tokenEndpointUrl} failed: ${error.detail}`,
              remedy: remedyFor(error)
            }
          case "Timeout":
            return {
              status: "FAIL" as const,
              evidence: `${tokenEndpointUrl} did not answer within ${formatDuration(error.timeoutMillis)}`,
              remedy: remedyFor(error)
            }
          case "MalformedResponse":
            return {
              status: "FAIL" as const,
              evidence: `${tokenEndpointUrl} answered HTTP ${error.status} but not as a token endpoint: ${error.detail}`,
              remedy: remedyFor(error)
            }
          default:
            return { status: "FAIL" as const, evidence: error.message, remedy: remedyFor(error) }
        }
      })
    )

    // -------------------------------------------------------------------------------------------------------------
    // refresh-token: its state by introspection (and what the store knows)
    // -------------------------------------------------------------------------------------------------------------
    let grantedScope: { readonly scope: string; readonly from: string } | undefined
    yield* gate(
      "refresh-token",
      ["client-auth"],
      Effect.gen(function*() {
        const now = Date.now()
        if (grant !== undefined && grant.reauthRequired !== undefined) {
          const why = {
            invalid_grant: "the server answered invalid_grant",
            expired: "the refresh token expired",
            revoked: "the refresh token was revoked",
            unknown: "the server rejected the refresh token",
            rotation_lost: "a rotated refresh token was lost (a process died after the server rotated it, before storing it)"
          }[grant.reauthRequired]
          return {
            status: "FAIL" as const,
            evidence: `the store marks grant ${JSON.stringify(options.store!.key)} as needing re-authorization (${grant.reauthRequired}: ${why})`,
            remedy: Remedies.reauthorize
          }
        }
        if (grant !== undefined && grant.refreshToken === undefined) {
          return {
            status: "FAIL" as const,
            evidence: `grant ${JSON.stringify(options.store!.key)} has no refresh token`,
            remedy: remedyFor(new RefreshError.NoRefreshToken())
          }
        }
        if (refreshToken === undefined) {
          return skip(
            "no refresh token given",
            "Pass it with --refresh-token-stdin, RENEW_REFRESH_TOKEN or --refresh-token, or --store <file> --key <key>, to check its state."
          )
        }
        const label = `refresh token #${Telemetry.hashKey(Redacted.value(refreshToken))}`
        const knownExpiry = grant?.refreshTokenExpiresAt
        const expiredByRecord = knownExpiry !== undefined && knownExpiry <= now
          ? {
            status: "FAIL" as const,
            evidence: `${label} expired ${formatAgo(now - knownExpiry)} (at ${new Date(knownExpiry).toISOString()}, as recorded in the store)`,
            remedy: Remedies.reauthorize
          }
          : undefined
        if (introspectionUrl === undefined) {
          if (expiredByRecord !== undefined) return expiredByRecord
          return skip(
            `${label}: no introspection endpoint, so its state is unknown until a refresh${
              knownExpiry !== undefined ? ` (the store records its expiry ${formatIn(knownExpiry - now)})` : ""
            }`,
            "Pass --introspection-endpoint (or --issuer, if the metadata lists one) to check it without using it, or --refresh to try it."
          )
        }
        const result = yield* exchange(
          authenticatedPost(introspectionUrl, { token: Redacted.value(refreshToken), token_type_hint: "refresh_token" }, credentials),
          timeoutMillis
        )
        if (Either.isLeft(result)) {
          return expiredByRecord ?? skip(`${label}: the introspection endpoint did not answer: ${result.left.detail}`)
        }
        const json = jsonObject(result.right.body)
        if (result.right.status !== 200 || typeof json?.active !== "boolean") {
          if (expiredByRecord !== undefined) return expiredByRecord
          return skip(
            `${label}: the introspection endpoint gave no verdict (HTTP ${result.right.status}${
              typeof json?.error === "string" ? ` ${json.error}` : ""
            })`,
            "The client may not be allowed to introspect; --refresh tells the token's state by using it."
          )
        }
        const exp = typeof json.exp === "number" ? json.exp * 1000 : undefined
        if (!json.active) {
          const expiry = exp ?? knownExpiry
          const startedAt = grant?.refreshStartedAt
          const reason = startedAt !== undefined
            ? `probably rotated by a refresh that never stored its result: the store records a refresh started ${
              formatAgo(now - startedAt)
            } that did not finish (a process died mid-refresh; Renew's recovery marks such a grant rotation_lost)`
            : expiry !== undefined && expiry <= now
            ? `expired ${formatAgo(now - expiry)} (at ${new Date(expiry).toISOString()}${
              exp === undefined ? ", as recorded in the store" : ""
            })`
            : expiry !== undefined
            ? `revoked (or already used after a rotation): its expiry ${new Date(expiry).toISOString()} is still ahead`
            : "expired or revoked (or already used after a rotation); the server does not say which, and its expiry is not known"
          return {
            status: "FAIL" as const,
            evidence: `${label} is inactive: ${reason}`,
            remedy: Remedies.reauthorize
          }
        }
        const clientId = typeof json.client_id === "string" ? json.client_id : undefined
        if (clientId !== undefined && clientId !== options.clientId) {
          return {
            status: "FAIL" as const,
            evidence: `${label} is active but was issued to client ${JSON.stringify(clientId)}, not ${JSON.stringify(options.clientId)}`,
            remedy: `A refresh token only works for the client it was issued to: use --client-id ${clientId} (and its secret), or have the user authorize this client.`
          }
        }
        const tokenType = typeof json.token_type === "string" ? json.token_type : undefined
        if (tokenType !== undefined && tokenType.toLowerCase() !== "refresh_token") {
          return {
            status: "FAIL" as const,
            evidence: `${label} is an active ${tokenType} token, not a refresh token`,
            remedy: "An access token was given where the refresh token belongs: store the token response's refresh_token."
          }
        }
        if (typeof json.scope === "string") grantedScope = { scope: json.scope, from: "introspection" }
        return pass(
          `${label} is active${exp !== undefined ? `, expires ${formatIn(exp - now)} (${new Date(exp).toISOString()})` : ""}${
            clientId !== undefined ? `, client ${JSON.stringify(clientId)}` : ""
          }${typeof json.scope === "string" ? `, scope ${JSON.stringify(json.scope)}` : ""}`
        )
      })
    )

    // -------------------------------------------------------------------------------------------------------------
    // scope
    // -------------------------------------------------------------------------------------------------------------
    yield* gate(
      "scope",
      ["client-auth", "refresh-token"],
      Effect.sync(() => {
        if (options.scope === undefined) {
          return skip("no --scope given: refreshes do not ask for a scope, so the server keeps the granted one")
        }
        const granted = grantedScope ?? (grant?.scope !== undefined ? { scope: grant.scope, from: "the store" } : undefined)
        if (granted === undefined) {
          return skip("the granted scope is unknown (no introspection answer with a scope, no scope in the store)")
        }
        const grantedSet = new Set(granted.scope.split(/\s+/).filter((s) => s !== ""))
        const requested = options.scope.split(/\s+/).filter((s) => s !== "")
        const missing = requested.filter((s) => !grantedSet.has(s))
        if (missing.length > 0) {
          return {
            status: "FAIL" as const,
            evidence: `requested scope ${JSON.stringify(options.scope)} is wider than the granted ${JSON.stringify(granted.scope)} (from ${granted.from}): ${
              missing.join(", ")
            } not granted; a refresh would fail with invalid_scope`,
            remedy: Remedies.scope
          }
        }
        return pass(`requested scope ${JSON.stringify(options.scope)} is within the granted ${JSON.stringify(granted.scope)} (from ${granted.from})`)
      })
    )

    // -------------------------------------------------------------------------------------------------------------
    // refresh: the real thing, on request
    // -------------------------------------------------------------------------------------------------------------
    yield* gate(
      "refresh",
      options.refresh === true ? [...endpointDeps, "client-auth", "token-endpoint", "refresh-token", "scope"] : [],
      Effect.gen(function*() {
        if (options.refresh !== true) {
          return skip(
            "not requested",
            "--refresh does a real refresh to show rotation and lifetimes; it uses up the refresh token (with --store/--key the new grant is written back)."
          )
        }
        if (refreshToken === undefined || endpointOptions === undefined) return skip("no refresh token to refresh with")
        const endpoint = yield* TokenEndpoint.make(endpointOptions).pipe(Effect.orDie)
        const captured: { response?: Token.TokenResponse } = {}
        const capturing = TokenEndpoint.TokenEndpoint.of({
          ...endpoint,
          refresh: (request) =>
            Effect.tap(endpoint.refresh(request), (response) => Effect.sync(() => void (captured.response = response)))
        })
        const started = Date.now()
        let stored: Token.Grant | undefined
        let failure: RefreshError.RefreshError | undefined
        if (store !== undefined && options.store !== undefined) {
          const refresher = yield* Refresher.make({ forcedRefreshCooldown: 0, retry: { maxAttempts: 1 } }).pipe(
            Effect.provideService(TokenStore.TokenStore, store),
            Effect.provideService(TokenEndpoint.TokenEndpoint, capturing),
            Effect.either
          )
          if (Either.isLeft(refresher)) {
            return {
              status: "FAIL" as const,
              evidence: `the refresh was not attempted: ${refresher.left.message}`,
              remedy: "Lower --timeout: one attempt plus persisting must fit in the store's lease."
            }
          }
          const result = yield* Effect.either(refresher.right.refresh(options.store.key))
          if (Either.isLeft(result)) failure = result.left
          else stored = result.right
        } else {
          const result = yield* Effect.either(capturing.refresh({ refreshToken }))
          if (Either.isLeft(result)) failure = result.left
        }
        const millis = Date.now() - started
        const response = captured.response
        if (response !== undefined) {
          secrets.push(Redacted.value(response.access_token))
          if (response.refresh_token !== undefined) secrets.push(Redacted.value(response.refresh_token))
        }
        if (stored?.accessToken !== undefined) secrets.push(Redacted.value(stored.accessToken))
        if (stored?.refreshToken !== undefined) secrets.push(Redacted.value(stored.refreshToken))
        if (failure !== undefined || response === undefined) {
          const error = failure!
          return {
            status: "FAIL" as const,
            evidence: `the refresh failed after ${millis} ms: ${error._tag}: ${error.message}`,
            remedy: remedyFor(error)
          }
        }
        const notes: Array<string> = [`refreshed in ${millis} ms`]
        const warnings: Array<string> = []
        const remedies: Array<string> = []
        const newRefreshToken = response.refresh_token
        const rotated = newRefreshToken !== undefined && Redacted.value(newRefreshToken) !== Redacted.value(refreshToken)
        if (rotated) {
          notes.push("the server ROTATED the refresh token (the one used is now invalid; a reuse would revoke the grant)")
        } else if (newRefreshToken !== undefined) {
          notes.push("the server did not rotate the refresh token (it echoed the same one back)")
        } else {
          notes.push("the server did not rotate the refresh token (no refresh_token in the response: the current one stays valid)")
        }
        if (stored !== undefined) {
          notes.push(`the new grant was stored back as version ${stored.version} of ${JSON.stringify(options.store!.key)} in ${options.store!.filename}`)
        } else if (rotated) {
          warnings.push("the refresh token you supplied is now used up, and the new one was NOT saved (renew never prints tokens)")
          remedies.push(
            "Re-authorize to get a new grant for your service, and next time run --refresh with --store/--key so the rotated grant is written back."
          )
        }
        if (response.expires_in === undefined) {
          warnings.push("the response has no expires_in: Renew assumes a 1 hour lifetime (defaultLifetime)")
          remedies.push("Set Refresher's defaultLifetime to the server's real access-token lifetime, or configure the server to send expires_in.")
        } else {
          notes.push(`access tokens live ${formatDuration(response.expires_in * 1000)} (expires_in ${response.expires_in})`)
          if (response.expires_in < shortAccessTokenSeconds) {
            warnings.push(
              `the access-token lifetime (${response.expires_in} s) is under ${shortAccessTokenSeconds} s: every grant is refreshed at least every ${
                Math.max(1, Math.floor(response.expires_in / 2))
              } s, so refresh traffic dominates`
            )
            remedies.push(
              "Raise the access-token lifetime on the authorization server (minutes, not seconds), or expect one refresh per grant per half-lifetime and size the server's rate limits for it."
            )
          }
        }
        const newToken = newRefreshToken ?? refreshToken
        const refreshExpiresAt = response.refresh_expires_in !== undefined && response.refresh_expires_in > 0
          ? { at: Date.now() + response.refresh_expires_in * 1000, from: "refresh_expires_in" }
          : stored?.refreshTokenExpiresAt !== undefined
          ? { at: stored.refreshTokenExpiresAt, from: "introspection" }
          : yield* Effect.map(
            endpoint.introspect(newToken),
            Option.match({
              onNone: () => undefined,
              onSome: (verdict) => verdict.expiresAt !== undefined ? { at: verdict.expiresAt, from: "introspection" } : undefined
            })
          )
        notes.push(
          refreshExpiresAt !== undefined
            ? `the ${rotated ? "new " : ""}refresh token expires ${formatIn(refreshExpiresAt.at - Date.now())} (from ${refreshExpiresAt.from})`
            : "the refresh token's lifetime is not disclosed"
        )
        if (response.scope !== undefined) notes.push(`scope ${JSON.stringify(response.scope)}`)
        if (warnings.length > 0) {
          return { status: "WARN" as const, evidence: [...warnings, ...notes].join("; "), remedy: remedies.join(" ") }
        }
        return pass(notes.join("; "))
      })
    )

    const scrubbed = checks.map((check): Check => ({
      name: check.name,
      status: check.status,
      evidence: scrubSecrets(check.evidence, secrets),
      remedy: check.remedy === null ? null : scrubSecrets(check.remedy, secrets)
    }))
    return { checks: scrubbed, summary: summarize(scrubbed, tokenEndpointUrl ?? null, options.clientId) }
  }).pipe(
    Effect.provide(layerHttpClient(readCa(options.caFile))),
    Effect.scoped
  )


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
