/**
 * `renew doctor` against a REAL authorization server (oidc-provider) whose client is registered without the
 * refresh_token grant. oidc-provider says so with `invalid_request` "requested grant type is not allowed for this
 * client", not `unauthorized_client`: the doctor must still name the cause (client-auth FAIL) and give the
 * unauthorized_client remedy, not the generic "check the token endpoint URL".
 */
import { type AuthServer, startAuthServer } from "@renew/auth-server-fixture"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { assertNoSecrets, check, doctorJson, runRenew, statuses } from "./support/run.js"

let server: AuthServer

beforeAll(async () => {
  server = await startAuthServer()
})

afterAll(async () => {
  await server?.close()
})

describe("a client without the refresh_token grant", () => {
  it("client-auth FAILs naming the cause, with the unauthorized_client remedy (JSON and table)", async () => {
    const client = server.clients.noRefresh
    const args = ["--issuer", server.issuer, "--client-id", client.clientId]
    const env = { RENEW_CLIENT_SECRET: client.clientSecret }
    const json = await doctorJson(args, { env })
    assertNoSecrets(json.stdout + json.stderr, [client.clientSecret])
    assert.strictEqual(json.exitCode, 2, statuses(json.report))
    assert.strictEqual(json.report.summary.firstFailure, "client-auth", statuses(json.report))
    const clientAuth = check(json.report, "client-auth")
    assert.strictEqual(clientAuth.status, "FAIL")
    assert.include(clientAuth.evidence, "may not use the refresh_token grant")
    // The server's own words are quoted.
    assert.include(clientAuth.evidence, "invalid_request")
    assert.include(clientAuth.evidence, "requested grant type is not allowed for this client")
    assert.include(clientAuth.remedy!, "Enable the refresh_token grant type for this client")
    assert.notInclude(clientAuth.remedy!, "check the token endpoint URL")
    // The endpoint itself answered like a token endpoint.
    assert.strictEqual(check(json.report, "token-endpoint").status, "PASS")

    const table = await runRenew(["doctor", ...args], { env })
    assertNoSecrets(table.stdout + table.stderr, [client.clientSecret])
    assert.match(table.stdout, /^FAIL {2}client-auth /m)
    assert.include(table.stdout, "Enable the refresh_token grant type for this client")
  })
})
