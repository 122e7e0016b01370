/// <reference path="./oidc-provider.d.ts" />
/**
 * A REAL authorization server (oidc-provider 9.13.3, panva) on 127.0.0.1 for tests, the demo app and CLI
 * tests. Two confidential clients, authorization_code + PKCE with an auto-approving headless interaction,
 * refresh tokens (rotation with reuse detection on by default), introspection, revocation and userinfo.
 *
 * See /work/shared/reference/authorization-server-facts.md for what this server answers on the wire.
 */
import { createHash, generateKeyPair, randomBytes, type JsonWebKey } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { Socket } from "node:net"
import type { ClientInstance, default as ProviderClass, errors as providerErrors } from "oidc-provider"
import { MemoryAdapterStore, UnboundedMemoryAdapter } from "./MemoryAdapter.js"

export { MemoryAdapterStore, UnboundedMemoryAdapter, type AdapterPayload } from "./MemoryAdapter.js"
export { eventually, type EventuallyOptions, untilPast } from "./eventually.js"

export interface AuthServerOptions {
  /** default 0 (an ephemeral port) */
  readonly port?: number
  /** default 60 */
  readonly accessTokenTtlSeconds?: number
  /** default 3600; every rotated refresh token gets the full TTL again (sliding) */
  readonly refreshTokenTtlSeconds?: number
  /** default true: rotate refresh tokens on every use (reuse detection revokes the grant) */
  readonly rotation?: boolean
  /** default 0 (oidc-provider's own default is 15) */
  readonly clockToleranceSeconds?: number
}

export interface FixtureClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly authMethod: "client_secret_basic" | "client_secret_post"
}

export interface ObtainedGrant {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresIn: number
  readonly scope: string
  readonly idToken?: string
}

export interface AuthServer {
  /** http://127.0.0.1:<port> */
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly introspectionEndpoint: string
  readonly revocationEndpoint: string
  readonly userinfoEndpoint: string
  /**
   * a fresh snapshot on every read: after `setClientSecret`, older snapshots keep the old secret. `noRefresh` is a
   * client_secret_basic client registered without the refresh_token grant (authorization_code only): its refresh
   * requests get oidc-provider's `invalid_request` "requested grant type is not allowed for this client".
   */
  readonly clients: { readonly basic: FixtureClient; readonly post: FixtureClient; readonly noRefresh: FixtureClient }
  /** "openid", "offline_access", "api:read", "api:write" */
  readonly scopes: ReadonlyArray<string>
  /**
   * Headless authorization_code + PKCE (S256) with auto-approved login and consent (`prompt=consent`, so
   * `offline_access` is kept). Default scope "openid offline_access api:read api:write", default client
   * basic. Every call is a new session and a new grant. Rejects when no refresh token was issued (the scope
   * must contain offline_access).
   */
  obtainGrant(options?: { readonly client?: FixtureClient; readonly scope?: string }): Promise<ObtainedGrant>
  /** RFC 7662 introspection, authenticated as `client` (default basic); rejects on a non-200 answer */
  introspect(token: string, client?: FixtureClient): Promise<{ active: boolean } & Record<string, unknown>>
  /**
   * When the server expires an access or refresh token it issued, in epoch milliseconds, as it recorded on issuing
   * it; `undefined` for a token it did not issue. Unlike introspection, which answers a bare `{ active: false }` once
   * the token has expired, this stays known afterwards: with a 1 s TTL a token can expire within a millisecond of
   * being issued (oidc-provider counts whole seconds), so a test must not depend on asking before it does.
   */
  expiryOf(token: string): number | undefined
  /** RFC 7009 revocation, authenticated as `client` (default basic); revokes the whole grant; rejects on non-200 */
  revoke(token: string, client?: FixtureClient): Promise<void>
  /** token-endpoint requests that reached the server, by grant_type, counted before oidc-provider handles them */
  readonly tokenRequests: { readonly refresh: number; readonly authorizationCode: number }
  resetCounters(): void
  /** rotate a client's secret at runtime; the old secret fails with 401 invalid_client from then on */
  setClientSecret(client: "basic" | "post", secret: string): void
  /** closes the server and destroys all sockets; idempotent, never hangs */
  close(): Promise<void>
}

const SCOPES: ReadonlyArray<string> = ["openid", "offline_access", "api:read", "api:write"]
const DEFAULT_SCOPE = "openid offline_access api:read api:write"
const ACCOUNT_ID = "fixture-user"
const BASIC_CLIENT_ID = "client-basic"
const POST_CLIENT_ID = "client-post"
const NO_REFRESH_CLIENT_ID = "client-no-refresh"
const ROUTES = {
  authorization: "/auth",
  token: "/token",
  introspection: "/token/introspection",
  revocation: "/token/revocation",
  userinfo: "/me",
  interaction: "/interaction/",
  callback: "/cb"
} as const
const MAX_REDIRECTS = 20
/** How many token expiries `expiryOf` remembers (the oldest are forgotten first), so a long-running demo stays bounded. */
const MAX_REMEMBERED_EXPIRIES = 10_000
const EXPIRING_MODELS: ReadonlySet<string> = new Set(["AccessToken", "RefreshToken"])

interface PolicyClient {
  readonly clientId: string
  readonly clientAuthMethod: string
}
interface PolicyToken {
  readonly clientId?: string
}
interface PolicyContext {
  readonly oidc: { readonly client: PolicyClient }
}

type ProviderModule = { readonly default: typeof ProviderClass; readonly errors: typeof providerErrors }

let providerModule: Promise<ProviderModule> | undefined

/**
 * Loads oidc-provider once. Its entry module prints "Unsupported runtime. Use Node.js v22.x LTS" through
 * console.warn on Node 20 while it is evaluated; that single message is filtered out, nothing else.
 */
const loadProvider = (): Promise<ProviderModule> =>
  (providerModule ??= (async () => {
    const original = console.warn
    console.warn = (...args: Array<unknown>) => {
      const first = args[0]
      if (typeof first === "string" && first.includes("oidc-provider WARNING: Unsupported runtime")) return
      original.apply(console, args)
    }
    try {
      return await import("oidc-provider")
    } finally {
      console.warn = original
    }
  })())

let signingKey: Promise<JsonWebKey> | undefined

/** One RS256 signing key per process (ID tokens); generating it per server would only cost time. */
const loadSigningKey = (): Promise<JsonWebKey> =>
  (signingKey ??= new Promise<JsonWebKey>((resolve, reject) => {
    generateKeyPair("rsa", { modulusLength: 2048 }, (error, _publicKey, privateKey) => {
      if (error !== null) reject(error)
      else resolve({ ...privateKey.export({ format: "jwk" }), use: "sig", alg: "RS256" })
    })
  }))

const randomSecret = (): string => randomBytes(48).toString("base64url")

const base64url = (bytes: Buffer): string => bytes.toString("base64url")

const pathOf = (url: string | undefined): string => {
  const raw = url ?? "/"
  const query = raw.indexOf("?")
  return query === -1 ? raw : raw.slice(0, query)
}

/**
 * Observes the request body as Node's HTTP parser pushes it, without consuming the stream (oidc-provider
 * still reads it normally), and reports the parsed form once the body is complete. Must be installed
 * synchronously in the 'request' listener, before the parser delivers any body chunk.
 */
const tapFormBody = (req: IncomingMessage, onComplete: (form: URLSearchParams) => void): void => {
  const chunks: Array<Buffer> = []
  let size = 0
  const push = req.push.bind(req)
  req.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk === null) {
      req.push = push
      onComplete(new URLSearchParams(Buffer.concat(chunks).toString("utf8")))
    } else if (size <= 64 * 1024) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), encoding)
      size += buffer.length
      chunks.push(buffer)
    }
    return push(chunk, encoding)
  }
}

/** A tiny cookie jar: enough for oidc-provider's interaction/session cookies on one host. */
class CookieJar {
  readonly #cookies = new Map<string, string>()

  store(setCookies: ReadonlyArray<string>): void {
    for (const line of setCookies) {
      const [pair = "", ...attributes] = line.split(";")
      const eq = pair.indexOf("=")
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((attribute) => {
        const [key = "", attributeValue = ""] = attribute.split("=", 2).map((part) => part.trim())
        if (key.toLowerCase() === "max-age") return Number(attributeValue) <= 0
        if (key.toLowerCase() === "expires") return Date.parse(attributeValue) <= Date.now()
        return false
      })
      if (expired || value === "") this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }
}

const clientAuth = (
  client: FixtureClient
): { readonly headers: Record<string, string>; readonly body: Record<string, string> } =>
  client.authMethod === "client_secret_basic"
    ? {
        headers: {
          authorization: `Basic ${Buffer.from(
            `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`
          ).toString("base64")}`
        },
        body: {}
      }
    : { headers: {}, body: { client_id: client.clientId, client_secret: client.clientSecret } }

const postForm = (url: string, params: Record<string, string>, client: FixtureClient): Promise<Response> => {
  const auth = clientAuth(client)
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json", ...auth.headers },
    body: new URLSearchParams({ ...params, ...auth.body })
  })
}

const describeFailure = async (what: string, response: Response): Promise<Error> =>
  new Error(`${what}: HTTP ${response.status} ${await response.text()}`)

export const startAuthServer = async (options: AuthServerOptions = {}): Promise<AuthServer> => {
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 60
  const refreshTokenTtl = options.refreshTokenTtlSeconds ?? 3600
  const rotation = options.rotation ?? true
  const clockTolerance = options.clockToleranceSeconds ?? 0
  for (const [name, value] of [
    ["accessTokenTtlSeconds", accessTokenTtl],
    ["refreshTokenTtlSeconds", refreshTokenTtl]
  ] as const) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer`)
  }
  if (!Number.isSafeInteger(clockTolerance) || clockTolerance < 0) {
    throw new TypeError("clockToleranceSeconds must be a non-negative integer")
  }

  const [{ default: Provider, errors }, jwk] = await Promise.all([loadProvider(), loadSigningKey()])

  // Listen first: the issuer (and with it the redirect URI) needs the real port.
  const sockets = new Set<Socket>()
  const server = createServer()
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("unexpected server address")
  const issuer = `http://127.0.0.1:${address.port}`
  const redirectUri = `${issuer}${ROUTES.callback}`

  const secrets = { basic: randomSecret(), post: randomSecret(), noRefresh: randomSecret() }
  const clientMetadata = (
    clientId: string,
    secret: string,
    authMethod: FixtureClient["authMethod"],
    grantTypes: ReadonlyArray<string> = ["authorization_code", "refresh_token"]
  ) => ({
    client_id: clientId,
    client_secret: secret,
    token_endpoint_auth_method: authMethod,
    grant_types: [...grantTypes],
    response_types: ["code"],
    redirect_uris: [redirectUri]
  })

  const store = new MemoryAdapterStore()
  // Opaque tokens are stored under their value (the jti), with `exp` in epoch seconds in the payload.
  const expiries = new Map<string, number>()
  class RecordingAdapter extends UnboundedMemoryAdapter {
    override async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const exp = payload["exp"]
      if (EXPIRING_MODELS.has(this.model) && typeof exp === "number") {
        expiries.delete(id)
        expiries.set(id, exp * 1000)
        const oldest = expiries.keys().next()
        if (expiries.size > MAX_REMEMBERED_EXPIRIES && oldest.done !== true) expiries.delete(oldest.value)
      }
      return super.upsert(id, payload, expiresIn)
    }
  }
  const configuration = {
    adapter: (model: string) => new RecordingAdapter(model, store, clockTolerance),
    jwks: { keys: [jwk] },
    clients: [
      clientMetadata(BASIC_CLIENT_ID, secrets.basic, "client_secret_basic"),
      clientMetadata(POST_CLIENT_ID, secrets.post, "client_secret_post"),
      clientMetadata(NO_REFRESH_CLIENT_ID, secrets.noRefresh, "client_secret_basic", ["authorization_code"])
    ],
    scopes: [...SCOPES],
    clockTolerance,
    rotateRefreshToken: rotation,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // Both policies are oidc-provider's defaults, restated so they do not print "you SHOULD change it".
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx: PolicyContext, client: PolicyClient, token: PolicyToken) =>
          !(client.clientAuthMethod === "none" && token.clientId !== ctx.oidc.client.clientId)
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx: PolicyContext, client: PolicyClient, token: PolicyToken) => {
          if (token.clientId === client.clientId) return true
          if (client.clientAuthMethod === "none") return false
          throw new errors.InvalidRequest("client is not authorized to revoke the presented token")
        }
      },
      userinfo: { enabled: true },
      // Without resource indicators every access token is an opaque token for userinfo (introspectable).
      resourceIndicators: { enabled: false },
      rpInitiatedLogout: { enabled: false }
    },
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: refreshTokenTtl,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 14 * 24 * 3600,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600
    },
    findAccount: async (_ctx: unknown, sub: string) =>
      sub === ACCOUNT_ID ? { accountId: ACCOUNT_ID, claims: async () => ({ sub: ACCOUNT_ID }) } : undefined,
    // Explicit versions of defaults that otherwise print "you SHOULD change it" notices.
    clientBasedCORS: () => true,
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
      ctx.type = "json"
      ctx.body = out
    }
  }

  let provider: ProviderClass
  let basicClient: ClientInstance
  let postClient: ClientInstance
  try {
    provider = new Provider(issuer, configuration)
    // Materialise the static clients now so setClientSecret can mutate them synchronously.
    const [basic, post] = await Promise.all([provider.Client.find(BASIC_CLIENT_ID), provider.Client.find(POST_CLIENT_ID)])
    if (basic === undefined || post === undefined) throw new Error("fixture clients not registered")
    basicClient = basic
    postClient = post
  } catch (error) {
    server.close()
    server.closeAllConnections()
    throw error
  }

  const counters = { refresh: 0, authorizationCode: 0 }

  /** Auto-approves whatever oidc-provider asks: login as the fixture user, then consent to everything asked. */
  const interact = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res)
    const { prompt } = details
    if (prompt.name === "login") {
      await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false })
      return
    }
    if (prompt.name === "consent") {
      const clientId = details.params["client_id"]
      const accountId = details.session?.accountId
      if (typeof clientId !== "string" || accountId === undefined) throw new Error("consent without session")
      const existing = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)
      const grant = existing ?? new provider.Grant({ accountId, clientId })
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details
      if (missingOIDCScope !== undefined) grant.addOIDCScope(missingOIDCScope.join(" "))
      if (missingOIDCClaims !== undefined) grant.addOIDCClaims(missingOIDCClaims)
      for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(" "))
      }
      const grantId = await grant.save()
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true })
      return
    }
    throw new Error(`unsupported interaction prompt ${prompt.name}`)
  }

  const handle = provider.callback()
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req.url)
    if (req.method === "POST" && path === ROUTES.token) {
      tapFormBody(req, (form) => {
        const grantType = form.get("grant_type")
        if (grantType === "refresh_token") counters.refresh++
        else if (grantType === "authorization_code") counters.authorizationCode++
      })
    }
    if (path.startsWith(ROUTES.interaction)) {
      interact(req, res).catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy()
          return
        }
        // oidc-provider's errors (e.g. no interaction cookie) carry an HTTP status and a description
        const { status, error_description } = (error ?? {}) as { status?: unknown; error_description?: unknown }
        res.statusCode = typeof status === "number" && status >= 400 && status < 600 ? status : 500
        res.setHeader("content-type", "text/plain; charset=utf-8")
        const message = error instanceof Error ? error.message : String(error)
        res.end(`fixture interaction failed: ${message}${typeof error_description === "string" ? ` (${error_description})` : ""}`)
      })
      return
    }
    void handle(req, res)
  })

  const snapshot = (which: "basic" | "post" | "noRefresh"): FixtureClient =>
    which === "basic"
      ? { clientId: BASIC_CLIENT_ID, clientSecret: secrets.basic, authMethod: "client_secret_basic" }
      : which === "post"
      ? { clientId: POST_CLIENT_ID, clientSecret: secrets.post, authMethod: "client_secret_post" }
      : { clientId: NO_REFRESH_CLIENT_ID, clientSecret: secrets.noRefresh, authMethod: "client_secret_basic" }

  const tokenEndpoint = `${issuer}${ROUTES.token}`
  const introspectionEndpoint = `${issuer}${ROUTES.introspection}`
  const revocationEndpoint = `${issuer}${ROUTES.revocation}`

  const obtainGrant: AuthServer["obtainGrant"] = async (grantOptions = {}) => {
    const client = grantOptions.client ?? snapshot("basic")
    const scope = grantOptions.scope ?? DEFAULT_SCOPE
    const verifier = base64url(randomBytes(32))
    const state = base64url(randomBytes(16))
    const authorize = new URL(`${issuer}${ROUTES.authorization}`)
    authorize.search = new URLSearchParams({
      client_id: client.clientId,
      response_type: "code",
      redirect_uri: redirectUri,
      scope,
      state,
      prompt: "consent",
      code_challenge: base64url(createHash("sha256").update(verifier).digest()),
      code_challenge_method: "S256"
    }).toString()

    const jar = new CookieJar()
    let url = authorize.href
    let callback: URL | undefined
    for (let hop = 0; hop < MAX_REDIRECTS && callback === undefined; hop++) {
      const cookie = jar.header()
      const response = await fetch(url, { redirect: "manual", headers: cookie === "" ? {} : { cookie } })
      jar.store(response.headers.getSetCookie())
      const location = response.headers.get("location")
      if (response.status < 300 || response.status >= 400 || location === null) {
        throw await describeFailure(`authorization flow stopped at ${new URL(url).pathname}`, response)
      }
      await response.body?.cancel()
      const next = new URL(location, url)
      if (next.origin + next.pathname === redirectUri) callback = next
      else url = next.href
    }
    if (callback === undefined) throw new Error("authorization flow did not reach the redirect URI")
    const error = callback.searchParams.get("error")
    if (error !== null) {
      throw new Error(`authorization failed: ${error} ${callback.searchParams.get("error_description") ?? ""}`)
    }
    const code = callback.searchParams.get("code")
    if (code === null || callback.searchParams.get("state") !== state) {
      throw new Error(`authorization callback without code or with a wrong state: ${callback.href}`)
    }

    const response = await postForm(
      tokenEndpoint,
      { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier },
      client
    )
    if (response.status !== 200) throw await describeFailure("authorization_code grant failed", response)
    const body = (await response.json()) as Record<string, unknown>
    const { access_token, refresh_token, expires_in, id_token } = body
    if (typeof access_token !== "string" || typeof expires_in !== "number") {
      throw new Error(`unexpected token response: ${JSON.stringify(body)}`)
    }
    if (typeof refresh_token !== "string") {
      throw new Error(`no refresh token issued (scope must include offline_access): ${JSON.stringify(body)}`)
    }
    return {
      accessToken: access_token,
      refreshToken: refresh_token,
      expiresIn: expires_in,
      scope: typeof body["scope"] === "string" ? body["scope"] : scope,
      ...(typeof id_token === "string" ? { idToken: id_token } : {})
    }
  }

  const introspect: AuthServer["introspect"] = async (token, client = snapshot("basic")) => {
    const response = await postForm(introspectionEndpoint, { token }, client)
    if (response.status !== 200) throw await describeFailure("introspection failed", response)
    const body = (await response.json()) as { active: boolean } & Record<string, unknown>
    if (typeof body.active !== "boolean") throw new Error(`unexpected introspection response: ${JSON.stringify(body)}`)
    return body
  }

  const revoke: AuthServer["revoke"] = async (token, client = snapshot("basic")) => {
    const response = await postForm(revocationEndpoint, { token }, client)
    if (response.status !== 200) throw await describeFailure("revocation failed", response)
    await response.body?.cancel()
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
      for (const socket of sockets) socket.destroy()
    }))

  return {
    issuer,
    tokenEndpoint,
    introspectionEndpoint,
    revocationEndpoint,
    userinfoEndpoint: `${issuer}${ROUTES.userinfo}`,
    get clients() {
      return { basic: snapshot("basic"), post: snapshot("post"), noRefresh: snapshot("noRefresh") }
    },
    scopes: SCOPES,
    obtainGrant,
    introspect,
    expiryOf: (token) => expiries.get(token),
    revoke,
    get tokenRequests() {
      return { refresh: counters.refresh, authorizationCode: counters.authorizationCode }
    },
    resetCounters: () => {
      counters.refresh = 0
      counters.authorizationCode = 0
    },
    setClientSecret: (which, secret) => {
      if (secret.length === 0) throw new TypeError("client secret must not be empty")
      secrets[which] = secret
      ;(which === "basic" ? basicClient : postClient).clientSecret = secret
    },
    close
  }
}
