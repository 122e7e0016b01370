/**
 * The token endpoint error table, as data: one row per kind of answer (or transport outcome) the refresh request can
 * meet, with the tagged error (or token response) it must map to. Shared by ErrorTable.test.ts (which checks the
 * mapping row by row) and Redaction.test.ts (which checks that no row leaks a secret anywhere).
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { RefreshError, TokenEndpoint } from "@renew/core"
import type { Token } from "@renew/core"
import { assert, expect } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import {
  freePort,
  type RecordedRequest,
  startScriptedTokenEndpoint,
  type Step
} from "@renew/scripted-endpoint-fixture"

/** Values that must never show up in a message, a log line, a span or a serialised error. */
export const CANARY = {
  clientSecret: "CANARY-client-secret-7f3a9c2e",
  refreshToken: "rt_CANARY_refresh_5b1d",
  /** Returned by the server in 200 bodies only. */
  accessToken: "at_CANARY_access_c41e",
  /** A new (rotated) refresh token returned by the server in 200 bodies. */
  rotatedRefreshToken: "rt_CANARY_rotated_93d0"
} as const

export const CLIENT_ID = "renew-test-client"

export type Tag = RefreshError.RefreshError["_tag"]
export type ErrorOf<T extends Tag> = Extract<RefreshError.RefreshError, { readonly _tag: T }>

/** A word (or phrase) telling the reader what to do, per tag: every message must carry its remedy. */
export const remedy: Record<Tag, RegExp> = {
  InvalidGrant: /must authorize again/i,
  InvalidClient: /check the client id and secret/i,
  UnauthorizedClient: /enable the refresh_token grant/i,
  InvalidScope: /request the original scope/i,
  InvalidRequest: /configuration or server problem/i,
  UnsupportedGrantType: /check the token endpoint url/i,
  RateLimited: /retries after the requested delay/i,
  ServerError: /retries with backoff/i,
  NetworkError: /check DNS/i,
  Timeout: /raise the per-attempt timeout/i,
  MalformedResponse: /server or proxy problem/i,
  NoRefreshToken: /authorize again/i,
  GrantNotFound: /authorize first/i,
  StoreError: /check the store/i,
  LockTimeout: /retry later/i,
  StaleWrite: /read the grant again/i,
  EngineClosed: /create a new engine/i
}

interface RowBase {
  readonly name: string
  /**
   * Scripted answers; a function of the instant the row runs at (the TestClock's time, epoch millis) when a header
   * depends on it (HTTP-date Retry-After).
   */
  readonly steps?: ReadonlyArray<Step> | ((now: number) => ReadonlyArray<Step>)
  /** Where the request goes: the scripted endpoint (default), a closed loopback port, or an unresolvable host. */
  readonly target?: "scripted" | "refused" | "dns"
  /** Per-attempt timeout of the endpoint. Default 5 s. */
  readonly timeout?: Duration.DurationInput
  /** Scope requested with the refresh. */
  readonly scope?: string
}

export interface FailureRow<T extends Tag = Tag> extends RowBase {
  readonly expectTag: T
  readonly retryable: boolean
  /** The OAuth fields the error must carry; a key set to undefined must be absent. */
  readonly oauth?: {
    readonly status?: number | undefined
    readonly oauthError?: string | undefined
    readonly errorDescription?: string | undefined
  }
  readonly expect?: (error: ErrorOf<T>) => void
}

export interface SuccessRow extends RowBase {
  readonly expectTag: "Success"
  readonly expect: (response: Token.TokenResponse) => void
}

export type ErrorRow = FailureRow | SuccessRow

const failure = <T extends Tag>(row: FailureRow<T>): ErrorRow => row as unknown as ErrorRow
const success = (row: Omit<SuccessRow, "expectTag">): ErrorRow => ({ ...row, expectTag: "Success" })

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }
const json = (status: number, body: object, headers: Record<string, string> = {}): Step => ({
  kind: "respond",
  status,
  headers: { ...JSON_HEADERS, ...headers },
  body
})
const text = (status: number, contentType: string, body: string, headers: Record<string, string> = {}): Step => ({
  kind: "respond",
  status,
  headers: { "content-type": contentType, ...headers },
  body
})

const HTML_500 = `<!DOCTYPE html>
<html><head><title>500 Internal Server Error</title><style>body { color: red }</style></head>
<body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p>
<script>console.log("x")</script></body></html>`

const WAF_403 = `<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden</h1></center>
<hr><center>Request blocked by web application firewall. Reference #18.5f2e3b17</center></body></html>`

// A framework debug page that dumps the whole request, secrets included.
const DEBUG_500 = `<html><body><h1>Unhandled exception</h1><pre>
POST /token
authorization: Basic ${Buffer.from(`${CLIENT_ID}:${CANARY.clientSecret}`).toString("base64")}
body: grant_type=refresh_token&amp;refresh_token=${CANARY.refreshToken}&amp;client_secret=${CANARY.clientSecret}
</pre></body></html>`

const tokenBody = (extra: Record<string, unknown> = {}) => ({
  access_token: CANARY.accessToken,
  token_type: "Bearer",
  expires_in: 3600,
  refresh_token: CANARY.rotatedRefreshToken,
  scope: "openid offline_access api:read",
  ...extra
})

const hasNoTags = (s: string | undefined) => {
  assert(s !== undefined)
  expect(s.split("<redacted>").join("")).not.toMatch(/<\/?[a-zA-Z][^>]*>/)
}

export const errorTable: ReadonlyArray<ErrorRow> = [
  // --- RFC 6749 §5.2 errors, 400 JSON (wire shapes of oidc-provider 9.13.3) ---
  failure({
    name: "400 invalid_grant",
    steps: [json(400, { error: "invalid_grant", error_description: "grant request is invalid" })],
    expectTag: "InvalidGrant",
    retryable: false,
    oauth: { status: 400, oauthError: "invalid_grant", errorDescription: "grant request is invalid" }
  }),
  failure({
    name: "400 invalid_client",
    steps: [json(400, { error: "invalid_client", error_description: "client authentication failed" })],
    expectTag: "InvalidClient",
    retryable: false,
    oauth: { status: 400, oauthError: "invalid_client", errorDescription: "client authentication failed" }
  }),
  failure({
    name: "400 unauthorized_client",
    steps: [json(400, {
      error: "unauthorized_client",
      error_description: "requested grant type is not allowed for this client"
    })],
    expectTag: "UnauthorizedClient",
    retryable: false,
    oauth: {
      status: 400,
      oauthError: "unauthorized_client",
      errorDescription: "requested grant type is not allowed for this client"
    }
  }),
  failure({
    name: "400 invalid_scope (carries the requested scope)",
    scope: "openid offline_access api:read api:write",
    steps: [json(400, {
      error: "invalid_scope",
      error_description: "refresh token missing requested scope",
      scope: "api:write"
    })],
    expectTag: "InvalidScope",
    retryable: false,
    oauth: { status: 400, oauthError: "invalid_scope", errorDescription: "refresh token missing requested scope" },
    expect: (e) => {
      expect(e.requestedScope).toBe("openid offline_access api:read api:write")
      expect(e.message).toContain("openid offline_access api:read api:write")
    }
  }),
  failure({
    name: "400 invalid_request",
    steps: [json(400, { error: "invalid_request", error_description: "missing required parameter 'refresh_token'" })],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: {
      status: 400,
      oauthError: "invalid_request",
      errorDescription: "missing required parameter 'refresh_token'"
    }
  }),
  failure({
    name: "400 unsupported_grant_type",
    steps: [json(400, { error: "unsupported_grant_type", error_description: "unsupported grant_type requested" })],
    expectTag: "UnsupportedGrantType",
    retryable: false,
    oauth: { status: 400, oauthError: "unsupported_grant_type", errorDescription: "unsupported grant_type requested" }
  }),
  // --- 401 ---
  failure({
    name: "401 invalid_client JSON with WWW-Authenticate",
    steps: [json(401, { error: "invalid_client", error_description: "client authentication failed" }, {
      "www-authenticate":
        "Basic realm=\"http://127.0.0.1\", error=\"invalid_client\", error_description=\"client authentication failed\""
    })],
    expectTag: "InvalidClient",
    retryable: false,
    oauth: { status: 401, oauthError: "invalid_client", errorDescription: "client authentication failed" }
  }),
  failure({
    name: "401 with only WWW-Authenticate and an empty body",
    steps: [{
      kind: "respond",
      status: 401,
      headers: {
        "www-authenticate": "Basic error=\"invalid_client\", error_description=\"the \\\"secret\\\" is wrong\""
      }
    }],
    expectTag: "InvalidClient",
    retryable: false,
    oauth: { status: 401, oauthError: "invalid_client", errorDescription: "the \"secret\" is wrong" }
  }),
  failure({
    name: "401 with no body and no WWW-Authenticate",
    steps: [{ kind: "respond", status: 401 }],
    expectTag: "InvalidClient",
    retryable: false,
    oauth: { status: 401, oauthError: undefined, errorDescription: undefined }
  }),
  // --- 429 ---
  failure({
    name: "429 with Retry-After delay-seconds",
    steps: [json(429, { error: "rate_limited" }, { "retry-after": "7" })],
    expectTag: "RateLimited",
    retryable: true,
    oauth: { status: 429 },
    expect: (e) => {
      expect(e.retryAfterMillis).toBe(7000)
      expect(e.message).toContain("7s")
    }
  }),
  failure({
    name: "429 with an HTTP-date Retry-After",
    // HTTP-dates have one-second resolution: now+5 s is written as 4-5 s from now (the same now the client reads).
    steps: (now) => [{
      kind: "respond",
      status: 429,
      headers: { "retry-after": new Date(now + 5000).toUTCString() }
    }],
    expectTag: "RateLimited",
    retryable: true,
    oauth: { status: 429, oauthError: undefined },
    expect: (e) => {
      assert(e.retryAfterMillis !== undefined)
      expect(e.retryAfterMillis).toBeGreaterThanOrEqual(3000)
      expect(e.retryAfterMillis).toBeLessThanOrEqual(5000)
    }
  }),
  // --- server failures ---
  failure({
    name: "503 temporarily_unavailable JSON",
    steps: [json(503, { error: "temporarily_unavailable", error_description: "try later" })],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 503, oauthError: "temporarily_unavailable", errorDescription: "try later" }
  }),
  failure({
    name: "500 HTML error page",
    steps: [text(500, "text/html", HTML_500)],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 500, oauthError: undefined },
    expect: (e) => {
      hasNoTags(e.bodyExcerpt)
      expect(e.bodyExcerpt).toContain("Internal Server Error")
      // script and style content is dropped with the tags
      expect(e.bodyExcerpt).not.toContain("console.log")
      expect(e.bodyExcerpt).not.toContain("color: red")
    }
  }),
  failure({
    name: "502 plain text",
    steps: [text(502, "text/plain", "Bad Gateway\n")],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 502, oauthError: undefined },
    expect: (e) => expect(e.bodyExcerpt).toBe("Bad Gateway")
  }),
  failure({
    name: "403 HTML from a WAF",
    steps: [text(403, "text/html", WAF_403)],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 403, oauthError: undefined },
    expect: (e) => {
      hasNoTags(e.bodyExcerpt)
      expect(e.bodyExcerpt).toContain("web application firewall")
    }
  }),
  failure({
    name: "500 debug page quoting the request (secrets elided)",
    steps: [text(500, "text/html", DEBUG_500)],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 500 },
    expect: (e) => {
      hasNoTags(e.bodyExcerpt)
      expect(e.bodyExcerpt).toContain("Unhandled exception")
      expect(e.bodyExcerpt).toContain("<redacted>")
    }
  }),
  failure({
    name: "404 (wrong endpoint path)",
    steps: [text(404, "text/html", "<html><body>Cannot POST /token</body></html>")],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: { status: 404, oauthError: undefined }
  }),
  failure({
    name: "400 invalid_request whose description quotes the refresh token and secret",
    steps: [json(400, {
      error: "invalid_request",
      error_description: `bad refresh_token ${CANARY.refreshToken} for secret ${CANARY.clientSecret}`
    })],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: { status: 400, oauthError: "invalid_request", errorDescription: "bad refresh_token <redacted> for secret <redacted>" }
  }),
  // --- 200 answers ---
  failure({
    name: "200 carrying an OAuth error (GitHub style)",
    steps: [json(200, { error: "invalid_grant", error_description: "The refresh token passed is incorrect or expired." })],
    expectTag: "InvalidGrant",
    retryable: false,
    oauth: {
      status: 200,
      oauthError: "invalid_grant",
      errorDescription: "The refresh token passed is incorrect or expired."
    }
  }),
  failure({
    name: "200 with GitHub's bad_refresh_token code",
    steps: [json(200, { error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired." })],
    expectTag: "InvalidGrant",
    retryable: false,
    oauth: {
      status: 200,
      oauthError: "bad_refresh_token",
      errorDescription: "The refresh token passed is incorrect or expired."
    }
  }),
  failure({
    name: "200 HTML (not JSON)",
    steps: [text(200, "text/html", "<html><body><h1>Sign in</h1></body></html>")],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.status).toBe(200)
      expect(e.detail).toMatch(/not JSON/)
      hasNoTags(e.bodyExcerpt)
    }
  }),
  failure({
    name: "200 truncated JSON",
    steps: [text(200, "application/json", "{\"access_token\":\"at_x\",\"tok")],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toMatch(/truncated/)
      expect(e.message).not.toContain("at_x")
      expect(e.bodyExcerpt).not.toContain("at_x")
    }
  }),
  failure({
    name: "200 truncated JSON carrying the canary tokens",
    steps: [text(
      200,
      "application/json",
      `{"access_token":"${CANARY.accessToken}","refresh_token":"${CANARY.rotatedRefreshToken}","expires_in":36`
    )],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => expect(e.detail).toMatch(/truncated/)
  }),
  failure({
    name: "200 missing access_token",
    steps: [json(200, { token_type: "Bearer", expires_in: 3600 })],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => expect(e.detail).toContain("access_token")
  }),
  failure({
    name: "200 with token_type mac (carrying the canary tokens)",
    steps: [json(200, tokenBody({ token_type: "mac" }))],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toContain("token_type")
      expect(e.detail).toContain("mac")
    }
  }),
  success({
    // An empty refresh_token is no refresh token: the access token is kept, the previous refresh token stays.
    name: "200 with an empty refresh_token (carrying the canary access token)",
    steps: [json(200, tokenBody({ refresh_token: "" }))],
    expect: (r) => {
      expect(r.refresh_token).toBeUndefined()
      expect(r.ignored).toEqual(["refresh_token"])
      expect(Redacted.value(r.access_token)).toBe(CANARY.accessToken)
    }
  }),
  success({
    name: "200 with null optional members (null is absent, nothing ignored)",
    steps: [json(200, tokenBody({ expires_in: null, refresh_expires_in: null, scope: null, id_token: null }))],
    expect: (r) => {
      expect(r.expires_in).toBeUndefined()
      expect(r.scope).toBeUndefined()
      expect(r.ignored).toBeUndefined()
      assert(r.refresh_token !== undefined)
      expect(Redacted.value(r.refresh_token)).toBe(CANARY.rotatedRefreshToken)
    }
  }),
  success({
    name: "200 with unusable optional members (ignored by name, the token pair kept)",
    steps: [json(200, tokenBody({ expires_in: "abc", refresh_expires_in: -5, scope: ["api:read"] }))],
    expect: (r) => {
      expect(r.expires_in).toBeUndefined()
      expect(r.refresh_expires_in).toBeUndefined()
      expect(r.scope).toBeUndefined()
      expect(r.ignored).toEqual(["expires_in", "refresh_expires_in", "scope"])
      assert(r.refresh_token !== undefined)
      expect(Redacted.value(r.refresh_token)).toBe(CANARY.rotatedRefreshToken)
    }
  }),
  failure({
    name: "200 without access_token but with a new refresh token (kept on the error, never shown)",
    steps: [json(200, { token_type: "Bearer", expires_in: 3600, refresh_token: CANARY.rotatedRefreshToken })],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toBe("missing access_token")
      assert(e.rotatedRefreshToken !== undefined)
      expect(Redacted.value(e.rotatedRefreshToken)).toBe(CANARY.rotatedRefreshToken)
      expect(e.message).toContain("new refresh token")
    }
  }),
  failure({
    name: "200 with token_type null and a new refresh token (kept on the error)",
    steps: [json(200, tokenBody({ token_type: null }))],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toBe("missing token_type")
      assert(e.rotatedRefreshToken !== undefined)
      expect(Redacted.value(e.rotatedRefreshToken)).toBe(CANARY.rotatedRefreshToken)
    }
  }),
  failure({
    name: "200 body longer than 64 KiB (read no further)",
    steps: [text(200, "application/json", `{"access_token":"${CANARY.accessToken}","pad":"${"x".repeat(70_000)}"}`)],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => expect(e.detail).toMatch(/body truncated/)
  }),
  failure({
    name: "503 body longer than 64 KiB (excerpt says truncated)",
    steps: [text(503, "text/plain", `Service Unavailable ${"y ".repeat(40_000)}`)],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 503 },
    expect: (e) => {
      expect(e.bodyExcerpt).toMatch(/^Service Unavailable /)
      expect(e.bodyExcerpt).toMatch(/body truncated at 64 KiB/)
    }
  }),
  // --- redirects: never followed (the Location names a host that would answer nothing good) ---
  failure({
    name: "302 to another origin",
    steps: [text(302, "text/html", "<a href=\"https://login.example.com/sso\">Found</a>", {
      location: `https://login.example.com/sso?code=${CANARY.refreshToken}&state=x`
    })],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: { status: 302 },
    expect: (e) => {
      expect(e.redirectTo).toBe("login.example.com")
      expect(e.message).toContain("redirect (HTTP 302) to login.example.com")
      expect(e.message).not.toContain("/sso")
    }
  }),
  failure({
    name: "307 to another origin",
    steps: [{ kind: "respond", status: 307, headers: { location: "http://127.0.0.1:9/token" } }],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: { status: 307 },
    expect: (e) => expect(e.redirectTo).toBe("127.0.0.1:9")
  }),
  failure({
    name: "308 with a relative Location (same host)",
    steps: [{ kind: "respond", status: 308, headers: { location: "/oauth2/token" } }],
    expectTag: "InvalidRequest",
    retryable: false,
    oauth: { status: 308 },
    expect: (e) => expect(e.redirectTo).toMatch(/^127\.0\.0\.1:\d+$/)
  }),
  // --- a proxy's page echoing the request ---
  failure({
    name: "502 proxy page echoing the Authorization header (Basic credentials redacted)",
    steps: [text(
      502,
      "text/plain",
      `upstream failed; request headers: authorization: Basic ${
        Buffer.from(`${CLIENT_ID}:${CANARY.clientSecret}`).toString("base64")
      }\nx-forwarded-for: 10.0.0.1`
    )],
    expectTag: "ServerError",
    retryable: true,
    oauth: { status: 502 },
    expect: (e) => {
      expect(e.bodyExcerpt).toMatch(/authorization: (Basic )?<redacted> x-forwarded-for: 10\.0\.0\.1$/)
    }
  }),
  // --- oidc-provider's "this client may not use this grant" (invalid_request) ---
  failure({
    name: "400 invalid_request: requested grant type is not allowed for this client (oidc-provider)",
    steps: [json(400, { error: "invalid_request", error_description: "requested grant type is not allowed for this client" })],
    expectTag: "UnauthorizedClient",
    retryable: false,
    oauth: {
      status: 400,
      oauthError: "invalid_request",
      errorDescription: "requested grant type is not allowed for this client"
    }
  }),
  failure({
    name: "200 form-encoded token response (carrying the canary tokens)",
    // What GitHub answers when the client does not ask for JSON.
    steps: [text(
      200,
      "application/x-www-form-urlencoded",
      `access_token=${CANARY.accessToken}&expires_in=28800&refresh_token=${CANARY.rotatedRefreshToken}&scope=&token_type=bearer`
    )],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toMatch(/not JSON/)
      expect(e.bodyExcerpt).toContain("access_token=<redacted>")
    }
  }),
  failure({
    name: "200 Python-repr body, single quotes (carrying the canary tokens)",
    // A server that answers str(dict) instead of JSON.
    steps: [text(
      200,
      "text/plain",
      `{'access_token': '${CANARY.accessToken}', 'token_type': 'Bearer', 'refresh_token': '${CANARY.rotatedRefreshToken}'}`
    )],
    expectTag: "MalformedResponse",
    retryable: false,
    expect: (e) => {
      expect(e.detail).toMatch(/not JSON/)
      expect(e.bodyExcerpt).toContain("'access_token': '<redacted>'")
      expect(e.bodyExcerpt).toContain("'token_type': 'Bearer'")
    }
  }),
  success({
    name: "200 with expires_in as a numeric string",
    steps: [json(200, { access_token: CANARY.accessToken, token_type: "Bearer", expires_in: "3600" })],
    expect: (r) => {
      expect(r.expires_in).toBe(3600)
      expect(r.refresh_token).toBeUndefined()
    }
  }),
  success({
    name: "200 with every field",
    steps: [json(200, tokenBody({ id_token: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln" }))],
    expect: (r) => {
      assert(Redacted.isRedacted(r.access_token))
      expect(Redacted.value(r.access_token)).toBe(CANARY.accessToken)
      assert(r.refresh_token !== undefined && Redacted.isRedacted(r.refresh_token))
      expect(Redacted.value(r.refresh_token)).toBe(CANARY.rotatedRefreshToken)
      expect(r.token_type).toBe("Bearer")
      expect(r.expires_in).toBe(3600)
      expect(r.scope).toBe("openid offline_access api:read")
    }
  }),
  // --- transport ---
  failure({
    name: "connection refused",
    target: "refused",
    expectTag: "NetworkError",
    retryable: true,
    expect: (e) => {
      expect(e.detail).toContain("ECONNREFUSED")
      expect(e.host).toMatch(/^127\.0\.0\.1:\d+$/)
    }
  }),
  failure({
    name: "connection reset before the answer",
    steps: [{ kind: "reset" }],
    expectTag: "NetworkError",
    retryable: true,
    expect: (e) => expect(e.detail.length).toBeGreaterThan(0)
  }),
  failure({
    name: "DNS failure",
    target: "dns",
    // `.invalid` never resolves (RFC 6761). On this sandbox the resolver answers ENOTFOUND at once. Rows run on the
    // TestClock, so the timeout never fires here; a resolver that hung would fail the row at vitest's test timeout.
    timeout: "2 seconds",
    expectTag: "NetworkError",
    retryable: true,
    expect: (e) => {
      expect(e.host).toBe("renew-test.invalid")
      expect(e.detail).toMatch(/ENOTFOUND|EAI_AGAIN/)
    }
  }),
  failure({
    name: "hang (no answer within the per-attempt timeout)",
    steps: [{ kind: "hang" }],
    timeout: "300 millis",
    expectTag: "Timeout",
    retryable: true,
    expect: (e) => {
      expect(e.timeoutMillis).toBe(300)
      expect(e.message).toContain("0.3s")
    }
  })
]

export interface RowRun {
  readonly exit: Exit.Exit<Token.TokenResponse, RefreshError.RefreshError | RefreshError.ConfigurationError>
  readonly requests: ReadonlyArray<RecordedRequest>
  /**
   * For a row whose server hangs: whether the attempt had ended 1 ms (of the TestClock) before its per-attempt
   * timeout. It must not have: the timeout, not anything else, ends it.
   */
  readonly endedBeforeTimeout?: boolean
}

const hangs = (steps: ReadonlyArray<Step>): boolean => steps.some((step) => step.kind === "hang")

/**
 * Runs one row on the TestClock (callers use `it.effect`): starts a scripted endpoint, queues the row's steps, makes
 * one refresh through the public TokenEndpoint (client_secret_basic with the canary secret, the canary refresh token),
 * and closes the endpoint. The TestClock starts at the wall clock's now and stands still, and a row's steps are
 * written for that same instant, so an HTTP-date is read against the instant it was written for, however long the
 * request takes. When the server hangs, the clock is moved
 * through the per-attempt timeout only once the server has the request: the timeout fires after the request was
 * sent, whatever the machine's speed (a real 300 ms timer could fire before a loaded machine had sent it).
 */
export const runRow = (
  row: ErrorRow,
  overrides: Partial<TokenEndpoint.TokenEndpointOptions> = {}
): Effect.Effect<RowRun, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startScriptedTokenEndpoint()),
      (ep) => Effect.promise(() => ep.close())
    )
    const now = Date.now()
    yield* TestClock.setTime(now)
    const steps = typeof row.steps === "function" ? row.steps(now) : row.steps ?? []
    server.script(...steps)
    const url = row.target === "refused"
      ? `http://127.0.0.1:${yield* Effect.promise(freePort)}/token`
      : row.target === "dns"
      ? "https://renew-test.invalid/token"
      : server.url
    const timeout = row.timeout ?? Duration.seconds(5)
    const attempt = yield* TokenEndpoint.make({
      url,
      clientId: CLIENT_ID,
      clientSecret: Redacted.make(CANARY.clientSecret),
      timeout,
      ...overrides
    }).pipe(
      Effect.flatMap((endpoint) =>
        endpoint.refresh({
          refreshToken: Redacted.make(CANARY.refreshToken),
          ...(row.scope !== undefined ? { scope: row.scope } : {})
        })
      ),
      Effect.exit,
      Effect.fork
    )
    if (!hangs(steps)) return { exit: yield* Fiber.join(attempt), requests: server.requests }
    yield* Effect.promise(() => server.waitForRequests(1))
    yield* TestClock.adjust(Duration.toMillis(timeout) - 1)
    const endedBeforeTimeout = Option.isSome(yield* Fiber.poll(attempt))
    yield* TestClock.adjust(1)
    return { exit: yield* Fiber.join(attempt), requests: server.requests, endedBeforeTimeout }
  }).pipe(Effect.scoped)

/** Checks the outcome of a row against its expectations (tag, retryable, OAuth fields, remedy, row checks). */
export const checkRow = (row: ErrorRow, exit: RowRun["exit"]): void => {
  if (row.expectTag === "Success") {
    assert(Exit.isSuccess(exit), `expected a token response, got ${Exit.isFailure(exit) ? String(exit.cause) : ""}`)
    row.expect(exit.value)
    return
  }
  assert(Exit.isFailure(exit), "expected a failure, got a token response")
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  assert(error !== undefined, `expected one typed failure, got ${String(exit.cause)}`)
  expect(error._tag).toBe(row.expectTag)
  assert(RefreshError.isRefreshError(error))
  expect(error.retryable).toBe(row.retryable)
  expect(error.message).toMatch(remedy[row.expectTag])
  if (row.oauth !== undefined) {
    for (const [key, value] of Object.entries(row.oauth)) {
      expect((error as unknown as Record<string, unknown>)[key], key).toBe(value)
    }
    // The server's own words are quoted in the message.
    if (row.oauth.oauthError !== undefined) expect(error.message).toContain(row.oauth.oauthError)
    if (row.oauth.status !== undefined) expect(error.message).toContain(`HTTP ${row.oauth.status}`)
  }
  row.expect?.(error as never)
}
