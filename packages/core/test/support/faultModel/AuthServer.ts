/**
 * A simulated authorization server, in process: the engine reaches it through an `@effect/platform` HttpClient built
 * with `HttpClient.make`, so latency is a sleep on the simulated clock and a request costs microseconds.
 *
 * It behaves like oidc-provider with refresh-token rotation: each refresh consumes the presented refresh token and
 * issues a new one; presenting a consumed token again is taken as theft and revokes the whole grant family — unless
 * it comes within the reuse grace period, where the successor is handed out again. Optional RFC 7662 introspection.
 *
 * Faults are scripted per token request, in arrival order. The server processes a request when it arrives (a
 * rotation happens even if the answer is then delayed past the client's timeout, or the connection is reset after
 * it), and it records every presentation with what it did and whether the client could have seen the answer: the
 * material invariant I1 is judged on.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import type { SimTime } from "./SimTime.js"

export const CLIENT_ID = "fault-model-client"
/** Every secret the server hands out contains this marker, so I6 can look for one string. */
export const CANARY = "CANARY"
export const CLIENT_SECRET = `${CANARY}-client-secret-5b1e`
export const TOKEN_URL = "https://as.test/token"
export const INTROSPECTION_URL = "https://as.test/introspect"
/** The client's `Authorization` header (client_secret_basic). */
export const BASIC = `Basic ${btoa(`${CLIENT_ID}:${CLIENT_SECRET}`)}`
/** Strings that must never appear in an error, a log line or a span (I6). */
export const canaryNeedles: ReadonlyArray<string> = [CANARY, BASIC.slice("Basic ".length)]

/** What the server does with one token request. */
export type Fault =
  | { readonly _tag: "Ok"; readonly latencyMs: number }
  /** Answers after the client's per-attempt timeout; the refresh itself happened. */
  | { readonly _tag: "Slow"; readonly latencyMs: number }
  | { readonly _tag: "ServerError"; readonly status: 500 | 502 | 503; readonly retryAfterSec?: number | undefined }
  | { readonly _tag: "RateLimited"; readonly retryAfterSec: number }
  /** The connection fails before the request is written: the server never sees it. */
  | { readonly _tag: "ResetBeforeSend" }
  /** The server processes the request (rotates), then the connection is reset before the answer arrives. */
  | { readonly _tag: "ResetAfterProcessing"; readonly latencyMs: number }
  /** The server rotates and answers 200 with a body that is not JSON. */
  | { readonly _tag: "Garbled"; readonly latencyMs: number }
  /** The grant was revoked (the user withdrew consent): `invalid_grant`, the family is dead. */
  | { readonly _tag: "InvalidGrant" }
  /** `invalid_grant` for a token that stays active (a policy rejection); introspection says active. */
  | { readonly _tag: "InvalidGrantKeep" }
  | { readonly _tag: "InvalidClient" }

export interface ServerConfig {
  /** Rotates refresh tokens. Without rotation the refresh token stays the same and no reuse can happen. */
  readonly rotate: boolean
  /** Re-presenting a consumed token within this long after its consumption returns its successor. */
  readonly graceMs: number
  readonly introspection: boolean
  readonly accessTtlSec: number
  /** The client's per-attempt timeout, to tell a timed-out attempt from an abandoned one. */
  readonly clientTimeoutMs: number
}

/** Why the client could not see the answer to a request the server processed. */
export type LostBy = "timeout" | "reset" | "garbled" | "crash" | "abandoned"

export interface Presentation {
  readonly id: number
  readonly at: number
  readonly instance: number
  readonly token: string
  readonly fault: Fault["_tag"]
  /** False for a connection that failed before the request was written. */
  readonly reached: boolean
  /** The token's state when the request arrived. */
  stateOnArrival: "active" | "consumed" | "revoked" | "unknown" | "not-looked-at"
  /** What the server did. */
  result:
    | "rotated"
    | "refreshed"
    | "grace"
    | "reuse-revoked"
    | "rejected-revoked"
    | "revoked-by-fault"
    | "rejected-kept"
    | "not-processed"
  answer: "pending" | "seen" | "lost"
  lostBy?: LostBy
  lostAt?: number
  /** Set when this presentation breaks I1: why. */
  i1?: string
}

interface RefreshTokenState {
  readonly value: string
  readonly label: string
  readonly family: Family
  status: "active" | "consumed"
  consumedAt?: number
  consumedBy?: Presentation
  successor?: RefreshTokenState
}

export interface Family {
  readonly id: number
  readonly key: string
  revoked: boolean
  revokedBy?: "fault" | "reuse"
  revokedAt?: number
  tokens: number
}

export interface AccessTokenState {
  readonly family: Family
  readonly expiresAt: number
}

export interface Authorization {
  readonly accessToken: string
  readonly refreshToken: string
  readonly expiresIn: number
}

export interface AuthServer {
  readonly config: ServerConfig
  readonly presentations: ReadonlyArray<Presentation>
  readonly families: ReadonlyArray<Family>
  /** The HttpClient an engine instance uses; requests are tagged with the instance. */
  readonly client: (instance: number) => HttpClient.HttpClient
  /** A new authorization (authorization-code exchange) for `key`: a new grant family. */
  readonly authorize: (key: string) => Authorization
  readonly accessToken: (value: string) => AccessTokenState | undefined
  /** Whether the server would accept this refresh token now. */
  readonly usable: (refreshToken: string) => boolean
  /** Unconsumed and not revoked: the grant's live refresh token (a consumed one tolerated by a grace period is not). */
  readonly active: (refreshToken: string) => boolean
  readonly refreshToken: (value: string) => RefreshTokenState | undefined
  /** A short, secret-free name for a token: `f3#2` (family 3, third refresh token). */
  readonly label: (token: string) => string
  /** Requests of a crashed instance that were awaiting their answer: the answer is lost with the process. */
  readonly crashed: (instance: number) => void
  /** From now on every request succeeds quickly (I5). */
  readonly stopFaults: () => void
  readonly requestCount: () => number
}

const json = (request: HttpClientRequest.HttpClientRequest, status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpClientResponse.fromWeb(
    request,
    new Response(typeof body === "string" ? body : JSON.stringify(body), {
      status,
      headers: { "content-type": typeof body === "string" ? "text/html" : "application/json", ...headers }
    })
  )

const transportFailure = (request: HttpClientRequest.HttpClientRequest, code: string) =>
  new HttpClientError.RequestError({
    request,
    reason: "Transport",
    cause: Object.assign(new Error(code === "ECONNREFUSED" ? "connect ECONNREFUSED" : "socket hang up"), { code })
  })

const formOf = (request: HttpClientRequest.HttpClientRequest): URLSearchParams =>
  new URLSearchParams(request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : "")

export const make = (config: ServerConfig, time: SimTime, faults: ReadonlyArray<Fault>): AuthServer => {
  const presentations: Array<Presentation> = []
  const families: Array<Family> = []
  const refreshTokens = new Map<string, RefreshTokenState>()
  const accessTokens = new Map<string, AccessTokenState>()
  let script = faults
  let requests = 0
  let atSeq = 0

  const mintRefreshToken = (family: Family): RefreshTokenState => {
    const n = family.tokens++
    const state: RefreshTokenState = {
      value: `${CANARY}-rt-f${family.id}-${n}`,
      label: `f${family.id}#${n}`,
      family,
      status: "active"
    }
    refreshTokens.set(state.value, state)
    return state
  }
  const mintAccessToken = (family: Family): string => {
    const value = `${CANARY}-at-f${family.id}-${atSeq++}`
    accessTokens.set(value, { family, expiresAt: time.now() + config.accessTtlSec * 1000 })
    return value
  }

  const usable = (value: string): boolean => {
    const state = refreshTokens.get(value)
    if (state === undefined || state.family.revoked) return false
    if (state.status === "active") return true
    return withinGrace(state)
  }
  const withinGrace = (state: RefreshTokenState) =>
    config.graceMs > 0 && state.consumedAt !== undefined && time.now() < state.consumedAt + config.graceMs &&
    state.successor?.status === "active"

  const revoke = (family: Family, by: "fault" | "reuse") => {
    if (family.revoked) return
    family.revoked = true
    family.revokedBy = by
    family.revokedAt = time.now()
  }

  /**
   * I1, judged when a consumed token arrives again: allowed only as a recovery of a rotation whose answer the client
   * provably could not see (timeout, reset, garbled body, crash): its successor is held by no one, so reuse detection
   * can revoke nothing anyone can use.
   */
  const judgeReuse = (p: Presentation, state: RefreshTokenState): string | undefined => {
    const first = state.consumedBy
    if (first === undefined) return undefined
    const t = (at: number) => `t=${at - time.start}`
    const where = `${state.label} was consumed by request #${first.id} of instance ${first.instance} at ${t(first.at)}`
    if (first.answer === "seen") {
      return `${where}, whose answer the client received; it was presented again by request #${p.id} of instance ${p.instance} at ${t(p.at)}`
    }
    if (first.answer === "pending") {
      return `${where}, still awaiting its answer; request #${p.id} of instance ${p.instance} presented it again at ${t(p.at)}`
    }
    if (first.lostBy === "abandoned") {
      return `${where}; the client abandoned that request ${first.lostAt! - first.at} ms after sending it (before its ${config.clientTimeoutMs} ms timeout), losing the rotation, and request #${p.id} of instance ${p.instance} presented it again at ${t(p.at)}`
    }
    // Its successor reached no client, so presenting it again can only revoke a family nobody can use; after the first
    // such presentation (which reuse detection answers by revoking it) there is nothing left to revoke.
    return undefined
  }

  const tokenEndpoint = (request: HttpClientRequest.HttpClientRequest, instance: number) =>
    Effect.suspend(() => {
      const scripted: Fault = script[requests] ?? { _tag: "Ok", latencyMs: 20 }
      // Without introspection the engine cannot tell a kept token from a revoked one: only revocations then.
      const fault: Fault = scripted._tag === "InvalidGrantKeep" && !config.introspection ? { _tag: "InvalidGrant" } : scripted
      requests++
      const form = formOf(request)
      const token = form.get("refresh_token") ?? ""
      const p: Presentation = {
        id: presentations.length + 1,
        at: time.now(),
        instance,
        token,
        fault: fault._tag,
        reached: fault._tag !== "ResetBeforeSend",
        stateOnArrival: "not-looked-at",
        result: "not-processed",
        answer: "pending"
      }
      presentations.push(p)
      if (fault._tag === "ResetBeforeSend") {
        p.answer = "seen"
        return Effect.fail(transportFailure(request, "ECONNREFUSED"))
      }
      // Answers that do not depend on the token: nothing is processed.
      const early = (status: number, body: unknown, headers?: Record<string, string>) => {
        p.answer = "seen"
        return Effect.succeed(json(request, status, body, headers))
      }
      if (request.headers["authorization"] !== BASIC || fault._tag === "InvalidClient") {
        return early(401, { error: "invalid_client", error_description: "client authentication failed" })
      }
      if (fault._tag === "ServerError") {
        return early(
          fault.status,
          "<html><body>upstream unavailable</body></html>",
          fault.retryAfterSec !== undefined ? { "retry-after": String(fault.retryAfterSec) } : {}
        )
      }
      if (fault._tag === "RateLimited") {
        return early(429, { error: "too_many_requests" }, { "retry-after": String(fault.retryAfterSec) })
      }

      const state = refreshTokens.get(token)
      const invalidGrant = { error: "invalid_grant", error_description: "grant request is invalid" }
      let answer: { status: number; body: unknown }
      if (state === undefined) {
        p.stateOnArrival = "unknown"
        p.result = "rejected-revoked"
        answer = { status: 400, body: invalidGrant }
      } else if (state.status === "consumed" && !state.family.revoked && withinGrace(state)) {
        p.stateOnArrival = "consumed"
        p.result = "grace"
        answer = { status: 200, body: tokenBody(mintAccessToken(state.family), state.successor!.value) }
      } else if (state.status === "consumed") {
        p.stateOnArrival = "consumed"
        const verdict = judgeReuse(p, state)
        if (verdict !== undefined) p.i1 = verdict
        p.result = "reuse-revoked"
        revoke(state.family, "reuse")
        answer = { status: 400, body: invalidGrant }
      } else if (state.family.revoked) {
        p.stateOnArrival = "revoked"
        p.result = "rejected-revoked"
        answer = { status: 400, body: invalidGrant }
      } else if (fault._tag === "InvalidGrant") {
        p.stateOnArrival = "active"
        p.result = "revoked-by-fault"
        revoke(state.family, "fault")
        answer = { status: 400, body: invalidGrant }
      } else if (fault._tag === "InvalidGrantKeep") {
        p.stateOnArrival = "active"
        p.result = "rejected-kept"
        answer = { status: 400, body: invalidGrant }
      } else if (config.rotate) {
        p.stateOnArrival = "active"
        p.result = "rotated"
        const successor = mintRefreshToken(state.family)
        state.status = "consumed"
        state.consumedAt = time.now()
        state.consumedBy = p
        state.successor = successor
        answer = { status: 200, body: tokenBody(mintAccessToken(state.family), successor.value) }
      } else {
        p.stateOnArrival = "active"
        p.result = "refreshed"
        answer = { status: 200, body: tokenBody(mintAccessToken(state.family), undefined) }
      }

      const latency = "latencyMs" in fault ? fault.latencyMs : 10
      const lost = (by: LostBy) => {
        if (p.answer !== "pending") return
        p.answer = "lost"
        p.lostBy = by
        p.lostAt = time.now()
      }
      return Effect.sleep(latency).pipe(
        // Interrupted while the answer is on its way: the client gave up on it (its timeout, or anything else).
        Effect.onInterrupt(() =>
          Effect.sync(() => lost(time.now() - p.at >= config.clientTimeoutMs ? "timeout" : "abandoned"))
        ),
        Effect.flatMap(() => {
          if (fault._tag === "ResetAfterProcessing") {
            lost("reset")
            return Effect.fail(transportFailure(request, "ECONNRESET"))
          }
          if (fault._tag === "Garbled" && answer.status === 200) {
            lost("garbled")
            return Effect.succeed(json(request, 200, "<html>Service Unavailable</html"))
          }
          if (p.answer === "pending") p.answer = "seen"
          return Effect.succeed(json(request, answer.status, answer.body))
        })
      )
    })

  const tokenBody = (accessToken: string, refreshToken: string | undefined) => ({
    access_token: accessToken,
    token_type: "Bearer",
    expires_in: config.accessTtlSec,
    ...(refreshToken !== undefined ? { refresh_token: refreshToken } : {})
  })

  const introspectionEndpoint = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.sync(() => {
      if (request.headers["authorization"] !== BASIC) return json(request, 401, { error: "invalid_client" })
      const value = formOf(request).get("token") ?? ""
      const state = refreshTokens.get(value)
      const active = state !== undefined && !state.family.revoked && state.status === "active"
      return json(request, 200, { active })
    })

  return {
    config,
    presentations,
    families,
    client: (instance) =>
      HttpClient.make((request, url) => {
        if (url.href === TOKEN_URL) return tokenEndpoint(request, instance)
        if (config.introspection && url.href === INTROSPECTION_URL) return introspectionEndpoint(request)
        return Effect.succeed(json(request, 404, { error: "not_found" }))
      }),
    authorize: (key) => {
      const family: Family = { id: families.length + 1, key, revoked: false, tokens: 0 }
      families.push(family)
      return {
        accessToken: mintAccessToken(family),
        refreshToken: mintRefreshToken(family).value,
        expiresIn: config.accessTtlSec
      }
    },
    accessToken: (value) => accessTokens.get(value),
    usable,
    active: (value: string) => {
      const state = refreshTokens.get(value)
      return state !== undefined && !state.family.revoked && state.status === "active"
    },
    refreshToken: (value) => refreshTokens.get(value),
    label: (token) => refreshTokens.get(token)?.label ?? "unknown-token",
    crashed: (instance) => {
      for (const p of presentations) {
        if (p.instance === instance && p.answer === "pending") {
          p.answer = "lost"
          p.lostBy = "crash"
          p.lostAt = time.now()
        }
      }
    },
    stopFaults: () => {
      script = []
      requests = 0
    },
    requestCount: () => presentations.length
  }
}
