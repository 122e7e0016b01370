/**
 * The token endpoint error mapping, row by row, through the public TokenEndpoint over real loopback HTTP against the
 * scripted endpoint. The table lives in ./support/errorTable.ts; it runs once per HttpClient layer (Undici and Fetch)
 * to show that the mapping does not depend on the client.
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, expect, it } from "@effect/vitest"
import { TokenEndpoint } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { startScriptedTokenEndpoint, type ScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { checkRow, errorTable, runRow } from "./support/errorTable.js"

const layers: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["NodeHttpClient.layerUndici", NodeHttpClient.layerUndici],
  ["FetchHttpClient.layer", FetchHttpClient.layer]
]

for (const [layerName, layer] of layers) {
  describe(`error table (${layerName})`, () => {
    for (const row of errorTable) {
      it.effect(row.name, () =>
        Effect.gen(function*() {
          const { endedBeforeTimeout, exit, requests } = yield* runRow(row)
          checkRow(row, exit)
          // One call is one attempt: nothing is retried inside the endpoint.
          if (row.target === undefined) expect(requests).toHaveLength(1)
          // The per-attempt timeout ends a hung attempt: not earlier (TestClock), and with the Timeout error.
          if (row.expectTag === "Timeout") expect(endedBeforeTimeout).toBe(false)
        }).pipe(Effect.provide(layer)))
    }
  })
}

// --- request shape -----------------------------------------------------------------------------------------------

const withServer = <A, E>(
  f: (server: ScriptedTokenEndpoint) => Effect.Effect<A, E, HttpClient.HttpClient>
): Effect.Effect<A, E> =>
  Effect.acquireRelease(
    Effect.promise(() => startScriptedTokenEndpoint()),
    (server) => Effect.promise(() => server.close())
  ).pipe(Effect.flatMap(f), Effect.scoped, Effect.provide(NodeHttpClient.layerUndici))

/** One successful refresh (the built-in issuer answers via an "issue" step) and the request the server saw. */
const refreshOnce = (
  options: Omit<TokenEndpoint.TokenEndpointOptions, "url">,
  request: Partial<TokenEndpoint.RefreshRequest> = {}
) =>
  withServer((server) =>
    Effect.gen(function*() {
      server.script({ kind: "issue" })
      const endpoint = yield* TokenEndpoint.make({ url: server.url, ...options })
      yield* endpoint.refresh({ refreshToken: Redacted.make("rt_request_shape_0001"), ...request })
      expect(server.requests).toHaveLength(1)
      return server.requests[0]!
    })
  )

const SECRET = "s3:cr+t/=x y"
const ID = "client:1+ü"

describe("request shape", () => {
  it.live("client_secret_basic: Basic base64(urlencode(id):urlencode(secret)), no secret in the body", () =>
    Effect.gen(function*() {
      const req = yield* refreshOnce({ clientId: ID, clientSecret: Redacted.make(SECRET), authMethod: "client_secret_basic" })
      // application/x-www-form-urlencoded of each part (RFC 6749 §2.3.1), written out by hand.
      const expected = "Basic " + Buffer.from("client%3A1%2B%C3%BC:s3%3Acr%2Bt%2F%3Dx+y").toString("base64")
      expect(req.headers.authorization).toBe(expected)
      expect(req.form.client_secret).toBeUndefined()
      expect(req.rawBody).not.toContain("client_secret")
      expect(req.rawBody).not.toContain(encodeURIComponent(SECRET))
      expect(req.rawBody).not.toContain(new URLSearchParams({ s: SECRET }).toString().slice(2))
      expect(req.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
      expect(req.headers.accept).toMatch(/application\/json/)
    }))

  it.live("client_secret_basic credentials are accepted by a server that decodes them per RFC 6749 §2.3.1", () =>
    Effect.acquireRelease(
      Effect.promise(() => startScriptedTokenEndpoint({ clientId: ID, clientSecret: SECRET })),
      (server) => Effect.promise(() => server.close())
    ).pipe(
      Effect.flatMap((server) =>
        Effect.gen(function*() {
          const endpoint = yield* TokenEndpoint.make({ url: server.url, clientId: ID, clientSecret: Redacted.make(SECRET) })
          expect(endpoint.authMethod).toBe("client_secret_basic")
          const response = yield* endpoint.refresh({ refreshToken: Redacted.make(server.mintRefreshToken()) })
          expect(Redacted.value(response.access_token)).toBe(server.lastIssued()?.accessToken)
          // and a wrong secret is refused by the same server
          const wrong = yield* TokenEndpoint.make({
            url: server.url,
            clientId: ID,
            clientSecret: Redacted.make(`${SECRET}!`)
          })
          const error = yield* Effect.flip(wrong.refresh({ refreshToken: Redacted.make(server.mintRefreshToken()) }))
          expect(error._tag).toBe("InvalidClient")
        })
      ),
      Effect.scoped,
      Effect.provide(NodeHttpClient.layerUndici)
    ))

  it.live("client_secret_post: client_id and client_secret in the body, no Authorization", () =>
    Effect.gen(function*() {
      const req = yield* refreshOnce({ clientId: ID, clientSecret: Redacted.make(SECRET), authMethod: "client_secret_post" })
      expect(req.headers.authorization).toBeUndefined()
      expect(req.form.client_id).toBe(ID)
      expect(req.form.client_secret).toBe(SECRET)
      expect(req.form.grant_type).toBe("refresh_token")
    }))

  it.live("none: client_id only", () =>
    Effect.gen(function*() {
      const req = yield* refreshOnce({ clientId: ID })
      expect(req.headers.authorization).toBeUndefined()
      expect(req.form.client_id).toBe(ID)
      expect(req.form.client_secret).toBeUndefined()
      expect(Object.keys(req.form).sort()).toEqual(["client_id", "grant_type", "refresh_token"])
    }))

  it.live("scope and extraParams are sent; a per-request scope overrides the configured one", () =>
    Effect.gen(function*() {
      const options = {
        clientId: ID,
        scope: "api:read",
        extraParams: { resource: "https://api.example.com/", audience: "orders" }
      }
      const configured = yield* refreshOnce(options)
      expect(configured.form.scope).toBe("api:read")
      expect(configured.form.resource).toBe("https://api.example.com/")
      expect(configured.form.audience).toBe("orders")
      const overridden = yield* refreshOnce(options, { scope: "api:read api:write" })
      expect(overridden.form.scope).toBe("api:read api:write")
      const unscoped = yield* refreshOnce({ clientId: ID })
      expect(unscoped.form.scope).toBeUndefined()
    }))

  it.live("extraParams cannot override grant_type or refresh_token", () =>
    Effect.gen(function*() {
      const req = yield* refreshOnce({
        clientId: ID,
        extraParams: { grant_type: "client_credentials", refresh_token: "rt_from_extra_params" }
      })
      expect(req.form.grant_type).toBe("refresh_token")
      expect(req.form.refresh_token).toBe("rt_request_shape_0001")
    }))

  it.live("the refresh token is in the form body, never in the URL", () =>
    Effect.gen(function*() {
      const req = yield* refreshOnce({ clientId: ID, clientSecret: Redacted.make(SECRET) })
      expect(req.method).toBe("POST")
      expect(req.path).toBe("/token")
      expect(req.form.refresh_token).toBe("rt_request_shape_0001")
      expect(req.form.grant_type).toBe("refresh_token")
    }))

  it.live("no traceparent is sent by default, even inside a span; propagateTraceContext opts in", () =>
    Effect.gen(function*() {
      const quiet = yield* refreshOnce({ clientId: ID }).pipe(Effect.withSpan("caller"))
      expect(quiet.headers.traceparent).toBeUndefined()
      expect(quiet.headers.b3).toBeUndefined()
      const loud = yield* refreshOnce({ clientId: ID, propagateTraceContext: true }).pipe(Effect.withSpan("caller"))
      expect(loud.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
    }))
})

// --- configuration -----------------------------------------------------------------------------------------------

const configure = (options: TokenEndpoint.TokenEndpointOptions) =>
  TokenEndpoint.make(options).pipe(Effect.either, Effect.provide(NodeHttpClient.layerUndici))

describe("configuration", () => {
  for (const url of ["http://example.com/token", "http://10.0.0.1/token", "http://127.0.0.1.example.com/token"]) {
    it.effect(`refuses plain http on a non-loopback host: ${url}`, () =>
      Effect.gen(function*() {
        const result = yield* configure({ url, clientId: "c" })
        assert(Either.isLeft(result))
        expect(result.left._tag).toBe("ConfigurationError")
        expect(result.left.option).toBe("url")
        expect(result.left.retryable).toBe(false)
        expect(result.left.message).toMatch(/https/)
      }))
  }

  it.effect("refuses a malformed URL", () =>
    Effect.gen(function*() {
      const result = yield* configure({ url: "not a url", clientId: "c" })
      assert(Either.isLeft(result))
      expect(result.left._tag).toBe("ConfigurationError")
      expect(result.left.option).toBe("url")
      expect(result.left.message).toContain("not a url")
    }))

  it.effect("refuses a URL with embedded credentials without quoting them", () =>
    Effect.gen(function*() {
      const result = yield* configure({ url: "https://user:hunter2secret@auth.example.com/token", clientId: "c" })
      assert(Either.isLeft(result))
      expect(result.left.option).toBe("url")
      expect(result.left.message).not.toContain("hunter2secret")
    }))

  for (
    const [url, host] of [
      ["http://127.0.0.1:1/token", "127.0.0.1:1"],
      ["http://localhost/token", "localhost"],
      ["http://[::1]/token", "[::1]"],
      ["https://auth.example.com/oauth/token", "auth.example.com"]
    ] as const
  ) {
    it.effect(`accepts ${url}`, () =>
      Effect.gen(function*() {
        const result = yield* configure({ url, clientId: "c" })
        assert(Either.isRight(result))
        expect(result.right.host).toBe(host)
        expect(result.right.url).toBe(new URL(url).href)
        expect(result.right.authMethod).toBe("none")
      }))
  }

  it.effect("client_secret_basic (or client_secret_post) without a secret is refused", () =>
    Effect.gen(function*() {
      for (const authMethod of ["client_secret_basic", "client_secret_post"] as const) {
        const result = yield* configure({ url: "https://auth.example.com/token", clientId: "c", authMethod })
        assert(Either.isLeft(result))
        expect(result.left._tag).toBe("ConfigurationError")
        expect(result.left.option).toBe("clientSecret")
        expect(result.left.message).toContain(authMethod)
      }
    }))

  it.effect("an empty clientId and a non-positive timeout are refused", () =>
    Effect.gen(function*() {
      const noId = yield* configure({ url: "https://auth.example.com/token", clientId: "" })
      assert(Either.isLeft(noId))
      expect(noId.left.option).toBe("clientId")
      const zero = yield* configure({ url: "https://auth.example.com/token", clientId: "c", timeout: 0 })
      assert(Either.isLeft(zero))
      expect(zero.left.option).toBe("timeout")
    }))

  it.effect("a secret defaults to client_secret_basic", () =>
    Effect.gen(function*() {
      const result = yield* configure({
        url: "https://auth.example.com/token",
        clientId: "c",
        clientSecret: Redacted.make("s")
      })
      assert(Either.isRight(result))
      expect(result.right.authMethod).toBe("client_secret_basic")
    }))

  it.live("a refused configuration makes no request", () =>
    withServer((server) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(TokenEndpoint.make({
          url: server.url,
          clientId: "c",
          authMethod: "client_secret_post"
        }))
        assert(Exit.isFailure(exit))
        expect(server.requests).toHaveLength(0)
      })
    ))
})
