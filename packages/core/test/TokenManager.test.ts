import { afterEach, assert, describe, it } from "@effect/vitest"
import { RefreshError, TokenManager } from "@renew/core"
import {
  type ScriptedTokenEndpoint,
  startScriptedTokenEndpoint
} from "@renew/scripted-endpoint-fixture"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

const setup = async (options: Partial<TokenManager.TokenManagerOptions> = {}) => {
  const endpoint: ScriptedTokenEndpoint = await startScriptedTokenEndpoint({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET
  })
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    ...options
  })
  cleanups.push(() => tokens.dispose(), () => endpoint.close())
  return { endpoint, tokens }
}

describe("TokenManager", () => {
  it("refreshes a due grant once for many concurrent callers and caches the result", async () => {
    const { endpoint, tokens } = await setup()
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    const all = await Promise.all(Array.from({ length: 1000 }, () => tokens.getAccessToken("u1")))
    assert.strictEqual(endpoint.refreshRequests, 1)
    assert.strictEqual(new Set(all).size, 1)
    assert.strictEqual(all[0], endpoint.lastIssued()!.accessToken)
    assert.strictEqual(await tokens.getAccessToken("u1"), all[0])
    assert.strictEqual(endpoint.refreshRequests, 1)
  })

  it("rejects with the tagged error itself", async () => {
    const { endpoint, tokens } = await setup()
    endpoint.script({ kind: "respond", status: 400, body: { error: "invalid_grant" } })
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: "rt_dead", expiresIn: 0 })
    const error = await tokens.getAccessToken("u1").then(() => undefined, (e: unknown) => e)
    assert.isTrue(RefreshError.isRefreshError(error))
    assert.strictEqual((error as RefreshError.RefreshError)._tag, "InvalidGrant")
    assert.instanceOf(error, RefreshError.InvalidGrant)
    const missing = await tokens.getAccessToken("nobody").then(() => undefined, (e: unknown) => e)
    assert.strictEqual((missing as RefreshError.RefreshError)._tag, "GrantNotFound")
  })

  it("refresh() forces a refresh", async () => {
    const { endpoint, tokens } = await setup()
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
    assert.strictEqual(await tokens.getAccessToken("u1"), "at_old")
    await tokens.refresh("u1")
    assert.strictEqual(endpoint.refreshRequests, 1)
    assert.strictEqual(await tokens.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
  })

  it("refuses a bad configuration synchronously with a typed error", () => {
    const attempt = (tokenEndpoint: string) => {
      try {
        TokenManager.createTokenManager({ tokenEndpoint, clientId: "c", clientSecret: "s" })
        return undefined
      } catch (error) {
        return error
      }
    }
    for (const url of ["http://auth.example.com/token", "not a url", "ftp://127.0.0.1/token"]) {
      const error = attempt(url) as RefreshError.ConfigurationError
      assert.strictEqual(error._tag, "ConfigurationError", url)
      assert.strictEqual(error.option, "url")
    }
    const noSecret = (() => {
      try {
        TokenManager.createTokenManager({
          tokenEndpoint: "https://auth.example.com/token",
          clientId: "c",
          authMethod: "client_secret_post"
        })
      } catch (error) {
        return error as RefreshError.ConfigurationError
      }
    })()
    assert.strictEqual(noSecret?.option, "clientSecret")
  })

  it("dispose() releases everything", async () => {
    const { endpoint, tokens } = await setup()
    await tokens.setGrant("u1", { accessToken: "at", refreshToken: endpoint.mintRefreshToken(), expiresIn: 3600 })
    await tokens.dispose()
    for (const key of ["u1", "u2"]) {
      const after = await tokens.getAccessToken(key).then(() => "resolved", () => "rejected")
      assert.strictEqual(after, "rejected", key)
    }
  })
})
