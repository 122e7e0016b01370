/**
 * Conformance of Renew's public API against a REAL authorization server: oidc-provider 9.13.3 (panva), started on
 * loopback by `@renew/auth-server-fixture`. Every describe block owns its server (closed by the block's layer
 * finalizer). Wire facts: /work/shared/reference/authorization-server-facts.md.
 *
 * What the server answered on the wire for each error case, and what Renew reports (asserted below):
 *
 * | case                                         | HTTP | error           | error_description                           | Renew `_tag` (reason)                 |
 * | -------------------------------------------- | ---- | --------------- | ------------------------------------------- | ------------------------------------- |
 * | revoked grant (RFC 7009), no introspection   | 400  | invalid_grant   | grant request is invalid                    | InvalidGrant (no reason)              |
 * | revoked grant, introspectionUrl configured   | 400  | invalid_grant   | grant request is invalid                    | InvalidGrant (reason "revoked")       |
 * | expired refresh token, introspection         | 400  | invalid_grant   | grant request is invalid                    | InvalidGrant (reason "expired")       |
 * | expired refresh token, no introspection      | 400  | invalid_grant   | grant request is invalid                    | InvalidGrant (no reason)              |
 * | refresh token of client-basic sent by        | 400  | invalid_grant   | grant request is invalid                    | InvalidGrant (reason "unknown": the   |
 * |   client-post (introspection configured)     |      |                 |                                             |   token still introspects active)     |
 * | wrong client secret (client_secret_basic)    | 401  | invalid_client  | client authentication failed                | InvalidClient                         |
 * |   + WWW-Authenticate: Basic realm=..., error="invalid_client", error_description="client authentication failed"      |
 * | no client secret: authMethod "none" against  | 401  | invalid_client  | client authentication failed                | InvalidClient                         |
 * |   a confidential client (client_id in body)  |      |                 |   (NOT 400 invalid_request: that answer,    |                                       |
 * |                                              |      |                 |   "no client authentication mechanism       |                                       |
 * |                                              |      |                 |   provided", needs a request without any    |                                       |
 * |                                              |      |                 |   client_id, which Renew never sends)       |                                       |
 * | no client secret with client_secret_basic    |  -   | (no request)    |                                             | ConfigurationError (option clientSecret) |
 * | scope wider than granted (adds api:write)    | 400  | invalid_scope   | refresh token missing requested scope       | InvalidScope (requestedScope = the    |
 * |   body also carries scope="api:write"        |      |                 |                                             |   configured scope; the server's      |
 * |                                              |      |                 |                                             |   `scope` member is not kept)         |
 * | narrower scope (scope=api:read)              | 200  | -               | -                                           | success, Grant.scope "api:read"       |
 * | client_secret_post client                    | 200  | -               | -                                           | success                               |
 *
 * Timing: short TTLs (1-2 s) keep the real-time parts to a few seconds (due refreshes, expired refresh token,
 * BearerClient); the 50-rotation chain uses forced refreshes (`forcedRefreshCooldown: 0`) on a 60 s server instead of
 * waiting. Expiry granularity: oidc-provider sets exp = floor(now in seconds) + TTL, so a token with expires_in=2
 * really lives 1-2 s; Renew counts one second less from when it sent the request, so it is never later than the
 * server's exp, and with a 2 s lifetime it refreshes half-way through what it counted.
 * On a loaded machine, though, a token served with that margin can still reach the server after it expired. So the
 * real-time tests judge Renew against the server's recorded expiry (`AuthServer.expiryOf`): a token must be live when
 * Renew served it, and a rejection counts against Renew only if the answer came back before that expiry. They run
 * until enough refreshes happened, not for a fixed time, and seed grants with the server's exact expiry.
 *
 * Leaks: every log line (all levels, message + annotations + cause), every span (name, attributes, events, failure
 * cause) and every error observed is captured, and no 16-character fragment of any token the server issued (from
 * `obtainGrant` and from every grant written to the store), any client secret (right or wrong) or any Basic
 * credential may appear in them.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it, layer } from "@effect/vitest"
import {
  type AuthServer,
  type AuthServerOptions,
  type FixtureClient,
  type ObtainedGrant,
  startAuthServer,
  untilPast
} from "@renew/auth-server-fixture"
import { BearerClient, Refresher, RefreshError, type Token, TokenEndpoint, TokenStore } from "@renew/core"
import { Cause, Context, Effect, Exit, Layer, Logger, LogLevel, Option, Redacted, Tracer } from "effect"
import { randomBytes } from "node:crypto"
import { inspect } from "node:util"

// ---------------------------------------------------------------------------------------------------------------
// Capture: logs, spans, errors, and every secret that must never show up in them
// ---------------------------------------------------------------------------------------------------------------

interface CapturedSpan {
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly attributes: Map<string, unknown>
  readonly events: Array<{ readonly name: string; readonly attributes: Record<string, unknown> }>
  /** "ok", or the pretty-printed failure cause (what an exporter records as the span status). */
  outcome: string | undefined
}

const captured = {
  logs: [] as Array<string>,
  spans: [] as Array<CapturedSpan>,
  errors: [] as Array<unknown>
}

/** Every value that must never be printed: tokens, client secrets, Basic credentials. */
const secrets = new Map<string, string>()

const rememberSecret = (label: string, value: string | undefined): void => {
  if (value !== undefined && value.length > 0 && !secrets.has(value)) secrets.set(value, `${label} #${secrets.size + 1}`)
}

const basicCredential = (clientId: string, secret: string): string =>
  Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64")

const rememberClientSecret = (clientId: string, secret: string): void => {
  rememberSecret("client secret", secret)
  rememberSecret("Basic credential", basicCredential(clientId, secret))
}

const rememberObtained = (grant: ObtainedGrant): void => {
  rememberSecret("access token", grant.accessToken)
  rememberSecret("refresh token", grant.refreshToken)
  rememberSecret("id token", grant.idToken)
}

const rememberGrant = (grant: Token.Grant): void => {
  if (grant.accessToken !== undefined) rememberSecret("access token", reveal(grant.accessToken))
  if (grant.refreshToken !== undefined) rememberSecret("refresh token", reveal(grant.refreshToken))
}

const show = (value: unknown): string => (typeof value === "string" ? value : inspect(value, { depth: 10 }))

const captureLogger = Logger.make(({ annotations, cause, logLevel, message, spans }) => {
  const parts = [logLevel.label, show(message)]
  for (const [key, value] of annotations) parts.push(`${key}=${show(value)}`)
  for (const span of spans) parts.push(`span=${span.label}`)
  if (!Cause.isEmpty(cause)) parts.push(Cause.pretty(cause, { renderErrorCause: true }))
  captured.logs.push(parts.join(" "))
})

let spanIds = 0

class CaptureSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId: string
  readonly traceId: string
  readonly sampled = true
  status: Tracer.SpanStatus
  readonly attributes: Map<string, unknown>
  links: ReadonlyArray<Tracer.SpanLink>
  readonly record: CapturedSpan

  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind
  ) {
    this.spanId = (++spanIds).toString(16).padStart(16, "0")
    this.traceId = Option.match(parent, { onNone: () => this.spanId.padStart(32, "0"), onSome: (p) => p.traceId })
    this.status = { _tag: "Started", startTime }
    this.links = links
    this.attributes = new Map()
    this.record = { name, kind, attributes: this.attributes, events: [], outcome: undefined }
    captured.spans.push(this.record)
  }

  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    this.record.outcome = Exit.isSuccess(exit) ? "ok" : Cause.pretty(exit.cause, { renderErrorCause: true })
  }

  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }

  event(name: string, _startTime: bigint, attributes?: Record<string, unknown>): void {
    this.record.events.push({ name, attributes: attributes ?? {} })
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links = [...this.links, ...links]
  }
}

const captureTracer = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => new CaptureSpan(name, parent, context, links, startTime, kind),
  context: (f) => f()
})

/** Runs `self` with every log (all levels) and every span captured. */
const capturing = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  self.pipe(
    Effect.withTracer(captureTracer),
    Logger.withMinimumLogLevel(LogLevel.All),
    Effect.provide(Logger.replace(Logger.defaultLogger, captureLogger))
  )

/** The error `self` fails with, recorded for the leak check. */
const failureOf = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<E, never, R> =>
  Effect.flip(self).pipe(Effect.tap((error) => Effect.sync(() => void captured.errors.push(error))), Effect.orDie)

interface Mark {
  readonly logs: number
  readonly spans: number
  readonly errors: number
}

const mark = (): Mark => ({
  logs: captured.logs.length,
  spans: captured.spans.length,
  errors: captured.errors.length
})

/** Every captured string since `from`, with where it came from. */
const haystacks = (from: Mark = { logs: 0, spans: 0, errors: 0 }): Array<readonly [string, string]> => {
  const out: Array<readonly [string, string]> = []
  for (const line of captured.logs.slice(from.logs)) out.push(["log", line])
  for (const span of captured.spans.slice(from.spans)) {
    out.push([`span ${span.name}`, span.name])
    for (const [key, value] of span.attributes) {
      out.push([`span ${span.name} attribute ${key}`, `${key}=${show(value)} ${String(value)}`])
    }
    for (const event of span.events) out.push([`span ${span.name} event ${event.name}`, `${event.name} ${show(event.attributes)}`])
    if (span.outcome !== undefined) out.push([`span ${span.name} status`, span.outcome])
  }
  for (const error of captured.errors.slice(from.errors)) {
    const tag = (error as { _tag?: string })._tag ?? "error"
    out.push([`${tag} util.inspect`, inspect(error, { depth: 10 })])
    out.push([`${tag} JSON.stringify`, JSON.stringify(error)])
    out.push([`${tag} String`, String(error)])
    out.push([`${tag} message`, (error as { message?: string }).message ?? ""])
  }
  return out
}

const FRAGMENT = 16
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./

/**
 * Fails when any captured string since `from` holds a 16-character fragment of a secret (so a truncated or partial
 * token counts too), or anything shaped like a JWT (the id_tokens of refresh responses are never seen by the test).
 */
const assertNoLeaks = (from?: Mark): void => {
  const fragments = new Map<string, string>()
  for (const [value, label] of secrets) {
    for (let i = 0; i + FRAGMENT <= value.length; i++) fragments.set(value.slice(i, i + FRAGMENT), label)
  }
  const leaks: Array<string> = []
  for (const [where, text] of haystacks(from)) {
    if (JWT.test(text)) leaks.push(`a JWT in ${where}`)
    for (let i = 0; i + FRAGMENT <= text.length; i++) {
      const label = fragments.get(text.slice(i, i + FRAGMENT))
      if (label !== undefined) {
        leaks.push(`${label} in ${where}`)
        break
      }
    }
  }
  assert.deepStrictEqual(leaks, [], "secrets leaked into logs, spans or errors")
}

// ---------------------------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------------------------

class Fixture extends Context.Tag("conformance/AuthServer")<Fixture, AuthServer>() {}

/** One real authorization server for a describe block, closed by the block's finalizer. */
const authServer = (options: AuthServerOptions) =>
  Layer.scoped(
    Fixture,
    Effect.acquireRelease(
      Effect.promise(() => startAuthServer(options)).pipe(
        Effect.tap((server) =>
          Effect.sync(() => {
            const { basic, post } = server.clients
            rememberClientSecret(basic.clientId, basic.clientSecret)
            rememberClientSecret(post.clientId, post.clientSecret)
          })
        )
      ),
      (server) => Effect.promise(() => server.close())
    )
  )

/** A memory store that remembers every token written to it, for the leak check. */
const makeRecordingStore = Effect.map(TokenStore.makeMemory, (inner) =>
  TokenStore.TokenStore.of({
    ...inner,
    compareAndSet: (key, version, grant) => {
      rememberGrant(grant)
      return inner.compareAndSet(key, version, grant)
    }
  }))

interface EngineOptions {
  /** Default: the fixture's basic client. */
  readonly client?: FixtureClient
  /** Default: the client's secret. `null`: no secret at all. */
  readonly clientSecret?: string | null
  readonly authMethod?: TokenEndpoint.AuthMethod
  readonly scope?: string
  readonly introspection?: boolean
  readonly refresher?: Refresher.RefresherOptions
  /** Share a store between engines. Default: a new recording memory store. */
  readonly store?: TokenStore.TokenStore["Type"]
}

interface Engine {
  readonly refresher: Refresher.Refresher["Type"]
  readonly store: TokenStore.TokenStore["Type"]
}

const endpointOptions = (server: AuthServer, options: EngineOptions): TokenEndpoint.TokenEndpointOptions => {
  const client = options.client ?? server.clients.basic
  const secret = options.clientSecret === undefined ? client.clientSecret : options.clientSecret
  return {
    url: server.tokenEndpoint,
    clientId: client.clientId,
    ...(secret !== null ? { clientSecret: Redacted.make(secret) } : {}),
    authMethod: options.authMethod ?? client.authMethod,
    ...(options.scope !== undefined ? { scope: options.scope } : {}),
    ...(options.introspection === true ? { introspectionUrl: server.introspectionEndpoint } : {})
  }
}

/** A Refresher (public API only) over undici, living as long as the test's scope. */
const makeEngine = (server: AuthServer, options: EngineOptions = {}) =>
  Effect.gen(function*() {
    const store = options.store ?? (yield* makeRecordingStore)
    const context = yield* Layer.build(
      Refresher.layer({ forcedRefreshCooldown: 0, ...options.refresher }).pipe(
        Layer.provide(TokenEndpoint.layer(endpointOptions(server, options))),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.provide(Layer.succeed(TokenStore.TokenStore, store)),
        Layer.orDie
      )
    )
    return { refresher: Context.get(context, Refresher.Refresher), store } satisfies Engine
  })

const obtain = (server: AuthServer, options?: { readonly client?: FixtureClient; readonly scope?: string }) =>
  Effect.promise(() => server.obtainGrant(options)).pipe(Effect.tap((grant) => Effect.sync(() => rememberObtained(grant))))

type AnyToken = string | Redacted.Redacted<string> | undefined

/** The value of a token that must be there (a grant's tokens are optional in the model). */
const reveal = (token: AnyToken): string => {
  if (token === undefined) return assert.fail("expected a token")
  return Redacted.isRedacted(token) ? Redacted.value(token) : token
}

const introspect = (server: AuthServer, token: AnyToken) => Effect.promise(() => server.introspect(reveal(token)))

const userinfo = (server: AuthServer, token: AnyToken) =>
  Effect.promise(async () => {
    const value = reveal(token)
    const response = await fetch(server.userinfoEndpoint, { headers: { authorization: `Bearer ${value}` } })
    return { status: response.status, body: await response.text() }
  })

/** The expiry the server recorded for a token it issued (epoch ms): known before, and after, the token expired. */
const expiryOf = (server: AuthServer, token: AnyToken): number => {
  const expiry = server.expiryOf(reveal(token))
  if (expiry === undefined) return assert.fail("a token this server did not issue")
  return expiry
}

const stored = (engine: Engine, key: string) =>
  Effect.map(engine.store.get(key), (grant) => Option.getOrThrowWith(grant, () => new Error(`no grant under ${key}`)))

const refreshRequests = (server: AuthServer): number => server.tokenRequests.refresh

const sortedScope = (scope: unknown): string => String(scope).split(" ").sort().join(" ")

const FULL_SCOPE = "api:read api:write offline_access openid"

const assertServerAnswer = (
  error: { readonly status?: number | undefined; readonly oauthError?: string | undefined; readonly errorDescription?: string | undefined },
  expected: { readonly status: number; readonly oauthError: string; readonly errorDescription: string }
): void => {
  assert.deepStrictEqual(
    { status: error.status, oauthError: error.oauthError, errorDescription: error.errorDescription },
    expected
  )
}

const INVALID_GRANT = { status: 400, oauthError: "invalid_grant", errorDescription: "grant request is invalid" } as const
const INVALID_CLIENT = { status: 401, oauthError: "invalid_client", errorDescription: "client authentication failed" } as const

// ---------------------------------------------------------------------------------------------------------------
// 1. Rotation: 50 forced refreshes, then due refreshes in real time
// ---------------------------------------------------------------------------------------------------------------

layer(authServer({ accessTokenTtlSeconds: 60, rotation: true }), { excludeTestServices: true })(
  "rotation chain (rotation on)",
  (it) => {
    // Forced refreshes: no waiting, so a long access-token TTL keeps every check below about Renew, not the clock.
    it.scoped("50 chained refreshes: every access token is live, the stored refresh token is always the newest", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, { introspection: true })
        const { refresher } = engine
        const key = "chain"
        const obtained = yield* obtain(server)
        const seeded = yield* refresher.setGrant(key, {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresIn: obtained.expiresIn,
          scope: obtained.scope
        })
        const before = refreshRequests(server)
        let previousRefreshToken = obtained.refreshToken
        let previousVersion = seeded.version
        const accessTokens = new Set<string>([obtained.accessToken])
        for (let i = 1; i <= 50; i++) {
          const grant = yield* refresher.refresh(key)
          const current = yield* stored(engine, key)
          const refreshToken = reveal(current.refreshToken)
          const accessToken = reveal(current.accessToken)
          assert.strictEqual(reveal(grant.accessToken), accessToken, `step ${i}: the caller got the stored token`)
          // The refresh-in-flight intent, then the answer.
          assert.strictEqual(current.version, previousVersion + 2, `step ${i}: two writes per refresh`)
          assert.notStrictEqual(refreshToken, previousRefreshToken, `step ${i}: rotated`)
          assert.isFalse(accessTokens.has(accessToken), `step ${i}: a new access token`)
          accessTokens.add(accessToken)
          // The cached path hands out the same token.
          assert.strictEqual(Redacted.value(yield* refresher.getAccessToken(key)), accessToken)
          const [previous, newest, access] = yield* Effect.all([
            introspect(server, previousRefreshToken),
            introspect(server, refreshToken),
            introspect(server, accessToken)
          ], { concurrency: "unbounded" })
          assert.isFalse(previous.active, `step ${i}: the previous refresh token is dead`)
          assert.isTrue(newest.active, `step ${i}: the stored refresh token is live`)
          assert.isTrue(access.active, `step ${i}: the access token is live`)
          // Renew learned the new refresh token's expiry through introspection.
          assert.strictEqual(current.refreshTokenExpiresAt, (newest.exp as number) * 1000)
          assert.strictEqual((yield* userinfo(server, accessToken)).status, 200, `step ${i}: userinfo accepts it`)
          previousRefreshToken = refreshToken
          previousVersion = current.version
        }
        assert.strictEqual(refreshRequests(server) - before, 50, "exactly one token request per refresh")
        assertNoLeaks(from)
      })))
  }
)

layer(authServer({ accessTokenTtlSeconds: 2, rotation: true }), { excludeTestServices: true })(
  "due refreshes (access token TTL 2 s, rotation on)",
  (it) => {
    it.scoped("due refreshes in real time: getAccessToken keeps serving live tokens across two natural lifetimes", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server)
        const { refresher } = engine
        const key = "real-time"
        const obtained = yield* obtain(server)
        assert.strictEqual(obtained.expiresIn, 2)
        // Seeded with the server's exact expiry: `expiresIn` would count from now, however late now is.
        const seededExpiry = expiryOf(server, obtained.accessToken)
        const seededAt = Date.now()
        yield* refresher.setGrant(key, {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresAt: seededExpiry
        })
        const before = refreshRequests(server)
        const served: Array<string> = []
        const rejectedWhileLive: Array<number> = []
        let firstCallEndedAt: number | undefined
        // 2 s lifetime, counted as 1 s (Renew takes off the one second of expires_in granularity), due at 0.5 s (the
        // 60 s skew is capped at half the lifetime): four refreshes cross two natural lifetimes, however long they take.
        const deadline = Date.now() + 60_000
        while (refreshRequests(server) - before < 4) {
          assert.isBelow(Date.now(), deadline, "four refreshes within a minute")
          const askedAt = Date.now()
          const token = Redacted.value(yield* refresher.getAccessToken(key))
          firstCallEndedAt ??= Date.now()
          // Renew decided after askedAt, and only serves a token with time left before the server's expiry.
          assert.isAbove(expiryOf(server, token), askedAt, "a live token was served")
          if (served[served.length - 1] !== token) served.push(token)
          const answer = yield* userinfo(server, token)
          if (answer.status !== 200 && Date.now() < expiryOf(server, token)) rejectedWhileLive.push(answer.status)
          yield* Effect.sleep("100 millis")
        }
        const refreshes = refreshRequests(server) - before
        assert.deepStrictEqual(rejectedWhileLive, [], "every token served was accepted by userinfo while it lived")
        // The seeded token is served until it is due: at the latest half-way through its remaining lifetime.
        const seededServed = served[0] === obtained.accessToken
        if (firstCallEndedAt! < (seededExpiry + seededAt) / 2) assert.isTrue(seededServed, "the seeded token was served")
        assert.strictEqual(new Set(served).size, served.length, "tokens never go back to an older one")
        assert.strictEqual(served.length, refreshes + (seededServed ? 1 : 0), "every refresh was served, none wasted")
        const current = yield* stored(engine, key)
        assert.strictEqual(reveal(current.accessToken), served[served.length - 1])
        assert.isTrue((yield* introspect(server, current.refreshToken)).active, "the stored refresh token is live")
        assert.isFalse((yield* introspect(server, obtained.refreshToken)).active, "the seeded one was rotated away")
        assertNoLeaks(from)
      })), 90_000)
  }
)

// ---------------------------------------------------------------------------------------------------------------
// 2. Single flight against rotation
// ---------------------------------------------------------------------------------------------------------------

layer(authServer({ accessTokenTtlSeconds: 60, rotation: true }), { excludeTestServices: true })(
  "single flight (rotation on)",
  (it) => {
    it.scoped("1,000 concurrent callers on an expired grant: one refresh request, one token, the grant survives", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server)
        const { refresher } = engine
        const key = "crowd"
        const obtained = yield* obtain(server)
        yield* refresher.setGrant(key, {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresIn: 0
        })
        const before = refreshRequests(server)
        const results = yield* Effect.all(
          Array.from({ length: 1_000 }, () => Effect.either(refresher.getAccessToken(key))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(refreshRequests(server) - before, 1, "exactly one refresh request reached the server")
        const failures = results.filter((result) => result._tag === "Left")
        assert.deepStrictEqual(failures.map((failure) => failure.left._tag), [], "no caller failed")
        const tokens = new Set(results.map((result) => (result._tag === "Right" ? Redacted.value(result.right) : "")))
        assert.strictEqual(tokens.size, 1, "every caller got the same token")
        const [token] = tokens
        const afterCrowd = yield* stored(engine, key)
        assert.strictEqual(reveal(afterCrowd.accessToken), token)
        assert.notStrictEqual(token, obtained.accessToken)
        assert.strictEqual((yield* userinfo(server, token!)).status, 200)
        assert.isTrue((yield* introspect(server, afterCrowd.refreshToken)).active, "the rotated token is live")
        assert.isFalse((yield* introspect(server, obtained.refreshToken)).active, "the seeded token was consumed once")
        // Alive afterwards: no reuse detection was tripped.
        const next = yield* refresher.refresh(key)
        assert.strictEqual(refreshRequests(server) - before, 2)
        const afterForced = yield* stored(engine, key)
        assert.strictEqual(reveal(next.accessToken), reveal(afterForced.accessToken))
        assert.isTrue((yield* introspect(server, afterForced.refreshToken)).active)
        assert.isFalse((yield* introspect(server, afterCrowd.refreshToken)).active)
        assert.strictEqual((yield* userinfo(server, afterForced.accessToken)).status, 200)
        assertNoLeaks(from)
      })))
  }
)

// ---------------------------------------------------------------------------------------------------------------
// 3. Error mapping
// ---------------------------------------------------------------------------------------------------------------

layer(authServer({ accessTokenTtlSeconds: 60, rotation: true }), { excludeTestServices: true })(
  "error mapping (rotation on)",
  (it) => {
    /** A grant from `client` stored in `engine` with an already expired access token. */
    const seedExpired = (engine: Engine, key: string, options?: Parameters<typeof obtain>[1]) =>
      Effect.gen(function*() {
        const server = yield* Fixture
        const obtained = yield* obtain(server, options)
        yield* engine.refresher.setGrant(key, {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresIn: 0,
          scope: obtained.scope
        })
        return obtained
      })

    it.scoped("a revoked grant: InvalidGrant without a reason, marked for re-authorization, not retried", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server)
        const obtained = yield* seedExpired(engine, "revoked")
        yield* Effect.promise(() => server.revoke(obtained.refreshToken))
        const before = refreshRequests(server)
        const error = yield* failureOf(engine.refresher.getAccessToken("revoked"))
        assert.strictEqual(error._tag, "InvalidGrant")
        assert.instanceOf(error, RefreshError.InvalidGrant)
        assertServerAnswer(error, INVALID_GRANT)
        assert.isUndefined(error.reason, "without introspection the reason cannot be known")
        assert.isFalse(error.retryable)
        assert.strictEqual(refreshRequests(server) - before, 1, "terminal: one request, no retry")
        assert.strictEqual((yield* stored(engine, "revoked")).reauthRequired, "invalid_grant")
        const again = yield* failureOf(engine.refresher.getAccessToken("revoked"))
        assert.strictEqual(again._tag, "InvalidGrant")
        assert.strictEqual(refreshRequests(server) - before, 1, "a dead grant fails fast, without a request")
        assertNoLeaks(from)
      })))

    it.scoped("a revoked grant with introspection configured: InvalidGrant reason \"revoked\"", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, { introspection: true })
        const obtained = yield* seedExpired(engine, "revoked-introspected")
        assert.isDefined((yield* stored(engine, "revoked-introspected")).refreshTokenExpiresAt)
        yield* Effect.promise(() => server.revoke(obtained.refreshToken))
        const error = yield* failureOf(engine.refresher.getAccessToken("revoked-introspected"))
        assert.strictEqual(error._tag, "InvalidGrant")
        assert.instanceOf(error, RefreshError.InvalidGrant)
        assertServerAnswer(error, INVALID_GRANT)
        assert.strictEqual(error.reason, "revoked")
        assert.strictEqual((yield* stored(engine, "revoked-introspected")).reauthRequired, "revoked")
        assertNoLeaks(from)
      })))

    it.scoped("a wrong client secret: InvalidClient, and the same refresh token still works with the right secret", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const wrongSecret = `wrong-${randomBytes(24).toString("base64url")}`
        rememberClientSecret(server.clients.basic.clientId, wrongSecret)
        const wrong = yield* makeEngine(server, { clientSecret: wrongSecret })
        const obtained = yield* seedExpired(wrong, "wrong-secret")
        const before = refreshRequests(server)
        const error = yield* failureOf(wrong.refresher.getAccessToken("wrong-secret"))
        assert.strictEqual(error._tag, "InvalidClient")
        assert.instanceOf(error, RefreshError.InvalidClient)
        assertServerAnswer(error, INVALID_CLIENT)
        assert.isFalse(error.retryable)
        assert.strictEqual(refreshRequests(server) - before, 1, "not retried")
        const untouched = yield* stored(wrong, "wrong-secret")
        assert.isUndefined(untouched.reauthRequired, "a client problem does not kill the user's grant")
        assert.strictEqual(reveal(untouched.refreshToken), obtained.refreshToken)
        assert.isTrue((yield* introspect(server, obtained.refreshToken)).active, "the server did not consume it")
        // A second engine with the right secret over the same store.
        const right = yield* makeEngine(server, { store: wrong.store })
        const token = yield* right.refresher.getAccessToken("wrong-secret")
        assert.strictEqual(refreshRequests(server) - before, 2)
        assert.strictEqual((yield* userinfo(server, token)).status, 200)
        const rotated = yield* stored(right, "wrong-secret")
        assert.isTrue((yield* introspect(server, rotated.refreshToken)).active)
        assert.isFalse((yield* introspect(server, obtained.refreshToken)).active)
        assertNoLeaks(from)
      })))

    it.scoped("a scope wider than granted: InvalidScope, and the grant is untouched", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const wider = "openid offline_access api:read api:write"
        const engine = yield* makeEngine(server, { scope: wider })
        const obtained = yield* seedExpired(engine, "wider", { scope: "openid offline_access api:read" })
        const before = refreshRequests(server)
        const error = yield* failureOf(engine.refresher.getAccessToken("wider"))
        assert.strictEqual(error._tag, "InvalidScope")
        assert.instanceOf(error, RefreshError.InvalidScope)
        assertServerAnswer(error, {
          status: 400,
          oauthError: "invalid_scope",
          errorDescription: "refresh token missing requested scope"
        })
        assert.strictEqual(error.requestedScope, wider)
        assert.isFalse(error.retryable)
        assert.strictEqual(refreshRequests(server) - before, 1)
        assert.isUndefined((yield* stored(engine, "wider")).reauthRequired)
        assert.isTrue((yield* introspect(server, obtained.refreshToken)).active, "invalid_scope consumes nothing")
        // Without the extra scope the same grant refreshes, keeping the granted scope.
        const plain = yield* makeEngine(server, { store: engine.store })
        const grant = yield* plain.refresher.getGrant("wider")
        assert.strictEqual(sortedScope(grant.scope), "api:read offline_access openid")
        assertNoLeaks(from)
      })))

    it.scoped("a narrower scope: success, the stored grant and the server's access token carry api:read only", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, { scope: "api:read" })
        const obtained = yield* seedExpired(engine, "narrower")
        assert.strictEqual(sortedScope(obtained.scope), FULL_SCOPE)
        const grant = yield* engine.refresher.getGrant("narrower")
        const current = yield* stored(engine, "narrower")
        assert.strictEqual(grant.scope, "api:read")
        assert.strictEqual(current.scope, "api:read")
        const access = yield* introspect(server, current.accessToken)
        assert.isTrue(access.active)
        assert.strictEqual(access.scope, "api:read")
        // The rotated refresh token keeps the whole grant (RFC 6749 §6: the scope narrows the access token only).
        const refresh = yield* introspect(server, current.refreshToken)
        assert.isTrue(refresh.active)
        assert.strictEqual(sortedScope(refresh.scope), FULL_SCOPE)
        assertNoLeaks(from)
      })))

    it.scoped("a refresh token presented by another client: InvalidGrant (reason \"unknown\"), the token survives", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, { client: server.clients.post, introspection: true })
        const obtained = yield* seedExpired(engine, "other-client", { client: server.clients.basic })
        const before = refreshRequests(server)
        const error = yield* failureOf(engine.refresher.getAccessToken("other-client"))
        assert.strictEqual(error._tag, "InvalidGrant")
        assert.instanceOf(error, RefreshError.InvalidGrant)
        assertServerAnswer(error, INVALID_GRANT)
        assert.strictEqual(error.reason, "unknown", "introspection says the token is still active")
        assert.strictEqual(refreshRequests(server) - before, 1)
        assert.isTrue((yield* introspect(server, obtained.refreshToken)).active, "the owner's token was not consumed")
        assertNoLeaks(from)
      })))

    it.scoped("no client secret: authMethod none gets InvalidClient (401); client_secret_basic without one is refused", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, { clientSecret: null, authMethod: "none" })
        const obtained = yield* seedExpired(engine, "no-secret")
        const before = refreshRequests(server)
        const error = yield* failureOf(engine.refresher.getAccessToken("no-secret"))
        // oidc-provider does not answer 400 invalid_request here: Renew sends client_id in the body, so the server
        // sees a client that claims auth method none and rejects the client authentication itself.
        assert.strictEqual(error._tag, "InvalidClient")
        assert.instanceOf(error, RefreshError.InvalidClient)
        assertServerAnswer(error, INVALID_CLIENT)
        assert.strictEqual(refreshRequests(server) - before, 1)
        assert.isUndefined((yield* stored(engine, "no-secret")).reauthRequired)
        assert.isTrue((yield* introspect(server, obtained.refreshToken)).active)
        // A method that needs a secret, without one: refused before any request.
        const refused = yield* failureOf(
          TokenEndpoint.make(endpointOptions(server, { clientSecret: null, authMethod: "client_secret_basic" })).pipe(
            Effect.provide(NodeHttpClient.layerUndici)
          )
        )
        assert.strictEqual(refused._tag, "ConfigurationError")
        assert.strictEqual(refused.option, "clientSecret")
        assert.strictEqual(refreshRequests(server) - before, 1)
        assertNoLeaks(from)
      })))

    it.scoped("a client_secret_post client refreshes with authMethod client_secret_post", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server, {
          client: server.clients.post,
          authMethod: "client_secret_post",
          introspection: true
        })
        const obtained = yield* seedExpired(engine, "post", { client: server.clients.post })
        const before = refreshRequests(server)
        const token = yield* engine.refresher.getAccessToken("post")
        assert.strictEqual(refreshRequests(server) - before, 1)
        assert.strictEqual((yield* userinfo(server, token)).status, 200)
        const current = yield* stored(engine, "post")
        const refresh = yield* introspect(server, current.refreshToken)
        assert.isTrue(refresh.active)
        assert.strictEqual(refresh.client_id, "client-post")
        assert.strictEqual(current.refreshTokenExpiresAt, (refresh.exp as number) * 1000)
        assert.isFalse((yield* introspect(server, obtained.refreshToken)).active)
        assertNoLeaks(from)
      })))
  }
)

// ---------------------------------------------------------------------------------------------------------------
// 3b. Expired refresh tokens (needs its own server: refresh-token TTL 2 s)
// ---------------------------------------------------------------------------------------------------------------

layer(authServer({ accessTokenTtlSeconds: 1, refreshTokenTtlSeconds: 2, rotation: true }), { excludeTestServices: true })(
  "expired refresh token (access token TTL 1 s, refresh token TTL 2 s)",
  (it) => {
    it.scoped("InvalidGrant reason \"expired\" with introspection, no reason without", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const introspecting = yield* makeEngine(server, { introspection: true })
        const plain = yield* makeEngine(server)
        // Renew learns a refresh token's expiry by introspecting it when the grant is set; a token of this server
        // lives 1-2 s (whole seconds), so on a loaded machine it can be gone before Renew asks. Only when the token was
        // still alive once setGrant returned must Renew have learned its expiry; otherwise set up with a new grant.
        let a: ObtainedGrant | undefined
        let keyA = ""
        for (let attempt = 1; a === undefined; attempt++) {
          assert.isAtMost(attempt, 20, "a refresh token that lived until setGrant returned, within 20 tries")
          const candidate = yield* obtain(server)
          yield* introspecting.refresher.setGrant(`expiring-${attempt}`, {
            accessToken: candidate.accessToken,
            refreshToken: candidate.refreshToken,
            expiresIn: candidate.expiresIn
          })
          const learned = (yield* stored(introspecting, `expiring-${attempt}`)).refreshTokenExpiresAt
          const aliveThroughout = Date.now() < expiryOf(server, candidate.refreshToken)
          if (aliveThroughout) assert.isDefined(learned, "introspection told Renew when the refresh token expires")
          if (learned !== undefined) {
            assert.strictEqual(learned, expiryOf(server, candidate.refreshToken), "the server's expiry")
            a = candidate
            keyA = `expiring-${attempt}`
          }
        }
        const b = yield* obtain(server)
        yield* plain.refresher.setGrant("expiring", {
          accessToken: b.accessToken,
          refreshToken: b.refreshToken,
          expiresIn: b.expiresIn
        })
        // Until both refresh tokens have expired by the server's record, however long that takes.
        yield* Effect.promise(() =>
          untilPast(Math.max(expiryOf(server, a!.refreshToken), expiryOf(server, b.refreshToken)) + 1_000)
        )
        const before = refreshRequests(server)
        const [expired, unknown] = yield* Effect.all([
          failureOf(introspecting.refresher.getAccessToken(keyA)),
          failureOf(plain.refresher.getAccessToken("expiring"))
        ])
        assert.strictEqual(refreshRequests(server) - before, 2, "one request each, no retry")
        for (const error of [expired, unknown]) {
          assert.strictEqual(error._tag, "InvalidGrant")
          assert.instanceOf(error, RefreshError.InvalidGrant)
          assertServerAnswer(error as RefreshError.InvalidGrant, INVALID_GRANT)
        }
        assert.strictEqual((expired as RefreshError.InvalidGrant).reason, "expired")
        assert.isUndefined((unknown as RefreshError.InvalidGrant).reason)
        assert.strictEqual((yield* stored(introspecting, keyA)).reauthRequired, "expired")
        assert.strictEqual((yield* stored(plain, "expiring")).reauthRequired, "invalid_grant")
        assert.isFalse((yield* introspect(server, a!.refreshToken)).active)
        assert.isFalse((yield* introspect(server, b.refreshToken)).active)
        assertNoLeaks(from)
      })), 90_000)
  }
)

// ---------------------------------------------------------------------------------------------------------------
// 4. Resource requests: userinfo with Renew's tokens, BearerClient across expiries
// ---------------------------------------------------------------------------------------------------------------

layer(authServer({ accessTokenTtlSeconds: 60, rotation: true }), { excludeTestServices: true })(
  "resource requests",
  (it) => {
    it.scoped("the access token Renew returns is accepted by the userinfo endpoint", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server)
        const obtained = yield* obtain(server)
        yield* engine.refresher.setGrant("userinfo", {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresIn: 0
        })
        const token = yield* engine.refresher.getAccessToken("userinfo")
        assert.notStrictEqual(Redacted.value(token), obtained.accessToken, "a refreshed token")
        const answer = yield* userinfo(server, token)
        assert.strictEqual(answer.status, 200)
        assert.deepStrictEqual(JSON.parse(answer.body), { sub: "fixture-user" })
        // The control: userinfo does check tokens.
        assert.strictEqual((yield* userinfo(server, "not-a-token-issued-by-this-server")).status, 401)
        assertNoLeaks(from)
      })))
  }
)

layer(authServer({ accessTokenTtlSeconds: 2, rotation: true }), { excludeTestServices: true })(
  "resource requests across expiries (access token TTL 2 s)",
  (it) => {
    it.scoped("BearerClient against userinfo: a request every 500 ms across several expiries, no 401 while a token lives", () =>
      capturing(Effect.gen(function*() {
        const from = mark()
        const server = yield* Fixture
        const engine = yield* makeEngine(server)
        const obtained = yield* obtain(server)
        yield* engine.refresher.setGrant("bearer", {
          accessToken: obtained.accessToken,
          refreshToken: obtained.refreshToken,
          expiresAt: expiryOf(server, obtained.accessToken)
        })
        // What the resource server answered on the wire, including any 401 that BearerClient would hide by replaying,
        // and whether it answered before the token it was given expired (by the server's record).
        const wire: Array<{ readonly status: number; readonly whileLive: boolean }> = []
        const api = (yield* HttpClient.HttpClient).pipe(
          HttpClient.tap((response) =>
            Effect.sync(() => {
              const bearer = (response.request.headers["authorization"] ?? "").replace(/^Bearer /, "")
              wire.push({ status: response.status, whileLive: Date.now() < expiryOf(server, bearer) })
            })
          ),
          BearerClient.withBearer("bearer")
        )
        const before = refreshRequests(server)
        const statuses: Array<number> = []
        const deadline = Date.now() + 60_000
        while (refreshRequests(server) - before < 3) {
          assert.isBelow(Date.now(), deadline, "three expiries crossed within a minute")
          const response = yield* api.get(server.userinfoEndpoint).pipe(
            Effect.provideService(Refresher.Refresher, engine.refresher)
          )
          statuses.push(response.status)
          if (response.status === 200) assert.deepStrictEqual(yield* response.json, { sub: "fixture-user" })
          yield* Effect.sleep("500 millis")
        }
        // A token Renew served can reach the server after it expired only if the machine stalled past Renew's margin:
        // such a 401 is replayed (once per call) with a new token. Any other rejection is Renew's.
        const late = wire.filter((answer) => answer.status !== 200 && !answer.whileLive).length
        assert.deepStrictEqual(
          wire.filter((answer) => answer.status !== 200 && answer.whileLive),
          [],
          "no 401 on the wire while the token lived: refreshed before expiry"
        )
        assert.isAtMost(wire.length - statuses.length, late, "a replay only after a late rejection")
        assert.isAtMost(statuses.filter((status) => status !== 200).length, late, "callers saw only 200")
        assertNoLeaks(from)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))), 90_000)
  }
)

// ---------------------------------------------------------------------------------------------------------------
// 5. Nothing leaked, across the whole file
// ---------------------------------------------------------------------------------------------------------------

describe("no secrets in telemetry or errors", () => {
  it("no token, client secret or Basic credential in any captured log, span or error of this file", () => {
    // The capture is not vacuous: it saw the engine's logs, spans and errors, and the redacted headers.
    assert.isAtLeast(secrets.size, 150, "tokens and secrets collected")
    assert.isAtLeast(captured.errors.length, 9, "errors observed")
    const lines = captured.logs.join("\n")
    assert.include(lines, "renew: refreshed access token")
    assert.include(lines, "renew: refresh failed with InvalidGrant")
    assert.include(lines, "renew: refresh failed with InvalidClient")
    assert.include(lines, "renew: refresh failed with InvalidScope")
    const names = new Set(captured.spans.map((span) => span.name))
    for (const name of ["renew.refresh", "renew.refresh.attempt", "renew.lock.wait", "renew.introspect", "http.client GET"]) {
      assert.isTrue(names.has(name), `span ${name} captured`)
    }
    // Token and introspection requests are one CLIENT span each (Renew's); the HTTP client's own is not recorded.
    assert.isFalse(names.has("http.client POST"), "no second CLIENT span for a token request")
    const authorizationHeaders = captured.spans.flatMap((span) => {
      const value = span.attributes.get("http.request.header.authorization")
      return value === undefined ? [] : [String(value)]
    })
    assert.isAtLeast(authorizationHeaders.length, 1, "Bearer authorization headers (resource-server calls) were seen by the tracer")
    assert.deepStrictEqual([...new Set(authorizationHeaders)], ["<redacted>"])
    assert.isTrue(
      captured.spans.some((span) => span.attributes.get("oauth.error") === "invalid_grant"),
      "the attempt span carries the OAuth error"
    )
    assertNoLeaks()
  })
})
