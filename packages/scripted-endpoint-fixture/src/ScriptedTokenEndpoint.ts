/**
 * A scripted loopback OAuth 2.0 token endpoint for fault-injection tests.
 *
 * Each request pops one queued `Step` (a canned answer, a normal token issue, a connection reset or a hang);
 * when the queue is empty a tiny but honest refresh-token endpoint answers (RFC 6749 §6 with rotation and
 * reuse detection). `/introspect` answers RFC 7662 from the same token table and never pops a step.
 * Plain `node:http` so it has no dependency on the code under test.
 */
import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export interface RecordedRequest {
  readonly method: string
  /** The request target as sent (path plus any query string). */
  readonly path: string
  readonly headers: Record<string, string | string[] | undefined>
  /** Parsed application/x-www-form-urlencoded body (first value wins; empty for other content types). */
  readonly form: Record<string, string>
  readonly rawBody: string
  /** Date.now() when the body had been fully read. */
  readonly receivedAt: number
}

export type Step =
  /** A canned answer; object bodies are JSON-encoded with content-type application/json. */
  | {
    readonly kind: "respond"
    readonly status: number
    readonly headers?: Record<string, string>
    readonly body?: string | object
    readonly delayMs?: number
  }
  /**
   * A normal token response from the built-in issuer, without checking the presented refresh token.
   * `expiresIn: null` omits the field; `extra` is merged over the standard fields. With `omitRefreshToken`
   * no new refresh token is issued, so the presented one stays live (RFC 6749 §6: the client keeps it). With
   * `withhold` the tokens are issued (the presented refresh token is rotated) at once but the answer is never sent
   * (until close()): a server that processed the request while its client died, however late the client dies.
   */
  | {
    readonly kind: "issue"
    readonly delayMs?: number
    readonly withhold?: boolean
    readonly expiresIn?: number | null
    readonly omitRefreshToken?: boolean
    readonly extra?: Record<string, unknown>
  }
  /** Destroy the socket with a TCP RST without answering (ECONNRESET / "socket hang up" for the client). */
  | { readonly kind: "reset"; readonly delayMs?: number }
  /** Accept the request and never answer (until close()). */
  | { readonly kind: "hang" }

export interface ScriptedTokenEndpointOptions {
  /** Default true: every successful refresh issues a NEW refresh token and consumes the presented one. */
  readonly rotation?: boolean
  /** Default 3600, used by the default handler and "issue". */
  readonly accessTokenTtlSeconds?: number
  /** Default 0, added before every default-handler answer (not before scripted steps; they have delayMs). */
  readonly latencyMs?: number
  /**
   * When set, the default handler checks client authentication (HTTP Basic with form-encoded id and secret per
   * RFC 6749 §2.3.1, or client_id/client_secret in the body) and answers 401 invalid_client on mismatch.
   */
  readonly clientId?: string
  readonly clientSecret?: string
  /**
   * Default 0. For this long after a refresh token was consumed by a rotation, presenting it again is accepted (a new
   * pair is issued) instead of revoking the chain: the "reuse interval" some servers offer (Okta, Auth0).
   */
  readonly reuseGraceMs?: number
}

/** One token response the built-in issuer produced (default handler or "issue" step), answered or not. */
export interface IssuedTokens {
  readonly accessToken: string
  readonly refreshToken: string | undefined
  /** The refresh token that was presented, if any. */
  readonly presented: string | undefined
  /** The `expires_in` sent, if any. */
  readonly expiresIn: number | undefined
  /** Date.now() when the response was built (before any socket write). */
  readonly issuedAt: number
}

export interface ScriptedTokenEndpoint {
  /** http://127.0.0.1:<port>/token */
  readonly url: string
  /**
   * http://127.0.0.1:<port>/introspect (RFC 7662: `active` from the token table; same client authentication; answered
   * after `latencyMs`).
   */
  readonly introspectionUrl: string
  readonly port: number
  /**
   * Snapshot of every request that reached the server, in order (recorded before its step is applied), introspection
   * requests included.
   */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Count of grant_type=refresh_token requests, scripted or not. */
  readonly refreshRequests: number
  /** Number of queued steps not yet consumed by a request. */
  readonly pendingSteps: number
  /** Queue steps; each request pops one; when the queue is empty, the default handler runs. */
  script(...steps: ReadonlyArray<Step>): void
  /** Register a fresh valid refresh token with the built-in issuer and return it. */
  mintRefreshToken(): string
  /** Is it a live refresh token for the built-in issuer. */
  isActive(refreshToken: string): boolean
  lastIssued(): { accessToken: string; refreshToken: string | undefined } | undefined
  /** Every token response the issuer built, in order (including ones whose client had gone). */
  readonly issuedTokens: ReadonlyArray<IssuedTokens>
  /** Every refresh token the issuer ever minted (seeded or issued), to look for leaks. */
  readonly knownRefreshTokens: ReadonlyArray<string>
  /** How many grant_type=refresh_token requests presented `refreshToken`. */
  presentations(refreshToken: string): number
  setLatency(ms: number): void
  /**
   * Resolves once at least `count` requests have been recorded (rejects after timeoutMs, default 30 000: generous, it
   * only bounds a hang; a loaded machine can be slow to send).
   */
  waitForRequests(count: number, timeoutMs?: number): Promise<void>
  /** Closes the server AND destroys all open sockets, including hung ones. Idempotent. */
  close(): Promise<void>
}

type TokenRecord = {
  status: "active" | "consumed" | "revoked"
  successor: string | undefined
  /** Date.now() when a rotation consumed it. */
  consumedAt?: number
}

const JSON_HEADERS = {
  "content-type": "application/json",
  // RFC 6749 §5.1: token responses must not be cached.
  "cache-control": "no-store",
  pragma: "no-cache"
} as const

const token = (prefix: string) => prefix + randomBytes(24).toString("base64url")

/** application/x-www-form-urlencoded decoding of one component ("+" is a space). Undefined if malformed. */
const formDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

const isFormContentType = (header: string | undefined) =>
  header !== undefined && header.split(";")[0]!.trim().toLowerCase() === "application/x-www-form-urlencoded"

export const startScriptedTokenEndpoint = async (
  options: ScriptedTokenEndpointOptions = {}
): Promise<ScriptedTokenEndpoint> => {
  const rotation = options.rotation ?? true
  const ttl = options.accessTokenTtlSeconds ?? 3600
  const authRequired = options.clientId !== undefined || options.clientSecret !== undefined
  let latencyMs = options.latencyMs ?? 0
  const reuseGraceMs = options.reuseGraceMs ?? 0
  const issuedLog: Array<IssuedTokens> = []

  const queue: Array<Step> = []
  const requests: Array<RecordedRequest> = []
  // Counted as they arrive: tests ask per refresh token, thousands of times.
  const presented = new Map<string, number>()
  let refreshRequestCount = 0
  const tokens = new Map<string, TokenRecord>()
  const sockets = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const waiters = new Set<() => void>()
  let issued: { accessToken: string; refreshToken: string | undefined } | undefined
  let closed = false
  let closing: Promise<void> | undefined

  // Timers are tracked so close() can cancel delayed answers instead of leaving them to fire later.
  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) return fn()
    const timer = setTimeout(() => {
      timers.delete(timer)
      if (!closed) fn()
    }, ms)
    timers.add(timer)
  }

  const mint = () => {
    const rt = token("rt_")
    tokens.set(rt, { status: "active", successor: undefined })
    return rt
  }

  // Reuse detection: the replayed token and every token that descended from it are revoked.
  const revokeChain = (start: string) => {
    let current: string | undefined = start
    while (current !== undefined) {
      const record = tokens.get(current)
      if (record === undefined) return
      record.status = "revoked"
      current = record.successor
    }
  }

  const issue = (
    presented: string | undefined,
    scope: string,
    expiresIn: number | null,
    omitRefreshToken: boolean,
    extra: Record<string, unknown>
  ) => {
    const accessToken = token("at_")
    let refreshToken: string | undefined
    if (!omitRefreshToken) {
      if (rotation) {
        refreshToken = mint()
        const record = presented === undefined ? undefined : tokens.get(presented)
        // Only an active token is consumed: an already consumed one keeps its chain link for reuse detection.
        if (record !== undefined && record.status === "active") {
          record.status = "consumed"
          record.successor = refreshToken
          record.consumedAt = Date.now()
        }
      } else {
        refreshToken = presented ?? mint()
      }
    }
    issued = { accessToken, refreshToken }
    issuedLog.push({
      accessToken,
      refreshToken,
      presented,
      expiresIn: expiresIn === null ? undefined : expiresIn,
      issuedAt: Date.now()
    })
    return {
      access_token: accessToken,
      token_type: "Bearer",
      ...(expiresIn === null ? {} : { expires_in: expiresIn }),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      scope,
      ...extra
    }
  }

  const send = (res: ServerResponse, status: number, headers: Record<string, string>, body: string) => {
    if (closed || res.destroyed || res.headersSent) return
    // A scripted content-length is kept as given: a wrong one is a legitimate fault to inject.
    const hasLength = Object.keys(headers).some((h) => h.toLowerCase() === "content-length")
    res.writeHead(status, hasLength ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) })
    res.end(body)
  }

  const sendJson = (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) =>
    send(res, status, { ...JSON_HEADERS, ...headers }, JSON.stringify(body))

  const oauthError = (
    res: ServerResponse,
    status: number,
    error: string,
    description?: string,
    headers: Record<string, string> = {}
  ) => sendJson(res, status, description === undefined ? { error } : { error, error_description: description }, headers)

  const invalidClient = (res: ServerResponse) =>
    oauthError(res, 401, "invalid_client", "client authentication failed", {
      "www-authenticate": "Basic realm=\"scripted\""
    })

  /** Returns true when the request may proceed; otherwise it has already answered. */
  const checkClient = (req: IncomingMessage, params: URLSearchParams, res: ServerResponse): boolean => {
    const authorization = req.headers.authorization
    const basic = authorization !== undefined && /^basic\s+/i.test(authorization)
    let id: string | undefined
    let secret: string | undefined
    if (basic) {
      if (params.has("client_secret")) {
        // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
        oauthError(res, 400, "invalid_request", "multiple client authentication methods")
        return false
      }
      const decoded = Buffer.from(authorization.replace(/^basic\s+/i, ""), "base64").toString("utf8")
      const colon = decoded.indexOf(":")
      if (colon < 0) {
        invalidClient(res)
        return false
      }
      id = formDecode(decoded.slice(0, colon))
      secret = formDecode(decoded.slice(colon + 1))
      const bodyId = params.get("client_id")
      if (bodyId !== null && bodyId !== id) {
        invalidClient(res)
        return false
      }
    } else {
      id = params.get("client_id") ?? undefined
      secret = params.get("client_secret") ?? undefined
    }
    const idOk = options.clientId === undefined || id === options.clientId
    const secretOk = options.clientSecret === undefined || secret === options.clientSecret
    if (!idOk || !secretOk) {
      invalidClient(res)
      return false
    }
    return true
  }

  const defaultAnswer = (req: IncomingMessage, rawBody: string, res: ServerResponse) => {
    const pathname = new URL(req.url ?? "/", "http://127.0.0.1").pathname
    if (pathname !== "/token") return oauthError(res, 404, "not_found")
    if (req.method !== "POST") return oauthError(res, 405, "invalid_request", "use POST", { allow: "POST" })
    if (!isFormContentType(req.headers["content-type"])) {
      return oauthError(res, 400, "invalid_request", "body must be application/x-www-form-urlencoded")
    }
    const params = new URLSearchParams(rawBody)
    const keys = [...params.keys()]
    // RFC 6749 §3.2: request parameters MUST NOT be included more than once.
    if (new Set(keys).size !== keys.length) return oauthError(res, 400, "invalid_request", "repeated parameter")
    if (authRequired && !checkClient(req, params, res)) return
    const grantType = params.get("grant_type")
    if (grantType === null) return oauthError(res, 400, "invalid_request", "missing grant_type")
    if (grantType !== "refresh_token") return oauthError(res, 400, "unsupported_grant_type")
    const presented = params.get("refresh_token")
    if (presented === null || presented === "") {
      return oauthError(res, 400, "invalid_request", "missing refresh_token")
    }
    const record = tokens.get(presented)
    const inGrace = record !== undefined && record.status === "consumed" && record.consumedAt !== undefined &&
      Date.now() - record.consumedAt < reuseGraceMs
    if (!inGrace && (record === undefined || record.status !== "active")) {
      if (record !== undefined && record.status === "consumed" && rotation) revokeChain(presented)
      return oauthError(res, 400, "invalid_grant", "grant request is invalid")
    }
    sendJson(res, 200, issue(presented, params.get("scope") ?? "read write", ttl, false, {}))
  }

  // RFC 7662: `active` as the token table says; unknown tokens are inactive. Authenticated like the token endpoint.
  const introspectionAnswer = (req: IncomingMessage, rawBody: string, res: ServerResponse) => {
    if (req.method !== "POST") return oauthError(res, 405, "invalid_request", "use POST", { allow: "POST" })
    const params = new URLSearchParams(rawBody)
    if (authRequired && !checkClient(req, params, res)) return
    const presented = params.get("token")
    if (presented === null) return oauthError(res, 400, "invalid_request", "missing token")
    const record = tokens.get(presented)
    const active = record !== undefined && record.status === "active"
    sendJson(res, 200, active ? { active: true, token_type: "refresh_token" } : { active: false })
  }

  const applyStep = (step: Step, req: IncomingMessage, form: Record<string, string>, res: ServerResponse) => {
    switch (step.kind) {
      case "respond":
        return later(step.delayMs ?? 0, () => {
          if (step.body === undefined) return send(res, step.status, step.headers ?? {}, "")
          if (typeof step.body === "string") return send(res, step.status, step.headers ?? {}, step.body)
          const hasContentType = Object.keys(step.headers ?? {}).some((h) => h.toLowerCase() === "content-type")
          const headers = hasContentType ? step.headers ?? {} : { "content-type": "application/json", ...step.headers }
          send(res, step.status, headers, JSON.stringify(step.body))
        })
      case "issue":
        if (step.withhold === true) {
          const expiresIn = step.expiresIn === undefined ? ttl : step.expiresIn
          issue(form.refresh_token, form.scope ?? "read write", expiresIn, step.omitRefreshToken ?? false, step.extra ?? {})
          return
        }
        return later(step.delayMs ?? 0, () => {
          const expiresIn = step.expiresIn === undefined ? ttl : step.expiresIn
          const scope = form.scope ?? "read write"
          sendJson(res, 200, issue(form.refresh_token, scope, expiresIn, step.omitRefreshToken ?? false, step.extra ?? {}))
        })
      case "reset":
        return later(step.delayMs ?? 0, () => {
          // RST rather than FIN so the client sees ECONNRESET, not a clean close.
          req.socket.resetAndDestroy()
        })
      case "hang":
        return
    }
  }

  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    // A client that aborts mid-request is not our failure; just drop it.
    req.on("error", () => {})
    req.on("end", () => {
      if (closed) return
      const rawBody = Buffer.concat(chunks).toString("utf8")
      const form: Record<string, string> = {}
      if (isFormContentType(req.headers["content-type"])) {
        for (const [key, value] of new URLSearchParams(rawBody)) if (!(key in form)) form[key] = value
      }
      // Recorded before the step is applied, so reset/hang requests are still counted.
      requests.push({
        method: req.method ?? "",
        path: req.url ?? "",
        headers: { ...req.headers },
        form,
        rawBody,
        receivedAt: Date.now()
      })
      if (form.grant_type === "refresh_token") {
        refreshRequestCount++
        if (form.refresh_token !== undefined) presented.set(form.refresh_token, (presented.get(form.refresh_token) ?? 0) + 1)
      }
      for (const wake of [...waiters]) wake()
      if (new URL(req.url ?? "/", "http://127.0.0.1").pathname === "/introspect") {
        return later(latencyMs, () => introspectionAnswer(req, rawBody, res))
      }
      const step = queue.shift()
      if (step !== undefined) applyStep(step, req, form, res)
      else later(latencyMs, () => defaultAnswer(req, rawBody, res))
    })
  })

  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port

  const waitForRequests = (count: number, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      if (requests.length >= count) return resolve()
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`expected ${count} requests within ${timeoutMs}ms, got ${requests.length}`))
      }, timeoutMs)
      const check = () => {
        if (requests.length < count) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve()
      }
      waiters.add(check)
    })

  const close = () => {
    if (closing !== undefined) return closing
    closed = true
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
    closing = new Promise<void>((resolve) => {
      // server.close() alone waits for open connections; destroying them is what keeps hung requests from blocking.
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
      sockets.clear()
    })
    return closing
  }

  return {
    url: `http://127.0.0.1:${port}/token`,
    introspectionUrl: `http://127.0.0.1:${port}/introspect`,
    port,
    get requests() {
      return requests.slice()
    },
    get refreshRequests() {
      return refreshRequestCount
    },
    get pendingSteps() {
      return queue.length
    },
    script: (...steps) => {
      queue.push(...steps)
    },
    mintRefreshToken: mint,
    isActive: (refreshToken) => tokens.get(refreshToken)?.status === "active",
    lastIssued: () => (issued === undefined ? undefined : { ...issued }),
    get issuedTokens() {
      return issuedLog.slice()
    },
    get knownRefreshTokens() {
      return [...tokens.keys()]
    },
    presentations: (refreshToken) => presented.get(refreshToken) ?? 0,
    setLatency: (ms) => {
      latencyMs = ms
    },
    waitForRequests,
    close
  }
}

/** A loopback port with nothing listening on it, for connection-refused tests (racy in theory, fine on loopback). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close((err) => (err ? reject(err) : resolve(port)))
    })
  })
