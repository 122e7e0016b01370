import { expect, it } from "vitest"
import {
  type AuthServer,
  type AuthServerOptions,
  type FixtureClient,
  MemoryAdapterStore,
  startAuthServer,
  UnboundedMemoryAdapter,
  untilPast
} from "../src/index.js"

const withServer = async (options: AuthServerOptions, body: (server: AuthServer) => Promise<void>): Promise<void> => {
  const server = await startAuthServer(options)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

const authHeaders = (client: FixtureClient): Record<string, string> =>
  client.authMethod === "client_secret_basic"
    ? { authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}` }
    : {}

/** A raw RFC 6749 §6 refresh request, as the code under test would send it. */
const refresh = async (
  server: AuthServer,
  refreshToken: string,
  client: FixtureClient = server.clients.basic
): Promise<{ status: number; body: Record<string, unknown> }> => {
  const params = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken })
  if (client.authMethod === "client_secret_post") {
    params.set("client_id", client.clientId)
    params.set("client_secret", client.clientSecret)
  }
  const response = await fetch(server.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...authHeaders(client) },
    body: params
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

it("obtainGrant mints an opaque access token and a refresh token with offline_access", async () => {
  await withServer({ accessTokenTtlSeconds: 30 }, async (server) => {
    expect(server.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.tokenEndpoint).toBe(`${server.issuer}/token`)
    expect(server.scopes).toEqual(["openid", "offline_access", "api:read", "api:write"])
    expect(server.clients.basic.clientSecret.length).toBeGreaterThanOrEqual(32)
    expect(server.clients.basic.clientSecret).not.toBe(server.clients.post.clientSecret)

    const grant = await server.obtainGrant()
    expect(grant.refreshToken).toEqual(expect.any(String))
    expect(grant.scope.split(" ").sort()).toEqual(["api:read", "api:write", "offline_access", "openid"])
    expect(grant.expiresIn).toBe(30)
    expect(grant.idToken?.split(".")).toHaveLength(3)
    expect(grant.accessToken).not.toContain(".") // opaque, not a JWT

    const userinfo = await fetch(server.userinfoEndpoint, { headers: { authorization: `Bearer ${grant.accessToken}` } })
    expect(userinfo.status).toBe(200)
    expect(await userinfo.json()).toEqual({ sub: "fixture-user" })

    const viaPost = await server.obtainGrant({ client: server.clients.post, scope: "offline_access api:read" })
    expect(viaPost.scope.split(" ").sort()).toEqual(["api:read", "offline_access"])
    expect(viaPost.idToken).toBeUndefined()
    expect((await server.introspect(viaPost.refreshToken, server.clients.post))["client_id"]).toBe("client-post")
    expect(viaPost.refreshToken).not.toBe(grant.refreshToken)

    await expect(server.obtainGrant({ scope: "openid api:read" })).rejects.toThrow(/no refresh token issued/)
  })
})

it("refresh_token grant with client_secret_basic rotates, and the old refresh token then fails", async () => {
  await withServer({}, async (server) => {
    const grant = await server.obtainGrant()
    const first = await refresh(server, grant.refreshToken)
    expect(first.status).toBe(200)
    expect(first.body["refresh_token"]).toEqual(expect.any(String))
    expect(first.body["refresh_token"]).not.toBe(grant.refreshToken)
    expect(first.body["expires_in"]).toBe(60)

    const reuse = await refresh(server, grant.refreshToken)
    expect(reuse).toEqual({
      status: 400,
      body: { error: "invalid_grant", error_description: "grant request is invalid" }
    })
    // reuse detection revoked the whole grant, successor included
    expect((await refresh(server, first.body["refresh_token"] as string)).status).toBe(400)
  })
})

it("with rotation=false the same refresh token is echoed back and stays usable", async () => {
  await withServer({ rotation: false }, async (server) => {
    const grant = await server.obtainGrant()
    const first = await refresh(server, grant.refreshToken)
    const second = await refresh(server, grant.refreshToken)
    expect([first.status, second.status]).toEqual([200, 200])
    expect(first.body["refresh_token"]).toBe(grant.refreshToken)
    expect(second.body["refresh_token"]).toBe(grant.refreshToken)
  })
})

it("introspection reports the refresh token active until it is revoked", async () => {
  await withServer({}, async (server) => {
    const grant = await server.obtainGrant()
    const active = await server.introspect(grant.refreshToken)
    expect(active).toMatchObject({ active: true, client_id: "client-basic", sub: "fixture-user" })
    expect((await server.introspect(grant.accessToken)).active).toBe(true)

    await server.revoke(grant.refreshToken)
    expect(await server.introspect(grant.refreshToken)).toEqual({ active: false })
    expect((await server.introspect(grant.accessToken)).active).toBe(false) // the whole grant
    expect((await refresh(server, grant.refreshToken)).status).toBe(400)
  })
})

it("a wrong client secret gets 401 invalid_client and does not burn the refresh token", async () => {
  await withServer({}, async (server) => {
    const grant = await server.obtainGrant()
    const wrong: FixtureClient = { ...server.clients.basic, clientSecret: "not-the-secret" }
    const result = await refresh(server, grant.refreshToken, wrong)
    expect(result).toEqual({
      status: 401,
      body: { error: "invalid_client", error_description: "client authentication failed" }
    })
    await expect(server.introspect(grant.refreshToken, wrong)).rejects.toThrow(/HTTP 401/)
    expect((await refresh(server, grant.refreshToken)).status).toBe(200)
  })
})

it("counts token-endpoint requests by grant type, failed ones included", async () => {
  await withServer({}, async (server) => {
    expect(server.tokenRequests).toEqual({ refresh: 0, authorizationCode: 0 })
    const a = await server.obtainGrant()
    const b = await server.obtainGrant({ client: server.clients.post })
    expect(server.tokenRequests).toEqual({ refresh: 0, authorizationCode: 2 })

    const r1 = await refresh(server, a.refreshToken)
    await refresh(server, b.refreshToken, server.clients.post)
    await refresh(server, a.refreshToken) // reuse: 400, still reached the server
    await refresh(server, "garbage", { ...server.clients.basic, clientSecret: "wrong" }) // 401
    expect(r1.status).toBe(200)
    expect(server.tokenRequests).toEqual({ refresh: 4, authorizationCode: 2 })

    server.resetCounters()
    expect(server.tokenRequests).toEqual({ refresh: 0, authorizationCode: 0 })
    await refresh(server, r1.body["refresh_token"] as string)
    expect(server.tokenRequests).toEqual({ refresh: 1, authorizationCode: 0 })
  })
})

it("setClientSecret makes the old secret fail and the new one work", async () => {
  await withServer({}, async (server) => {
    const grant = await server.obtainGrant({ client: server.clients.post })
    const before = server.clients.post
    server.setClientSecret("post", "a-brand-new-secret-for-the-chaos-switch")
    const after = server.clients.post
    expect(after.clientSecret).toBe("a-brand-new-secret-for-the-chaos-switch")
    expect(before.clientSecret).not.toBe(after.clientSecret)

    const old = await refresh(server, grant.refreshToken, before)
    expect(old.status).toBe(401)
    expect(old.body["error"]).toBe("invalid_client")
    expect((await refresh(server, grant.refreshToken, after)).status).toBe(200)
    // the other client is untouched
    expect((await server.introspect(grant.accessToken, server.clients.basic)).active).toBe(true)
  })
})

it("short TTLs expire for real (clockTolerance 0): userinfo 401, refresh invalid_grant, introspection inactive", async () => {
  await withServer({ accessTokenTtlSeconds: 1, refreshTokenTtlSeconds: 1 }, async (server) => {
    const grant = await server.obtainGrant()
    expect(grant.expiresIn).toBe(1)
    // Until the server's recorded expiries are past (however late this runs), not for a guessed time.
    const expiries = [server.expiryOf(grant.accessToken), server.expiryOf(grant.refreshToken)]
    for (const expiry of expiries) expect(expiry).toEqual(expect.any(Number))
    await untilPast(Math.max(...expiries.map(Number)))
    const userinfo = await fetch(server.userinfoEndpoint, { headers: { authorization: `Bearer ${grant.accessToken}` } })
    expect(userinfo.status).toBe(401)
    expect(await userinfo.json()).toEqual({ error: "invalid_token", error_description: "invalid token provided" })
    expect((await refresh(server, grant.refreshToken)).body["error"]).toBe("invalid_grant")
    expect(await server.introspect(grant.refreshToken)).toEqual({ active: false })
  })
})

it("expiryOf: the expiry the server recorded for a token it issued, the one introspection reports", async () => {
  await withServer({ accessTokenTtlSeconds: 30 }, async (server) => {
    const grant = await server.obtainGrant()
    for (const token of [grant.accessToken, grant.refreshToken]) {
      const { active, exp } = await server.introspect(token)
      expect(active).toBe(true)
      expect(server.expiryOf(token)).toBe(Number(exp) * 1000)
    }
    expect(server.expiryOf("not-a-token-this-server-issued")).toBeUndefined()
  })
})

it("the adapter keeps more than 1,000 entries (oidc-provider's memory adapter evicts past 1,000)", async () => {
  const store = new MemoryAdapterStore()
  const tokens = new UnboundedMemoryAdapter("RefreshToken", store)
  for (let i = 0; i < 1_200; i++) {
    await tokens.upsert(`rt-${i}`, { jti: `rt-${i}`, grantId: `grant-${i % 10}`, kind: "RefreshToken" }, 3600)
  }
  expect(store.size).toBe(1_200)
  expect(await tokens.find("rt-0")).toMatchObject({ jti: "rt-0", grantId: "grant-0" })
  expect(await tokens.find("rt-1199")).toMatchObject({ jti: "rt-1199" })

  await tokens.consume("rt-1")
  expect((await tokens.find("rt-1"))?.["consumed"]).toEqual(expect.any(Number))
  await tokens.destroy("rt-2")
  expect(await tokens.find("rt-2")).toBeUndefined()
  await tokens.revokeByGrantId("grant-3")
  expect(await tokens.find("rt-3")).toBeUndefined()
  expect(await tokens.find("rt-13")).toBeUndefined()
  expect(store.size).toBe(1_200 - 1 - 120)

  const sessions = new UnboundedMemoryAdapter("Session", store)
  await sessions.upsert("s-1", { uid: "uid-1", accountId: "fixture-user" }, 0)
  expect(await sessions.findByUid("uid-1")).toBeUndefined() // expiresIn honoured (0 s)
  await sessions.upsert("s-2", { uid: "uid-2" }, 60)
  expect(await sessions.findByUid("uid-2")).toEqual({ uid: "uid-2" })
})

it("close() does not hang with an idle keep-alive connection open and is idempotent", async () => {
  const server = await startAuthServer()
  await server.obtainGrant() // leaves pooled keep-alive connections behind
  await server.close()
  await server.close()
  await expect(fetch(server.tokenEndpoint, { method: "POST" })).rejects.toThrow()
})
