/**
 * The client service, built the way Renew's README tells users to build theirs: an Effect application that composes
 * Renew's layers (Refresher + TokenEndpoint with introspection + the SQLite store + FailureRateMonitor, the
 * RefreshScheduler keeping the grant fresh in the background, RefreshEvents telling its state changes) over an
 * HttpClient, and calls the protected API through `BearerClient.withBearer`.
 *
 * It calls the API on an interval and serves its own HTTP endpoints: `GET /call`, `/login`, and the admin and chaos
 * switches under `/admin`.
 */
import { FetchHttpClient, HttpClient, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import {
  BearerClient,
  FailureRateMonitor,
  Refresher,
  RefreshEvents,
  RefreshScheduler,
  TokenEndpoint,
  TokenStore
} from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createServer } from "node:http"
import * as Path from "node:path"
import { type DemoAuthServer, fingerprint } from "./authServer.js"
import type { ChaosProxy } from "./chaosProxy.js"
import type { DemoConfig } from "./config.js"
import { demoRemedy, event, eventCounts, formatMillis, refreshCounts, tellEvent, writeRaw } from "./output.js"
import type { ResourceApi } from "./resourceApi.js"

/** The grant the client service holds: one user of the demo's authorization server. */
export const GRANT_KEY = "demo-user"

/** What the demo last saw issued to the client (a fingerprint, never the token). */
export interface Issued {
  refreshTokenFingerprint: string | undefined
}

// --- 1. the engine, composed as in Renew's README -----------------------------------------------------------------

export const RenewLive = (options: {
  readonly tokenUrl: string
  readonly introspectionUrl: string
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string>
  readonly storeFile: string
  readonly skewMillis: number
  readonly minValidityMillis: number
  readonly sweepIntervalMillis: number | undefined
  readonly invalidClientPauseMillis: number
}) => {
  const engine = Refresher.layer({
    skew: Duration.millis(options.skewMillis),
    minValidity: Duration.millis(options.minValidityMillis),
    invalidClientPause: Duration.millis(options.invalidClientPauseMillis)
  }).pipe(
    // Merged: the scheduler refreshes through the same endpoint and store.
    Layer.provideMerge(TokenEndpoint.layer({
      url: options.tokenUrl,
      // With introspection, an invalid_grant says why: expired or revoked.
      introspectionUrl: options.introspectionUrl,
      clientId: options.clientId,
      clientSecret: options.clientSecret
    })),
    // A grant's state changes (needs re-authorization, failing, recovered), told as `event` lines.
    Layer.provide(RefreshEvents.layer(tellEvent)),
    // A short window, so that the chaos switches raise (and clear) the alert while you watch.
    Layer.provideMerge(FailureRateMonitor.layer({ window: "1 minute", threshold: 0.5, minVolume: 3 })),
    Layer.provideMerge(SqliteTokenStore.layer({ filename: options.storeFile })),
    Layer.provideMerge(FetchHttpClient.layer)
  )
  // The background scheduler: every grant in the store refreshed ahead of its expiry, with no caller waiting.
  return options.sweepIntervalMillis === undefined
    ? engine
    : RefreshScheduler.layer({ interval: Duration.millis(options.sweepIntervalMillis) }).pipe(Layer.provideMerge(engine))
}

// --- 2. the application -------------------------------------------------------------------------------------------

interface CallResult {
  readonly call: number
  readonly ok: boolean
  readonly status?: number
  readonly latencyMs: number
  readonly body?: unknown
  readonly error?: { readonly _tag: string; readonly message: string }
}

const html = (title: string, body: string) =>
  HttpServerResponse.html(`<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;line-height:1.5}code{background:#eee;padding:0 .2rem}</style>
</head><body><h1>${title}</h1>${body}<p><a href="/">home</a> · <a href="/admin/status">status</a></p></body></html>`)

/**
 * When Renew refreshes here. A refreshed token's lifetime is counted from the request, less one second (`expires_in`
 * has whole seconds). The scheduler's due time is `2 × skew` before expiry, less a jitter of up to a tenth of the
 * lifetime (both within the first half of the lifetime); the first call past `skew` before expiry (at most half the
 * lifetime) starts a background refresh; callers wait only past `minValidity` before expiry.
 */
const refreshPolicy = (config: DemoConfig): string => {
  const ttl = config.accessTokenTtlSeconds * 1000
  const lifetime = Math.max(ttl - 1000, ttl / 2)
  const prefetchAfter = lifetime - Math.min(config.skewMillis, lifetime / 2)
  const staleAfter = Math.max(prefetchAfter, lifetime - config.minValidityMillis)
  const callers = `a call would start one about ${formatMillis(prefetchAfter)} after each refresh (expiry − skew ${
    formatMillis(config.skewMillis)
  })${staleAfter > prefetchAfter ? `, and calls would wait for it after ${formatMillis(staleAfter)}` : ""}`
  if (config.sweepIntervalMillis === undefined) return `no scheduler (--sweep-interval off); ${callers}`
  const margin = Math.min(2 * config.skewMillis, lifetime / 2)
  const jitter = Math.max(0, Math.min(0.1 * lifetime, lifetime / 2 - margin))
  const latest = lifetime - margin
  const due = jitter > 0 ? `${formatMillis(latest - jitter)}–${formatMillis(latest)}` : formatMillis(latest)
  return `the scheduler (a sweep every ${formatMillis(config.sweepIntervalMillis)}) refreshes the grant about ${due} after each refresh; ${callers}`
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

export const run = (ctx: {
  readonly config: DemoConfig
  readonly auth: DemoAuthServer
  readonly proxy: ChaosProxy
  readonly api: ResourceApi
  readonly issued: Issued
  readonly traces: string
}) => {
  const { api: resourceApi, auth, config, issued, proxy } = ctx
  const storeFile = Path.join(config.dataDir, "renew-grants.sqlite")

  const program = Effect.gen(function*() {
    const refresher = yield* Refresher.Refresher
    const store = yield* TokenStore.TokenStore
    const monitor = yield* FailureRateMonitor.FailureRateMonitor
    // The API client: every request carries the grant's access token; a 401 refreshes once and replays once.
    const api = (yield* HttpClient.HttpClient).pipe(BearerClient.withBearer(GRANT_KEY))

    const stats = {
      calls: 0,
      ok: 0,
      failed: 0,
      authorizations: 0,
      lastFailure: undefined as { readonly _tag: string; readonly message: string } | undefined
    }
    /** The failure of the previous call, to tell a run of identical failures in one line each. */
    let previousFailure: { readonly tag: string; readonly call: number } | undefined

    // -- authorization: authorization code + PKCE against the demo's server, which approves on its own.
    const authorize = (why: string) =>
      Effect.gen(function*() {
        yield* event("auth", `${why}: authorizing (authorization code + PKCE; the demo's server approves on its own)`)
        const grant = yield* Effect.tryPromise({
          try: () => auth.server.obtainGrant({ client: auth.client }),
          catch: (cause) =>
            new Error(`the authorization failed: ${cause instanceof Error ? cause.message : String(cause)}`)
        })
        const stored = yield* refresher.setGrant(GRANT_KEY, {
          accessToken: grant.accessToken,
          refreshToken: grant.refreshToken,
          expiresIn: grant.expiresIn,
          scope: grant.scope
        })
        issued.refreshTokenFingerprint = fingerprint(grant.refreshToken)
        stats.authorizations++
        previousFailure = undefined
        yield* event(
          "auth",
          `new grant stored (version ${stored.version}): scope "${grant.scope}", access token valid ${grant.expiresIn} s`
        )
        return { version: stored.version, scope: grant.scope, expiresIn: grant.expiresIn }
      }).pipe(Effect.tapError((error) => event("auth", error.message, LogLevel.Error)))

    // -- one API call, told as one line
    const callApi = (origin: "interval" | "GET /call"): Effect.Effect<CallResult, never, Refresher.Refresher> =>
      Effect.gen(function*() {
        const call = ++stats.calls
        yield* Effect.annotateCurrentSpan("demo.call", call)
        const started = Date.now()
        const outcome = yield* api.get(resourceApi.url).pipe(
          Effect.flatMap((response) =>
            Effect.map(
              Effect.orElseSucceed(response.json, () => undefined),
              (body) => ({ status: response.status, body })
            )
          ),
          Effect.scoped,
          Effect.timeoutFail({
            duration: "30 seconds",
            onTimeout: () => ({ _tag: "Timeout", message: "the API call took longer than 30 s" })
          }),
          Effect.either
        )
        const latencyMs = Date.now() - started
        const suffix = origin === "interval" ? "" : ` (${origin})`
        if (Either.isRight(outcome) && outcome.right.status === 200) {
          stats.ok++
          previousFailure = undefined
          yield* event("call", `#${call} 200 OK in ${formatMillis(latencyMs)}${suffix}`)
          return { call, ok: true, status: 200, latencyMs, body: outcome.right.body }
        }
        stats.failed++
        const error = Either.isRight(outcome)
          ? {
            _tag: `HTTP ${outcome.right.status}`,
            message: outcome.right.status === 401
              ? "the API rejected the access token, even after one refresh and one replay"
              : `the API answered ${outcome.right.status}`
          }
          : { _tag: outcome.left._tag, message: outcome.left.message }
        stats.lastFailure = error
        if (previousFailure !== undefined && previousFailure.tag === error._tag) {
          yield* event("call", `#${call} FAILED ${error._tag} in ${formatMillis(latencyMs)} (as call #${previousFailure.call})${suffix}`)
        } else {
          const remedy = demoRemedy(error._tag)
          yield* event(
            "call",
            `#${call} FAILED ${error._tag} in ${formatMillis(latencyMs)}${suffix} — ${error.message}${
              remedy === undefined ? "" : `  → ${remedy}`
            }`,
            LogLevel.Warning
          )
          previousFailure = { tag: error._tag, call }
        }
        return {
          call,
          ok: false,
          ...(Either.isRight(outcome) ? { status: outcome.right.status, body: outcome.right.body } : {}),
          latencyMs,
          error
        }
      }).pipe(Effect.withSpan("demo.call", { attributes: { "demo.call.origin": origin } }))

    // -- the chaos switches
    const revoke = Effect.gen(function*() {
      const stored = yield* store.get(GRANT_KEY)
      const refreshToken = Option.getOrUndefined(stored)?.refreshToken
      if (refreshToken === undefined) return yield* Effect.fail(new Error("no grant with a refresh token is stored"))
      // As the client itself would (RFC 7009), with the secret the server currently knows.
      yield* Effect.tryPromise({
        try: () => auth.server.revoke(Redacted.value(refreshToken), auth.server.clients.basic),
        catch: (cause) => new Error(`revocation failed: ${cause instanceof Error ? cause.message : String(cause)}`)
      })
    })

    const switches: Record<string, (params: URLSearchParams) => Effect.Effect<string, Error>> = {
      latency: (params) =>
        Effect.sync(() => {
          const ms = Number(params.get("ms") ?? "1500")
          proxy.setLatency(Number.isFinite(ms) && ms >= 0 ? ms : 1500)
          return ms > 0
            ? `every token request is now held ${ms} ms. Expect: refreshes take ${ms} ms longer; calls are still served.`
            : "token-request latency off."
        }),
      "503": (params) =>
        Effect.sync(() => {
          const count = Math.max(1, Math.floor(Number(params.get("count") ?? "3")) || 3)
          proxy.fail503(count)
          return `the next ${count} token requests get 503. Expect: Renew retries them (ServerError) with backoff and recovers${
            count >= 4 ? "; 4 or more exceed its 4 attempts, so that refresh fails (served stale if the token is still valid)" : ""
          }.`
        }),
      "429": (params) =>
        Effect.sync(() => {
          const seconds = Math.max(0, Math.floor(Number(params.get("retry-after") ?? "2")) || 0)
          proxy.rateLimit(seconds)
          return `the next token request gets 429 with Retry-After: ${seconds} s. Expect: Renew waits at least ${seconds} s (RateLimited), then the refresh succeeds.`
        }),
      revoke: () =>
        Effect.as(
          revoke,
          "the grant was revoked at the authorization server. Expect: the API answers 401, Renew refreshes (rejected-401) and gets InvalidGrant (revoked): the user must authorize again. Fix: POST /admin/reauthorize."
        ),
      "rotate-secret": () =>
        Effect.sync(() => {
          auth.rotateSecret()
          return `the authorization server has a new secret for ${auth.client.clientId}; the client still sends the old one. Expect: the next refresh fails with InvalidClient (check the client credentials) and Renew pauses the client for ${
            formatMillis(config.invalidClientPauseMillis)
          }. Fix: POST /admin/chaos/restore-secret.`
        }),
      "restore-secret": () =>
        Effect.sync(() => {
          auth.restoreSecret()
          return `the client's secret is valid again. Expect: refreshes succeed once Renew's invalid-client pause (${
            formatMillis(config.invalidClientPauseMillis)
          }) is over.`
        }),
      "cut-network": () =>
        Effect.sync(() => {
          proxy.cutNetwork()
          return "the network between the client and the authorization server is cut. Expect: refreshes fail with NetworkError; a dropped connection may have reached the server, so the same refresh token is not sent again at once; while the access token is valid it is served (stale), after that calls fail until POST /admin/chaos/restore-network."
        }),
      "restore-network": () =>
        Effect.sync(() => {
          proxy.restoreNetwork()
          return "the network to the authorization server is back. Expect: the next refresh succeeds."
        }),
      clear: () =>
        Effect.sync(() => {
          proxy.clear()
          if (auth.secretRotated()) auth.restoreSecret()
          return "every chaos switch is off."
        })
    }
    switches["fail-503"] = switches["503"]!
    switches["rate-limit"] = switches["429"]!

    const chaos = (name: string, params: URLSearchParams) =>
      Effect.gen(function*() {
        const flip = switches[name]
        if (flip === undefined) {
          return { ok: false, message: `no chaos switch ${JSON.stringify(name)}; try one of ${Object.keys(switches).join(", ")}` }
        }
        const message = yield* flip(params)
        yield* event("chaos", `${name}: ${message}`)
        return { ok: true, message }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.as(event("chaos", `${name}: ${error.message}`, LogLevel.Error), { ok: false, message: error.message })
        )
      )

    const status = Effect.gen(function*() {
      const grant = Option.getOrUndefined(yield* store.get(GRANT_KEY))
      const refreshToken = grant?.refreshToken === undefined ? undefined : Redacted.value(grant.refreshToken)
      const active = refreshToken === undefined
        ? undefined
        : yield* Effect.promise(() =>
          auth.server.introspect(refreshToken, auth.apiClient).then((answer) => answer.active === true, () => undefined)
        )
      const alert = yield* monitor.current(auth.client.clientId)
      return {
        grantKey: GRANT_KEY,
        store: storeFile,
        grant: grant === undefined ? undefined : {
          version: grant.version,
          state: grant.reauthRequired === undefined ? "ok" : "needs_reauthorization",
          reauthRequired: grant.reauthRequired,
          scope: grant.scope,
          accessTokenExpiresInMs: grant.expiresAt - Date.now(),
          refreshTokenFingerprint: refreshToken === undefined ? undefined : fingerprint(refreshToken),
          refreshTokenActive: active,
          refreshTokenExpiresAt: grant.refreshTokenExpiresAt === undefined
            ? undefined
            : new Date(grant.refreshTokenExpiresAt).toISOString()
        },
        lastIssuedRefreshTokenFingerprint: issued.refreshTokenFingerprint,
        authorizationsThisRun: stats.authorizations,
        authServer: {
          issuer: auth.server.issuer,
          restoredFromDataDir: auth.restored,
          tokenRequests: auth.server.tokenRequests
        },
        calls: { total: stats.calls, ok: stats.ok, failed: stats.failed, lastFailure: stats.lastFailure },
        refreshes: refreshCounts,
        events: eventCounts,
        api: resourceApi.stats(),
        chaos: { ...proxy.state(), secretRotated: auth.secretRotated() },
        failureRateAlert: alert
      }
    })

    const forceRefresh = Effect.gen(function*() {
      const before = Option.getOrUndefined(yield* store.get(GRANT_KEY))?.version
      const grant = yield* refresher.refresh(GRANT_KEY)
      return grant.version === before
        ? { ok: true, refreshed: false, version: grant.version, message: "not refreshed: within the forced-refresh cooldown" }
        : { ok: true, refreshed: true, version: grant.version }
    }).pipe(Effect.catchAll((error) => Effect.succeed({ ok: false, error: { _tag: error._tag, message: error.message } })))

    // -- the HTTP endpoints
    const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status })
    const searchParams = Effect.map(
      HttpServerRequest.HttpServerRequest,
      (request) => new URL(request.url, "http://localhost").searchParams
    )
    const router = HttpRouter.empty.pipe(
      HttpRouter.get(
        "/",
        Effect.succeed(HttpServerResponse.text(`Renew demo: the client service.

GET  /call                      one call to the protected API, with the grant's access token
GET  /login                     authorize in the browser (authorization code + PKCE)
GET  /admin/status              the grant (fingerprints only), counters, chaos switches
POST /admin/reauthorize         obtain a new grant (after InvalidGrant)
POST /admin/refresh             force a refresh (subject to Renew's forced-refresh cooldown)
POST /admin/chaos/<switch>      ${Object.keys(switches).join(", ")}
                                e.g. latency?ms=1500, 503?count=3, 429?retry-after=2
`))
      ),
      HttpRouter.get("/call", Effect.map(callApi("GET /call"), (result) => json(result, result.ok ? 200 : 502))),
      HttpRouter.get(
        "/login",
        Effect.map(store.get(GRANT_KEY), (stored) => {
          const grant = Option.getOrUndefined(stored)
          const state = grant === undefined
            ? "no grant is stored"
            : grant.reauthRequired === undefined
            ? `a grant is stored (version ${grant.version})`
            : `the stored grant needs re-authorization (${grant.reauthRequired})`
          return html(
            "Authorize the demo client",
            `<p>Right now ${escapeHtml(state)}.</p>
<form method="post" action="/login"><button type="submit">Authorize as the demo user</button></form>
<p>The demo's authorization server (oidc-provider) approves on its own: pressing the button runs the
authorization-code flow with PKCE against it, as a browser would, signs in as its one user, consents, exchanges the
code, and stores the new grant with <code>Refresher.setGrant</code>. The client service picks it up on its next call.</p>`
          )
        }).pipe(Effect.orElseSucceed(() => html("Authorize the demo client", "<p>The token store is unavailable.</p>")))
      ),
      HttpRouter.post(
        "/login",
        authorize("authorization requested at /login").pipe(
          Effect.map((grant) =>
            html(
              "Authorized",
              `<p>A new grant is stored (version ${grant.version}), scope <code>${escapeHtml(grant.scope)}</code>;
the access token is valid ${grant.expiresIn} s and Renew refreshes it from now on.</p>`
            )
          ),
          Effect.catchAll((error) =>
            Effect.succeed(html("Authorization failed", `<p>${escapeHtml(error.message)}</p>`))
          )
        )
      ),
      HttpRouter.get("/admin/status", Effect.map(status, (body) => json(body))),
      HttpRouter.post(
        "/admin/reauthorize",
        authorize("re-authorization requested").pipe(
          Effect.map((grant) => json({ ok: true, ...grant })),
          Effect.catchAll((error) => Effect.succeed(json({ ok: false, message: error.message }, 502)))
        )
      ),
      HttpRouter.post("/admin/refresh", Effect.map(forceRefresh, (body) => json(body, body.ok ? 200 : 502))),
      HttpRouter.post(
        "/admin/chaos/:switch",
        Effect.gen(function*() {
          const { switch: name } = yield* HttpRouter.params
          const result = yield* chaos(name ?? "", yield* searchParams)
          return json(result, result.ok ? 200 : 404)
        })
      )
    )

    const server = yield* NodeHttpServer.make(() => createServer(), { port: config.port, host: "127.0.0.1" }).pipe(
      Effect.mapError((error) =>
        new Error(
          `the client service could not listen on 127.0.0.1:${config.port} (${
            String((error.cause as { code?: string } | undefined)?.code ?? error.message)
          }); choose another port with --port`
        )
      )
    )
    yield* HttpServer.serveEffect(router).pipe(Effect.provideService(HttpServer.HttpServer, server))
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    const base = `http://127.0.0.1:${port}`

    writeRaw(
      [
        "",
        "Renew demo: everything below runs in this one process, on 127.0.0.1. Ctrl-C stops it.",
        `  client service        ${base}   GET /call · GET /login · GET /admin/status · POST /admin/chaos/<switch>`,
        `  protected API         ${resourceApi.url}   (checks bearer tokens by introspection)`,
        `  chaos proxy           ${proxy.url}   (the client's token endpoint is ${proxy.url}/token)`,
        `  authorization server  ${auth.server.issuer}   (oidc-provider: access tokens ${config.accessTokenTtlSeconds} s, refresh tokens rotate)`,
        `  data directory        ${config.dataDir}   (renew-grants.sqlite: the grant; auth-server.json: the server's state)`,
        `  API calls             every ${formatMillis(config.intervalMillis)}; pid ${process.pid}`,
        `  refresh policy        ${refreshPolicy(config)}`,
        `  traces                ${ctx.traces}`,
        `  try                   curl -X POST ${base}/admin/chaos/503?count=2   (see apps/demo/README.md for every switch)`,
        ""
      ].join("\n")
    )

    // -- the grant: resumed from SQLite when usable, otherwise obtained now (headless)
    const existing = Option.getOrUndefined(yield* store.get(GRANT_KEY))
    const why = existing === undefined
      ? "no grant stored"
      : existing.reauthRequired !== undefined
      ? `the stored grant needs re-authorization (${existing.reauthRequired})`
      : existing.refreshToken === undefined
      ? "the stored grant has no refresh token"
      : !auth.restored
      ? `a grant is stored, but the authorization server that issued it is gone (${auth.freshReason})`
      : undefined
    if (why === undefined && existing !== undefined) {
      issued.refreshTokenFingerprint ??= fingerprint(Redacted.value(existing.refreshToken!))
      yield* event(
        "auth",
        `resumed grant version ${existing.version} from ${storeFile}: no new authorization (access token ${
          existing.expiresAt > Date.now() ? `valid ${formatMillis(existing.expiresAt - Date.now())} more` : "expired: refreshed at once"
        })`
      )
    } else {
      yield* authorize(why ?? "no usable grant")
    }

    // -- chaos armed from the command line
    const armed: Array<readonly [string, URLSearchParams]> = []
    if (config.chaos.latencyMs !== undefined) armed.push(["latency", new URLSearchParams({ ms: String(config.chaos.latencyMs) })])
    if (config.chaos.fail503 !== undefined) armed.push(["503", new URLSearchParams({ count: String(config.chaos.fail503) })])
    if (config.chaos.rateLimitSeconds !== undefined) {
      armed.push(["429", new URLSearchParams({ "retry-after": String(config.chaos.rateLimitSeconds) })])
    }
    if (config.chaos.revoke) armed.push(["revoke", new URLSearchParams()])
    if (config.chaos.rotateSecret) armed.push(["rotate-secret", new URLSearchParams()])
    if (config.chaos.cutNetwork) armed.push(["cut-network", new URLSearchParams()])
    for (const [name, params] of armed) yield* chaos(name, params)

    // -- the calls
    // After InvalidClient, Renew pauses the OAuth client (every refresh fails fast for `invalidClientPause`). The loop
    // waits the pause out instead of calling into it: with @renew/core as it is, a refresh that fails fast during the
    // pause starts the pause again, so calls more frequent than the pause would keep the client paused for good.
    const pause = Duration.millis(config.invalidClientPauseMillis + 100)
    yield* callApi("interval").pipe(
      Effect.flatMap((result) =>
        result.error?._tag === "InvalidClient"
          ? Effect.zipRight(
            event("call", `next call in ${formatMillis(Duration.toMillis(pause))}: waiting out Renew's invalid-client pause`),
            Effect.sleep(pause)
          )
          : Effect.sleep(Duration.millis(config.intervalMillis))
      ),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => event("demo", "stopping: the client service, the API, the proxy, then the authorization server"))
    return yield* Effect.never
  })

  // The client service's own scope closes first on shutdown (its server, its calls), then Renew's layers.
  return program.pipe(
    Effect.scoped,
    Effect.provide(RenewLive({
      tokenUrl: `${proxy.url}/token`,
      introspectionUrl: `${proxy.url}/token/introspection`,
      clientId: auth.client.clientId,
      clientSecret: Redacted.make(auth.client.clientSecret),
      storeFile,
      skewMillis: config.skewMillis,
      minValidityMillis: config.minValidityMillis,
      sweepIntervalMillis: config.sweepIntervalMillis,
      invalidClientPauseMillis: config.invalidClientPauseMillis
    }))
  )
}
