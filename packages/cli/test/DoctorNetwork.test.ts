/**
 * `renew doctor` against what goes wrong below OAuth: nothing listening, a name that does not resolve, a server
 * answering 503, a self-signed certificate, a skewed clock, a non-https URL. Small loopback servers, each fault
 * diagnosed by name (the failing check) with a remedy that says what to fix.
 */
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { freePort, type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import {
  assertNoSecrets,
  check,
  doctorJson,
  type Loopback,
  type RunResult,
  runRenew,
  startPrivateCaServer,
  startSelfSignedServer,
  startSkewedServer,
  statuses
} from "./support/run.js"

const SECRET = "s3cret-network-tests-0123456789"
const REFRESH_TOKEN = "rt-network-tests-abcdefghijklmnop"
const env = { RENEW_CLIENT_SECRET: SECRET, RENEW_REFRESH_TOKEN: REFRESH_TOKEN }

const clean = <A extends RunResult>(result: A): A => {
  assertNoSecrets(result.stdout + result.stderr, [SECRET, REFRESH_TOKEN])
  return result
}

const blockedAfter = (report: Awaited<ReturnType<typeof doctorJson>>["report"], failed: string) =>
  report.checks
    .slice(report.checks.findIndex((c) => c.name === failed) + 1)
    .filter((c) => c.name !== "refresh")
    .every((c) => c.status === "SKIP" && c.evidence === `blocked by ${failed}`)

describe("connectivity", () => {
  it("a port with nothing listening: tcp FAIL (ECONNREFUSED), the remedy says to check the port and the server", async () => {
    const port = await freePort()
    const { exitCode, report } = clean(
      await doctorJson(["--token-endpoint", `http://127.0.0.1:${port}/token`, "--client-id", "app"], { env })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "tcp", statuses(report))
    assert.include(check(report, "tcp").evidence, "ECONNREFUSED")
    assert.include(check(report, "tcp").remedy!, "port")
    assert.include(check(report, "tcp").remedy!, "running")
    assert.isTrue(blockedAfter(report, "tcp"), statuses(report))
  })

  it("a host that does not resolve: dns FAIL (ENOTFOUND), the remedy points at the name and DNS", async () => {
    const { exitCode, report } = clean(
      await doctorJson(["--token-endpoint", "https://renew-doctor-test.invalid/token", "--client-id", "app"], { env })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "dns", statuses(report))
    assert.include(check(report, "dns").evidence, "renew-doctor-test.invalid did not resolve: ENOTFOUND")
    assert.include(check(report, "dns").remedy!, "getent hosts renew-doctor-test.invalid")
    assert.isTrue(blockedAfter(report, "dns"), statuses(report))
  })

  it("plain http to a non-loopback host: config FAIL before any request", async () => {
    const { exitCode, report } = clean(
      await doctorJson(["--token-endpoint", "http://auth.example.com/token", "--client-id", "app"], { env })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "config", statuses(report))
    assert.include(check(report, "config").evidence, "must use https")
    assert.include(check(report, "config").remedy!, "https://")
    assert.isTrue(blockedAfter(report, "config"), statuses(report))
  })
})

describe("a server answering 503", () => {
  let endpoint: ScriptedTokenEndpoint
  beforeAll(async () => {
    endpoint = await startScriptedTokenEndpoint({ clientId: "app", clientSecret: SECRET })
  })
  afterAll(() => endpoint?.close())

  it("token-endpoint FAIL \"server error\" with the status; client auth cannot be judged", async () => {
    endpoint.script({
      kind: "respond",
      status: 503,
      headers: { "content-type": "text/html", "retry-after": "30" },
      body: "<html><body>Service Unavailable</body></html>"
    })
    const { exitCode, report } = clean(
      await doctorJson(["--token-endpoint", endpoint.url, "--client-id", "app"], { env })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "token-endpoint", statuses(report))
    const verdict = check(report, "token-endpoint")
    assert.match(verdict.evidence, /^server error: .* answered HTTP 503/)
    assert.include(verdict.evidence, "Retry-After 30 s")
    assert.include(verdict.remedy!, "retries 5xx")
    assert.strictEqual(check(report, "client-auth").status, "SKIP")
    assert.include(check(report, "client-auth").evidence, "inconclusive")
    assert.strictEqual(endpoint.pendingSteps, 0)
    assert.strictEqual(endpoint.refreshRequests, 1, "one probe request, with a made-up refresh token")
    assert.notStrictEqual(endpoint.requests[0]!.form.refresh_token, REFRESH_TOKEN, "the real token is never sent")
  })

  it("once the server recovers, the same command passes", async () => {
    const { exitCode, report } = clean(await doctorJson(["--token-endpoint", endpoint.url, "--client-id", "app"], { env }))
    assert.strictEqual(exitCode, 0, statuses(report))
    assert.strictEqual(check(report, "client-auth").status, "PASS")
  })
})

describe("a self-signed certificate", () => {
  let server: Loopback & { readonly certFile: string }
  beforeAll(async () => {
    server = await startSelfSignedServer()
  })
  afterAll(() => server?.close())

  it("tls FAIL naming the TLS error; the remedy is a trusted certificate or NODE_EXTRA_CA_CERTS, never disabling checks", async () => {
    const { exitCode, report } = clean(await doctorJson(["--token-endpoint", server.url, "--client-id", "app"], { env }))
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "tls", statuses(report))
    assert.match(check(report, "tls").evidence, /DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN/)
    assert.include(check(report, "tls").evidence, "CN=127.0.0.1")
    assert.include(check(report, "tls").remedy!, "NODE_EXTRA_CA_CERTS")
    assert.include(check(report, "tls").remedy!, "Do not set NODE_TLS_REJECT_UNAUTHORIZED=0")
    assert.isTrue(blockedAfter(report, "tls"), statuses(report))
    assert.strictEqual(server.requests(), 0, "no HTTP request went to an untrusted server")
  })

  it("with --ca-file the chain is trusted, and the next problem is named: the certificate does not cover 127.0.0.1", async () => {
    const { report } = clean(
      await doctorJson(["--token-endpoint", server.url, "--client-id", "app", "--ca-file", server.certFile], { env })
    )
    assert.strictEqual(report.summary.firstFailure, "tls", statuses(report))
    assert.include(check(report, "tls").evidence, "ERR_TLS_CERT_ALTNAME_INVALID")
    assert.include(check(report, "tls").remedy!, "does not cover 127.0.0.1")
  })
})

describe("a certificate from a private CA", () => {
  let server: Loopback & { readonly caFile: string }
  beforeAll(async () => {
    server = await startPrivateCaServer()
  })
  afterAll(() => server?.close())

  it("untrusted without --ca-file; with it the handshake passes, and a certificate expiring within 14 days WARNs", async () => {
    const untrusted = clean(await doctorJson(["--token-endpoint", server.url, "--client-id", "app"], { env }))
    assert.strictEqual(untrusted.report.summary.firstFailure, "tls", statuses(untrusted.report))
    assert.match(check(untrusted.report, "tls").evidence, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/)

    const { exitCode, report } = clean(
      await doctorJson(["--token-endpoint", server.url, "--client-id", "app", "--ca-file", server.caFile], { env })
    )
    assert.strictEqual(exitCode, 1, statuses(report))
    const tls = check(report, "tls")
    assert.strictEqual(tls.status, "WARN")
    assert.match(tls.evidence, /TLSv1\.[23] with 127\.0\.0\.1:\d+; certificate CN=127\.0\.0\.1, issued by CN=Renew Test CA/)
    assert.include(tls.evidence, "(0 days left)")
    assert.include(tls.remedy!, "Renew the server certificate")
    assert.strictEqual(check(report, "client-auth").status, "PASS", "the HTTP client trusts --ca-file too")
  })
})

describe("clock skew", () => {
  const servers: Array<Loopback> = []
  afterAll(() => Promise.all(servers.map((s) => s.close())))

  it("a server 10 minutes ahead: clock-skew FAIL, the remedy is NTP; the other checks still run", async () => {
    const server = await startSkewedServer(600)
    servers.push(server)
    const { exitCode, report } = clean(await doctorJson(["--token-endpoint", server.url, "--client-id", "app"], { env }))
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "clock-skew", statuses(report))
    assert.match(check(report, "clock-skew").evidence, /the server's clock is 10m ahead of this machine's/)
    assert.include(check(report, "clock-skew").remedy!, "NTP")
    assert.strictEqual(check(report, "client-auth").status, "PASS")
    assert.strictEqual(check(report, "token-endpoint").status, "PASS")
  })

  it("2 minutes behind: WARN, exit code 1", async () => {
    const server = await startSkewedServer(-120)
    servers.push(server)
    const { exitCode, report } = clean(await doctorJson(["--token-endpoint", server.url, "--client-id", "app"], { env }))
    assert.strictEqual(exitCode, 1, statuses(report))
    assert.strictEqual(check(report, "clock-skew").status, "WARN")
    assert.match(check(report, "clock-skew").evidence, /2m behind/)
  })
})

describe("the command line", () => {
  it("--help prints the options and exits 0; a missing --client-id is a usage error (64)", async () => {
    const help = await runRenew(["doctor", "--help"])
    assert.strictEqual(help.exitCode, 0)
    assert.include(help.stdout, "--client-secret-stdin")
    assert.include(help.stdout, "--refresh-token-stdin")
    const usage = await runRenew(["doctor", "--token-endpoint", "http://127.0.0.1:1/token"])
    assert.strictEqual(usage.exitCode, 64)
    assert.include(usage.stderr, "--client-id")
  })

  it("conflicting secret sources and whitespace around a secret are config problems", async () => {
    const { report } = clean(
      await doctorJson(
        ["--token-endpoint", "http://127.0.0.1:1/token", "--client-id", "app", "--client-secret", `${SECRET}\n`, "--client-secret-stdin"],
        { stdin: `${SECRET}\n` }
      )
    )
    assert.strictEqual(check(report, "config").status, "FAIL")
    assert.include(check(report, "config").evidence, "both --client-secret and --client-secret-stdin given")

    const padded = clean(
      await doctorJson(["--token-endpoint", "http://127.0.0.1:1/token", "--client-id", "app"], {
        env: { RENEW_CLIENT_SECRET: `${SECRET}\n` }
      })
    )
    assert.strictEqual(padded.report.summary.firstFailure, "config")
    assert.include(
      check(padded.report, "config").evidence,
      "the client secret from RENEW_CLIENT_SECRET has leading or trailing whitespace"
    )
  })
})
