import { afterEach, describe, expect, it } from "vitest"
import {
  freePort,
  startScriptedTokenEndpoint,
  type ScriptedTokenEndpoint,
  type ScriptedTokenEndpointOptions
} from "@renew/scripted-endpoint-fixture"

const open: Array<ScriptedTokenEndpoint> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((ep) => ep.close()))
})

const start = async (options?: ScriptedTokenEndpointOptions) => {
  const ep = await startScriptedTokenEndpoint(options)
  open.push(ep)
  return ep
}

const post = (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString()
  })

const refresh = (ep: ScriptedTokenEndpoint, refreshToken: string, extra: Record<string, string> = {}) =>
  post(ep.url, { grant_type: "refresh_token", refresh_token: refreshToken, ...extra })

// Form-encoding of one component, as RFC 6749 §2.3.1 requires for Basic credentials.
const formEncode = (value: string) => new URLSearchParams({ v: value }).toString().slice(2)
const basic = (id: string, secret: string) => "Basic " + Buffer.from(`${id}:${secret}`).toString("base64")

// Undici wraps network failures as TypeError("fetch failed") with the socket error as cause.
const fetchFailure = async (promise: Promise<Response>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e
  )
  expect(error).toBeInstanceOf(TypeError)
  return (error as TypeError & { cause?: { code?: string } }).cause
}

describe("ScriptedTokenEndpoint", () => {
  it("listens on loopback and runs the default rotation flow", async () => {
    const ep = await start()
    expect(ep.url).toBe(`http://127.0.0.1:${ep.port}/token`)
    const rt0 = ep.mintRefreshToken()
    expect(rt0).toMatch(/^rt_[A-Za-z0-9_-]+$/)
    expect(ep.isActive(rt0)).toBe(true)

    const res1 = await refresh(ep, rt0)
    expect(res1.status).toBe(200)
    expect(res1.headers.get("cache-control")).toBe("no-store")
    expect(res1.headers.get("content-type")).toContain("application/json")
    const body1 = (await res1.json()) as Record<string, unknown>
    expect(body1).toEqual({
      access_token: expect.stringMatching(/^at_/),
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: expect.stringMatching(/^rt_/),
      scope: "read write"
    })
    const rt1 = body1.refresh_token as string
    expect(rt1).not.toBe(rt0)
    expect(ep.isActive(rt0)).toBe(false)
    expect(ep.isActive(rt1)).toBe(true)
    expect(ep.lastIssued()).toEqual({ accessToken: body1.access_token, refreshToken: rt1 })

    // Scope is echoed, and the rotated token works once.
    const body2 = (await (await refresh(ep, rt1, { scope: "read" })).json()) as Record<string, unknown>
    expect(body2.scope).toBe("read")
    expect(body2.access_token).not.toBe(body1.access_token)

    expect(ep.refreshRequests).toBe(2)
    expect(ep.requests.map((r) => r.form.refresh_token)).toEqual([rt0, rt1])
    expect(ep.requests[0]).toMatchObject({ method: "POST", path: "/token" })
    expect(ep.requests[0]!.rawBody).toBe(`grant_type=refresh_token&refresh_token=${rt0}`)
    expect(ep.requests[0]!.receivedAt).toBeLessThanOrEqual(ep.requests[1]!.receivedAt)
  })

  it("rejects malformed, unsupported and unknown grants with RFC 6749 errors", async () => {
    const ep = await start()
    const unsupported = await post(ep.url, { grant_type: "client_credentials" })
    expect(unsupported.status).toBe(400)
    expect(await unsupported.json()).toEqual({ error: "unsupported_grant_type" })

    const missing = await post(ep.url, { grant_type: "refresh_token" })
    expect(missing.status).toBe(400)
    expect(await missing.json()).toMatchObject({ error: "invalid_request" })

    const unknown = await refresh(ep, "rt_nope")
    expect(unknown.status).toBe(400)
    expect(await unknown.text()).toBe(
      JSON.stringify({ error: "invalid_grant", error_description: "grant request is invalid" })
    )
    expect(ep.refreshRequests).toBe(2)
    expect(ep.requests).toHaveLength(3)
  })

  it("reuse of a consumed refresh token revokes the whole chain", async () => {
    const ep = await start()
    const rt0 = ep.mintRefreshToken()
    const rt1 = ((await (await refresh(ep, rt0)).json()) as { refresh_token: string }).refresh_token
    const rt2 = ((await (await refresh(ep, rt1)).json()) as { refresh_token: string }).refresh_token
    expect(ep.isActive(rt2)).toBe(true)

    const replay = await refresh(ep, rt0)
    expect(replay.status).toBe(400)
    expect(await replay.json()).toEqual({ error: "invalid_grant", error_description: "grant request is invalid" })
    for (const rt of [rt0, rt1, rt2]) expect(ep.isActive(rt)).toBe(false)

    const afterReplay = await refresh(ep, rt2)
    expect(afterReplay.status).toBe(400)
    expect(((await afterReplay.json()) as { error: string }).error).toBe("invalid_grant")
  })

  it("with a reuse grace period a consumed token is accepted again, and counts as presented twice", async () => {
    const ep = await start({ reuseGraceMs: 30_000 })
    const rt0 = ep.mintRefreshToken()
    const first = (await (await refresh(ep, rt0)).json()) as { access_token: string; refresh_token: string }
    const again = await refresh(ep, rt0)
    expect(again.status).toBe(200)
    const second = (await again.json()) as { refresh_token: string }
    expect(second.refresh_token).not.toBe(first.refresh_token)
    expect(ep.isActive(first.refresh_token)).toBe(true)
    expect(ep.isActive(second.refresh_token)).toBe(true)
    expect(ep.presentations(rt0)).toBe(2)
    expect(ep.issuedTokens.map((t) => [t.presented, t.refreshToken])).toEqual([
      [rt0, first.refresh_token],
      [rt0, second.refresh_token]
    ])
    expect(ep.issuedTokens[0]!.accessToken).toBe(first.access_token)
    expect(ep.issuedTokens[0]!.expiresIn).toBe(3600)
    expect(ep.knownRefreshTokens).toEqual(expect.arrayContaining([rt0, first.refresh_token, second.refresh_token]))
  })

  it("introspection answers from the token table, checks the client and never consumes a scripted step", async () => {
    const ep = await start({ clientId: "c", clientSecret: "s" })
    expect(ep.introspectionUrl).toBe(`http://127.0.0.1:${ep.port}/introspect`)
    const rt0 = ep.mintRefreshToken()
    ep.script({ kind: "respond", status: 503 })
    const auth = { authorization: basic("c", "s") }
    const live = await post(ep.introspectionUrl, { token: rt0 }, auth)
    expect(live.status).toBe(200)
    expect(await live.json()).toEqual({ active: true, token_type: "refresh_token" })
    expect(await (await post(ep.introspectionUrl, { token: "rt_unknown" }, auth)).json()).toEqual({ active: false })
    expect((await post(ep.introspectionUrl, { token: rt0 }, { authorization: basic("c", "wrong") })).status).toBe(401)
    expect(ep.pendingSteps).toBe(1)
    expect(ep.refreshRequests).toBe(0)
    expect(ep.requests.map((r) => r.path)).toEqual(["/introspect", "/introspect", "/introspect"])
  })

  it("with rotation off the same refresh token is echoed and stays live", async () => {
    const ep = await start({ rotation: false, accessTokenTtlSeconds: 60 })
    const rt = ep.mintRefreshToken()
    const a = (await (await refresh(ep, rt)).json()) as Record<string, unknown>
    const b = (await (await refresh(ep, rt)).json()) as Record<string, unknown>
    expect(a.refresh_token).toBe(rt)
    expect(b.refresh_token).toBe(rt)
    expect(a.expires_in).toBe(60)
    expect(a.access_token).not.toBe(b.access_token)
    expect(ep.isActive(rt)).toBe(true)
  })

  it("plays a scripted 503 and then falls back to the default handler", async () => {
    const ep = await start()
    const rt = ep.mintRefreshToken()
    ep.script({
      kind: "respond",
      status: 503,
      headers: { "retry-after": "1" },
      body: { error: "temporarily_unavailable" }
    })
    expect(ep.pendingSteps).toBe(1)

    const first = await refresh(ep, rt)
    expect(first.status).toBe(503)
    expect(first.headers.get("retry-after")).toBe("1")
    expect(first.headers.get("content-type")).toBe("application/json")
    expect(await first.json()).toEqual({ error: "temporarily_unavailable" })
    // The scripted answer did not touch the issuer.
    expect(ep.isActive(rt)).toBe(true)
    expect(ep.pendingSteps).toBe(0)

    const second = await refresh(ep, rt)
    expect(second.status).toBe(200)
    expect(ep.isActive(rt)).toBe(false)
    expect(ep.refreshRequests).toBe(2)
  })

  it("the issue step uses the live issuer and honours its overrides", async () => {
    const ep = await start()
    const rt = ep.mintRefreshToken()
    ep.script(
      { kind: "issue", expiresIn: null, extra: { id_token: "x" } },
      { kind: "issue", omitRefreshToken: true }
    )
    const a = (await (await refresh(ep, rt)).json()) as Record<string, unknown>
    expect(a).not.toHaveProperty("expires_in")
    expect(a.id_token).toBe("x")
    const next = a.refresh_token as string
    expect(ep.isActive(rt)).toBe(false)
    expect(ep.isActive(next)).toBe(true)

    const b = (await (await refresh(ep, next)).json()) as Record<string, unknown>
    expect(b).not.toHaveProperty("refresh_token")
    expect(b.expires_in).toBe(3600)
    // No replacement was issued, so the presented token must stay usable.
    expect(ep.isActive(next)).toBe(true)
    expect(ep.lastIssued()).toEqual({ accessToken: b.access_token, refreshToken: undefined })
  })

  it("a reset step makes fetch fail but the request is still recorded", async () => {
    const ep = await start()
    const rt = ep.mintRefreshToken()
    ep.script({ kind: "reset" })
    const cause = await fetchFailure(refresh(ep, rt))
    // resetAndDestroy() sends an RST, so the client sees ECONNRESET rather than a clean close.
    expect(cause?.code).toBe("ECONNRESET")
    expect(ep.requests).toHaveLength(1)
    expect(ep.refreshRequests).toBe(1)
    expect(ep.isActive(rt)).toBe(true)

    // The server survives the reset.
    expect((await refresh(ep, rt)).status).toBe(200)
  })

  it("a hung request is released by close()", async () => {
    const ep = await startScriptedTokenEndpoint()
    ep.script({ kind: "hang" })
    const pending = fetchFailure(refresh(ep, ep.mintRefreshToken()))
    await ep.waitForRequests(1)
    expect(ep.refreshRequests).toBe(1)

    // The hung request is never answered: close() resolving at all (within the test timeout) is the proof that it does
    // not wait for it. No wall-clock bound: a loaded machine may take its time.
    await ep.close()
    await pending
    // Nothing listens afterwards.
    await fetchFailure(refresh(ep, "rt_x"))
  })

  it("a withheld issue rotates the presented refresh token at once and never answers", async () => {
    const ep = await startScriptedTokenEndpoint()
    const rt = ep.mintRefreshToken()
    ep.script({ kind: "issue", withhold: true })
    const pending = fetchFailure(refresh(ep, rt))
    await ep.waitForRequests(1)
    expect(ep.isActive(rt)).toBe(false)
    expect(ep.isActive(ep.lastIssued()!.refreshToken!)).toBe(true)
    await ep.close()
    await pending
  })

  it("applies configured latency and per-step delays", async () => {
    const ep = await start({ latencyMs: 150 })
    const rt = ep.mintRefreshToken()
    let t = performance.now()
    expect((await refresh(ep, rt)).status).toBe(200)
    expect(performance.now() - t).toBeGreaterThanOrEqual(140)

    // Error answers from the default handler are delayed too.
    ep.setLatency(300)
    t = performance.now()
    expect((await refresh(ep, rt)).status).toBe(400)
    expect(performance.now() - t).toBeGreaterThanOrEqual(290)

    ep.setLatency(0)
    ep.script({ kind: "respond", status: 500, body: "boom", delayMs: 200 })
    t = performance.now()
    const res = await refresh(ep, rt)
    expect(performance.now() - t).toBeGreaterThanOrEqual(190)
    expect(res.status).toBe(500)
    expect(await res.text()).toBe("boom")
  })

  it("checks client authentication with form-encoded Basic credentials", async () => {
    const clientId = "my client"
    const clientSecret = "s3cr:t+/="
    const ep = await start({ clientId, clientSecret })
    const rt = ep.mintRefreshToken()

    const anonymous = await refresh(ep, rt)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get("www-authenticate")).toBe("Basic realm=\"scripted\"")
    expect(ep.isActive(rt)).toBe(true)

    const ok = await post(
      ep.url,
      { grant_type: "refresh_token", refresh_token: rt },
      { authorization: basic(formEncode(clientId), formEncode(clientSecret)) }
    )
    expect(ok.status).toBe(200)
    expect(ep.requests.at(-1)!.headers.authorization).toBe(
      "Basic " + Buffer.from("my+client:s3cr%3At%2B%2F%3D").toString("base64")
    )
    const rt1 = ((await ok.json()) as { refresh_token: string }).refresh_token

    // Unencoded credentials are wrong per §2.3.1: "+" decodes to a space.
    const naive = await post(
      ep.url,
      { grant_type: "refresh_token", refresh_token: rt1 },
      { authorization: basic(clientId, clientSecret) }
    )
    expect(naive.status).toBe(401)
    expect(naive.headers.get("www-authenticate")).toBe("Basic realm=\"scripted\"")
    expect(await naive.json()).toMatchObject({ error: "invalid_client" })
    expect(ep.isActive(rt1)).toBe(true)

    const wrongSecret = await refresh(ep, rt1, { client_id: clientId, client_secret: "nope" })
    expect(wrongSecret.status).toBe(401)

    const inBody = await refresh(ep, rt1, { client_id: clientId, client_secret: clientSecret })
    expect(inBody.status).toBe(200)
    expect(ep.isActive(rt1)).toBe(false)
  })

  it("freePort returns a port where connections are refused", async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    const cause = await fetchFailure(fetch(`http://127.0.0.1:${port}/token`, { method: "POST" }))
    expect(cause?.code).toBe("ECONNREFUSED")
  })
})
