/**
 * `renew doctor`, `renew inspect` and `renew token` against a REAL authorization server (oidc-provider, loopback).
 * Every misconfiguration must be diagnosed by name: the failing check, and a remedy that says what to fix. No
 * secret (client secrets, refresh and access tokens) may appear in any output, stdout or stderr, table or JSON.
 */
import { type AuthServer, eventually, type ObtainedGrant, startAuthServer, untilPast } from "@renew/auth-server-fixture"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import {
  assertNoSecrets,
  check,
  doctorJson,
  readGrant,
  type RunResult,
  runRenew,
  seedStore,
  statuses,
  tempDir
} from "./support/run.js"

const secrets: Array<string> = []
const outputs: Array<string> = []

/** Every output is kept and searched for every secret seen by the test file, at the end and after each run. */
const record = <A extends RunResult>(result: A): A => {
  outputs.push(result.stdout, result.stderr)
  assertNoSecrets(result.stdout + result.stderr, secrets)
  return result
}

const grantOf = async (server: AuthServer, options: { readonly scope?: string } = {}): Promise<ObtainedGrant> => {
  const grant = await server.obtainGrant(options.scope !== undefined ? { scope: options.scope } : {})
  secrets.push(grant.accessToken, grant.refreshToken)
  if (grant.idToken !== undefined) secrets.push(grant.idToken)
  return grant
}

const rememberStored = async (filename: string, key: string) => {
  const stored = await readGrant(filename, key)
  if (stored?.accessToken !== undefined) secrets.push(Redacted.value(stored.accessToken))
  if (stored?.refreshToken !== undefined) secrets.push(Redacted.value(stored.refreshToken))
  return stored
}

let server: AuthServer
let dir: ReturnType<typeof tempDir>

beforeAll(async () => {
  server = await startAuthServer()
  secrets.push(server.clients.basic.clientSecret, server.clients.post.clientSecret)
  dir = tempDir()
})

afterAll(async () => {
  await server?.close()
  dir?.remove()
  // Once more over everything, in case a secret was first seen after the output that carries it.
  assertNoSecrets(outputs.join("\n"), secrets)
})

const basicEnv = () => ({ RENEW_CLIENT_SECRET: server.clients.basic.clientSecret })

describe("the healthy case", () => {
  it("every check passes (TLS is not applicable on loopback http) and the exit code is 0", async () => {
    const grant = await grantOf(server)
    const store = join(dir.path, "healthy.db")
    await seedStore(store, "user-1", { ...grant, scope: grant.scope })
    const args = [
      "--issuer",
      server.issuer,
      "--client-id",
      server.clients.basic.clientId,
      "--store",
      store,
      "--key",
      "user-1",
      "--scope",
      "openid api:read"
    ]
    const json = record(await doctorJson(args, { env: basicEnv() }))
    assert.strictEqual(json.exitCode, 0, statuses(json.report))
    assert.deepStrictEqual(
      json.report.checks.filter((c) => c.status !== "PASS").map((c) => `${c.name} ${c.status}`),
      ["tls SKIP", "refresh SKIP"]
    )
    assert.deepStrictEqual(json.report.checks.map((c) => c.name), [
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
    ])
    assert.include(check(json.report, "discovery").evidence, "refresh_token is in grant_types_supported")
    assert.match(check(json.report, "refresh-token").evidence, /refresh token #[0-9a-f]{16} is active/)
    assert.deepInclude(json.report.summary, { status: "PASS", exitCode: 0, fail: 0, warn: 0 })

    // With --refresh, the last check passes too, and the table says so.
    const table = record(await runRenew(["doctor", ...args, "--refresh"], { env: basicEnv() }))
    await rememberStored(store, "user-1")
    assert.strictEqual(table.exitCode, 0, table.stdout)
    assert.match(table.stdout, /^PASS {2}refresh {8}/m)
    assert.match(table.stdout, /^SKIP {2}tls /m)
    assert.notMatch(table.stdout, /^(FAIL|WARN) /m)
    assert.include(table.stdout, "PASS: 10 pass, 0 warn, 0 fail, 1 skip; exit code 0")
  })
})

describe("misconfigurations, each diagnosed by name", () => {
  it("a wrong client secret: client-auth FAIL, the remedy names the secret; the grant is untouched", async () => {
    const grant = await grantOf(server)
    const wrong = "wrong-secret-0123456789abcdef"
    secrets.push(wrong)
    const { exitCode, report } = record(
      await doctorJson(["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--refresh-token-stdin"], {
        env: { RENEW_CLIENT_SECRET: wrong },
        stdin: `${grant.refreshToken}\n`
      })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "client-auth", statuses(report))
    const clientAuth = check(report, "client-auth")
    assert.include(clientAuth.evidence, "invalid_client")
    assert.include(clientAuth.remedy!, "client secret")
    assert.strictEqual(check(report, "token-endpoint").status, "PASS")
    assert.strictEqual(check(report, "refresh-token").evidence, "blocked by client-auth")
    // Probing client authentication did not consume the refresh token.
    assert.isTrue((await server.introspect(grant.refreshToken)).active)
  })

  it("an unknown client id: client-auth FAIL, the remedy names the client id", async () => {
    const { exitCode, report } = record(
      await doctorJson(["--token-endpoint", server.tokenEndpoint, "--client-id", "no-such-client"], { env: basicEnv() })
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "client-auth", statuses(report))
    assert.include(check(report, "client-auth").evidence, "\"no-such-client\"")
    assert.include(check(report, "client-auth").remedy!, "--client-id")
  })

  it("a revoked refresh token: refresh-token FAIL (inactive), the remedy is to authorize again", async () => {
    const grant = await grantOf(server)
    await server.revoke(grant.refreshToken)
    const { exitCode, report } = record(
      await doctorJson(
        ["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--refresh", "--refresh-token-stdin"],
        { env: basicEnv(), stdin: grant.refreshToken }
      )
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "refresh-token", statuses(report))
    assert.include(check(report, "refresh-token").evidence, "inactive")
    assert.include(check(report, "refresh-token").evidence, "revoked")
    assert.include(check(report, "refresh-token").remedy!, "authorize again")
    assert.strictEqual(check(report, "refresh").evidence, "blocked by refresh-token")
  })

  it("a revoked refresh token in a store whose expiry is known: named revoked, not expired", async () => {
    const grant = await grantOf(server)
    const exp = (await server.introspect(grant.refreshToken)).exp as number
    const store = join(dir.path, "revoked.db")
    await seedStore(store, "k", { ...grant, refreshTokenExpiresAt: exp * 1000 })
    await server.revoke(grant.refreshToken)
    const { report } = record(
      await doctorJson(
        ["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--store", store, "--key", "k"],
        { env: basicEnv() }
      )
    )
    assert.strictEqual(check(report, "refresh-token").status, "FAIL")
    assert.match(check(report, "refresh-token").evidence, /inactive: revoked/)
  })

  it("a scope wider than granted: scope FAIL with the missing scope; the refresh is not attempted", async () => {
    const grant = await grantOf(server, { scope: "openid offline_access api:read" })
    const store = join(dir.path, "scope.db")
    await seedStore(store, "k", grant)
    const { exitCode, report } = record(
      await doctorJson(
        [
          "--issuer",
          server.issuer,
          "--client-id",
          server.clients.basic.clientId,
          "--store",
          store,
          "--key",
          "k",
          "--scope",
          "openid offline_access api:read api:write",
          "--refresh"
        ],
        { env: basicEnv() }
      )
    )
    assert.strictEqual(exitCode, 2)
    assert.strictEqual(report.summary.firstFailure, "scope", statuses(report))
    assert.include(check(report, "scope").evidence, "api:write not granted")
    assert.include(check(report, "scope").remedy!, "subset")
    assert.strictEqual(check(report, "refresh").evidence, "blocked by scope")
    assert.strictEqual((await readGrant(store, "k"))?.version, 1, "the grant was not touched")
  })

  it("another client's refresh token: refresh-token FAIL names the client it belongs to", async () => {
    const grant = await grantOf(server)
    const { report } = record(
      await doctorJson(["--issuer", server.issuer, "--client-id", server.clients.post.clientId, "--auth-method", "client_secret_post"], {
        env: { RENEW_CLIENT_SECRET: server.clients.post.clientSecret, RENEW_REFRESH_TOKEN: grant.refreshToken }
      })
    )
    assert.strictEqual(report.summary.firstFailure, "refresh-token", statuses(report))
    assert.include(check(report, "refresh-token").evidence, "issued to client \"client-basic\"")
    assert.include(check(report, "refresh-token").remedy!, "--client-id client-basic")
  })
})

describe("an expired refresh token (refresh-token TTL 1 s)", () => {
  let shortLived: AuthServer
  beforeAll(async () => {
    shortLived = await startAuthServer({ refreshTokenTtlSeconds: 1 })
    secrets.push(shortLived.clients.basic.clientSecret, shortLived.clients.post.clientSecret)
  })
  afterAll(() => shortLived?.close())

  it("refresh-token FAIL named expired (the store knows its expiry), or expired-or-revoked (it does not)", async () => {
    const grant = await grantOf(shortLived)
    // The server's own record of the expiry. Introspecting for it would race the token's lifetime, which is anywhere
    // from 0 to 1 s (whole seconds): once expired, introspection answers a bare { active: false }, no exp.
    const expiresAt = shortLived.expiryOf(grant.refreshToken)
    assert.isDefined(expiresAt)
    const store = join(dir.path, "expired.db")
    await seedStore(store, "k", { ...grant, refreshTokenExpiresAt: expiresAt })
    // Wait for the state the check needs, however long that takes: the recorded expiry is past, the server agrees.
    await untilPast(expiresAt)
    await eventually("the server to call the refresh token inactive", async () =>
      !(await shortLived.introspect(grant.refreshToken)).active)
    const env = { RENEW_CLIENT_SECRET: shortLived.clients.basic.clientSecret }
    const base = ["--issuer", shortLived.issuer, "--client-id", shortLived.clients.basic.clientId]

    const fromStore = record(await doctorJson([...base, "--store", store, "--key", "k"], { env }))
    assert.strictEqual(fromStore.exitCode, 2)
    assert.strictEqual(fromStore.report.summary.firstFailure, "refresh-token", statuses(fromStore.report))
    assert.match(check(fromStore.report, "refresh-token").evidence, /is inactive: expired \d+ (ms|s) ago/)
    assert.include(check(fromStore.report, "refresh-token").remedy!, "authorize again")

    const raw = record(await doctorJson(base, { env: { ...env, RENEW_REFRESH_TOKEN: grant.refreshToken } }))
    assert.strictEqual(raw.report.summary.firstFailure, "refresh-token")
    assert.include(check(raw.report, "refresh-token").evidence, "expired or revoked")

    // inspect says so too, without asking anyone.
    const inspected = record(await runRenew(["inspect", "--store", store]))
    assert.match(inspected.stdout, /needs re-auth \(refresh token expired\)/)
  })
})

describe("--refresh on a store-backed grant, then inspect and token", () => {
  const key = "user@example.com"
  let store: string

  it("--refresh rotates, stores the rotated grant back, and reports rotation and lifetimes", async () => {
    const grant = await grantOf(server)
    store = join(dir.path, "refresh.db")
    await seedStore(store, key, { ...grant, scope: grant.scope })
    const { exitCode, report } = record(
      await doctorJson(
        ["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--store", store, "--key", key, "--refresh"],
        { env: basicEnv() }
      )
    )
    const stored = await rememberStored(store, key)
    assert.strictEqual(exitCode, 0, statuses(report))
    const refresh = check(report, "refresh")
    assert.strictEqual(refresh.status, "PASS")
    assert.include(refresh.evidence, "ROTATED")
    // Version 1 was seeded; the refresh-in-flight intent is version 2, the rotated grant version 3.
    assert.include(refresh.evidence, "stored back as version 3")
    assert.include(refresh.evidence, "access tokens live 1m (expires_in 60)")
    assert.match(refresh.evidence, /the new refresh token expires in (59m|1h)/)
    assert.strictEqual(stored?.version, 3)
    assert.isUndefined(stored?.refreshStartedAt, "the intent was cleared")
    const newRefreshToken = Redacted.value(stored!.refreshToken!)
    assert.notStrictEqual(newRefreshToken, grant.refreshToken)
    assert.isTrue((await server.introspect(newRefreshToken)).active, "the stored refresh token is the live one")
    assert.isFalse((await server.introspect(grant.refreshToken)).active, "the old one was used up")
  })

  it("renew inspect lists it: key, version, expiries, status and scope, in a table and as JSON", async () => {
    const table = record(await runRenew(["inspect", "--store", store]))
    assert.strictEqual(table.exitCode, 0)
    assert.match(table.stdout, /1 grant\n/)
    assert.match(table.stdout, /^KEY +VERSION +ACCESS TOKEN +REFRESH TOKEN +STATUS +SCOPE$/m)
    assert.match(
      table.stdout,
      new RegExp(`^${key} +3 +expires in \\d+ s +expires in (59m( \\d+s)?|1h) +active +openid`, "m"),
      table.stdout
    )

    const json = record(await runRenew(["inspect", "--store", store, "--json"]))
    const inventory = JSON.parse(json.stdout) as { grants: Array<Record<string, unknown>> }
    assert.strictEqual(inventory.grants.length, 1)
    assert.deepInclude(inventory.grants[0], { key, version: 3, status: "active", reason: null, keyId: null })
    assert.isAbove(inventory.grants[0]!.refreshTokenExpiresInSeconds as number, 3500)
  })

  it("renew token prints a working access token (refreshing a due grant first), and only it", async () => {
    const grant = await grantOf(server)
    await seedStore(store, "due", { ...grant, expiresIn: 0 })
    const result = await runRenew(
      ["token", "due", "--store", store, "--issuer", server.issuer, "--client-id", server.clients.basic.clientId],
      { env: basicEnv() }
    )
    const stored = await rememberStored(store, "due")
    assert.strictEqual(result.exitCode, 0, result.stderr)
    assert.strictEqual(result.stderr, "")
    const printed = result.stdout.trimEnd()
    assert.strictEqual(result.stdout, `${printed}\n`, "exactly one line: the token")
    assert.strictEqual(printed, Redacted.value(stored!.accessToken!), "the refreshed, stored access token")
    assert.notStrictEqual(printed, grant.accessToken)
    assert.strictEqual(stored?.version, 3)
    const me = await fetch(server.userinfoEndpoint, { headers: { authorization: `Bearer ${printed}` } })
    assert.strictEqual(me.status, 200, "the printed token works at the resource server")

    // A fresh grant is served without a refresh.
    const again = await runRenew(["token", "due", "--store", store, "--token-endpoint", server.tokenEndpoint, "--client-id", server.clients.basic.clientId], {
      env: basicEnv()
    })
    assert.strictEqual(again.stdout, result.stdout)
    assert.strictEqual((await readGrant(store, "due"))?.version, 3)
  })

  it("renew token on a dead grant: exit 1, the tagged reason on stderr, nothing on stdout", async () => {
    const grant = await grantOf(server)
    await seedStore(store, "dead", { ...grant, expiresIn: 0 })
    await server.revoke(grant.refreshToken)
    const result = record(
      await runRenew(
        ["token", "dead", "--store", store, "--issuer", server.issuer, "--client-id", server.clients.basic.clientId],
        { env: basicEnv() }
      )
    )
    assert.strictEqual(result.exitCode, 1)
    assert.strictEqual(result.stdout, "")
    assert.match(result.stderr, /^renew token: InvalidGrant: /)
    assert.include(result.stderr, "authorize again")
  })
})

describe("an encrypted store", () => {
  it("inspect shows the key id without any key; doctor needs --encryption-key (RENEW_ENCRYPTION_KEY) to read the grant", async () => {
    const grant = await grantOf(server)
    const key = randomBytes(32).toString("base64")
    secrets.push(key)
    const store = join(dir.path, "encrypted.db")
    await seedStore(store, "k", grant, { keyId: "2026-11", key })

    const inspected = record(await runRenew(["inspect", "--store", store]))
    assert.match(inspected.stdout, /^KEY +VERSION +ACCESS TOKEN +REFRESH TOKEN +STATUS +KEY ID +SCOPE$/m)
    assert.match(inspected.stdout, /^k +1 .* active +2026-11 +openid/m)

    const base = ["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--store", store, "--key", "k"]
    const without = record(await doctorJson(base, { env: basicEnv() }))
    assert.strictEqual(without.report.summary.firstFailure, "config")
    assert.include(check(without.report, "config").evidence, "encrypted (key id 2026-11)")
    assert.include(check(without.report, "config").remedy!, "--encryption-key")

    const withKey = record(await doctorJson(base, { env: { ...basicEnv(), RENEW_ENCRYPTION_KEY: key } }))
    assert.strictEqual(withKey.exitCode, 0, statuses(withKey.report))
    assert.strictEqual(check(withKey.report, "refresh-token").status, "PASS")
  })
})

describe("rotation races", () => {
  /** What another replica (or a process that then died) does: refresh with the token, keep the result elsewhere. */
  const refreshElsewhere = async (refreshToken: string) => {
    const response = await fetch(server.tokenEndpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`client-basic:${server.clients.basic.clientSecret}`).toString("base64")}`
      },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken })
    })
    const body = (await response.json()) as { access_token: string; refresh_token: string }
    secrets.push(body.access_token, body.refresh_token)
    assert.strictEqual(response.status, 200)
  }

  it("a refresh that died after the server rotated: refresh-token FAIL says so, inspect shows it interrupted", async () => {
    const grant = await grantOf(server)
    const store = join(dir.path, "crash.db")
    const startedAt = Date.now() - 90_000
    await seedStore(store, "k", { ...grant, refreshStartedAt: startedAt })
    await refreshElsewhere(grant.refreshToken)
    const { report } = record(
      await doctorJson(["--issuer", server.issuer, "--client-id", server.clients.basic.clientId, "--store", store, "--key", "k"], {
        env: basicEnv()
      })
    )
    const elapsed = Date.now() - startedAt
    assert.strictEqual(report.summary.firstFailure, "refresh-token", statuses(report))
    const evidence = check(report, "refresh-token").evidence
    assert.include(evidence, "probably rotated by a refresh that never stored its result")
    // 1m 30s ago, plus however long this test took to get there (seconds, rounded): not a fixed string.
    const ago = /a refresh started (\d+)m(?: (\d+)s)? ago/.exec(evidence)
    assert.isNotNull(ago, evidence)
    const seconds = Number(ago![1]) * 60 + Number(ago![2] ?? 0)
    assert.isAtLeast(seconds, 90, evidence)
    assert.isAtMost(seconds, Math.round(elapsed / 1000), evidence)
    const inspected = record(await runRenew(["inspect", "--store", store, "--json"]))
    assert.deepInclude(JSON.parse(inspected.stdout).grants[0], { status: "refresh_interrupted" })
  })
})

describe("short access-token lifetime", () => {
  let shortAt: AuthServer
  beforeAll(async () => {
    shortAt = await startAuthServer({ accessTokenTtlSeconds: 5 })
    secrets.push(shortAt.clients.basic.clientSecret, shortAt.clients.post.clientSecret)
  })
  afterAll(() => shortAt?.close())

  it("--refresh WARNs that refresh traffic dominates; exit code 1", async () => {
    const grant = await grantOf(shortAt)
    const store = join(dir.path, "short.db")
    await seedStore(store, "k", grant)
    const { exitCode, report } = record(
      await doctorJson(
        ["--issuer", shortAt.issuer, "--client-id", shortAt.clients.basic.clientId, "--store", store, "--key", "k", "--refresh"],
        { env: { RENEW_CLIENT_SECRET: shortAt.clients.basic.clientSecret } }
      )
    )
    await rememberStored(store, "k")
    assert.strictEqual(exitCode, 1, statuses(report))
    assert.strictEqual(check(report, "refresh").status, "WARN")
    assert.include(check(report, "refresh").evidence, "refresh traffic dominates")
    assert.include(check(report, "refresh").remedy!, "Raise the access-token lifetime")
  })
})
