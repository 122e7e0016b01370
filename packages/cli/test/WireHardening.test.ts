/**
 * The doctor's own HTTP exchanges (discovery, introspection) and its last line of defence against printing a secret
 * hold to the same rules as the engine (issue 12): an answer is read up to 64 KiB, a redirect is never followed, and
 * a secret is scrubbed in every form a server can echo it in, whatever its length.
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { afterEach, assert, describe, expect, it } from "vitest"
import { basicCredential, exchange, maxBodyBytes } from "../src/internal/http.js"
import { scrubSecrets } from "../src/internal/text.js"
import { check, doctorJson, statuses } from "./support/run.js"

const servers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((close) => close()))
})

const serve = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
  let requests = 0
  let closed = 0
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    requests++
    res.on("close", () => closed++)
    res.on("error", () => {})
    handler(req, res)
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  servers.push(() =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const socket of sockets) socket.destroy()
    })
  )
  const { port } = server.address() as AddressInfo
  return { origin: `http://127.0.0.1:${port}`, requests: () => requests, closed: () => closed }
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
  })

const run = <A>(effect: Effect.Effect<A, never, HttpClient.HttpClient>) =>
  Effect.runPromise(Effect.provide(effect, NodeHttpClient.layer))

const formsOf = (secret: string): ReadonlyArray<string> => [
  secret,
  new URLSearchParams({ v: secret }).toString().slice(2),
  encodeURIComponent(secret),
  encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
  Buffer.from(secret).toString("base64"),
  Buffer.from(secret).toString("base64url")
]

describe("the doctor's exchanges", () => {
  it("read an endless body up to 64 KiB and stop (no hang, the connection dropped)", async () => {
    const server = await serve((req, res) => {
      void readBody(req).then(() => {
        res.writeHead(200, { "content-type": "application/json" })
        const chunk = Buffer.alloc(16 * 1024, "{")
        const pump = () => {
          while (!res.destroyed) if (!res.write(chunk)) return void res.once("drain", pump)
        }
        pump()
      })
    })
    const result = await run(exchange(HttpClientRequest.get(`${server.origin}/.well-known/openid-configuration`), 20_000))
    assert(Either.isRight(result), Either.isLeft(result) ? result.left.detail : "")
    expect(result.right.truncated).toBe(true)
    expect(Buffer.byteLength(result.right.body)).toBe(maxBodyBytes)
    const deadline = Date.now() + 10_000
    while (server.closed() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(server.closed()).toBe(1)
  })

  it("do not follow a redirect to another origin", async () => {
    const elsewhere = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ active: true }))
    })
    const redirecting = await serve((req, res) => {
      void readBody(req).then(() => {
        res.writeHead(307, { location: `${elsewhere.origin}/introspect` })
        res.end()
      })
    })
    const result = await run(
      exchange(HttpClientRequest.post(`${redirecting.origin}/introspect`).pipe(HttpClientRequest.bodyText("token=x")), 5000)
    )
    assert(Either.isRight(result))
    expect(result.right.status).toBe(307)
    expect(elsewhere.requests()).toBe(0)
  })
})

describe("scrubSecrets", () => {
  it("scrubs every form of a secret: as is, form-, URL- and base64-encoded", () => {
    const secret = "s3+cr/t=k9=0123"
    for (const form of formsOf(secret)) {
      expect(scrubSecrets(`the server said: ${form}!`, [secret])).toBe("the server said: <redacted>!")
    }
  })

  it("scrubs a short secret where it stands as a whole token, not inside words", () => {
    expect(scrubSecrets("client_secret=k9&x=1 (k9) k9x bk9", ["k9"])).toBe(
      "client_secret=<redacted>&x=1 (<redacted>) k9x bk9"
    )
    expect(scrubSecrets("secret 'a' is wrong", ["a"])).toBe("secret '<redacted>' is wrong")
  })
})

describe("renew doctor", () => {
  it("never prints the client secret an introspection endpoint echoes back, in any encoding", async () => {
    const secret = "s3+cr/t=k9=0123/x"
    const token = await serve((req, res) => {
      void readBody(req).then(() => {
        res.writeHead(503, { "content-type": "text/plain" })
        res.end("down")
      })
    })
    const introspection = await serve((req, res) => {
      void readBody(req).then((body) => {
        const sent = new URLSearchParams(body).get("client_secret") ?? ""
        res.writeHead(401, { "content-type": "application/json" })
        res.end(JSON.stringify({
          error: "invalid_client",
          error_description: `bad client: ${body} / ${req.headers.authorization ?? ""} / ${
            formsOf(sent).join(" ")
          }`
        }))
      })
    })
    for (const authMethod of ["client_secret_post", "client_secret_basic"]) {
      const { report, stderr, stdout } = await doctorJson([
        "--token-endpoint",
        `${token.origin}/token`,
        "--introspection-endpoint",
        `${introspection.origin}/introspect`,
        "--client-id",
        "wire-client",
        "--auth-method",
        authMethod
      ], { env: { RENEW_CLIENT_SECRET: secret } })
      const clientAuth = check(report, "client-auth")
      assert.strictEqual(clientAuth.status, "FAIL", statuses(report))
      assert.include(clientAuth.evidence, "invalid_client")
      assert.include(clientAuth.evidence, "<redacted>")
      for (const form of [...formsOf(secret), basicCredential("wire-client", secret)]) {
        assert.notInclude(stdout + stderr, form, `${authMethod}: ${form}`)
      }
    }
  })

  it("--refresh says which members of a 2xx were ignored, and keeps the token pair", async () => {
    const token = await serve((req, res) => {
      void readBody(req).then(() => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({
          access_token: "at-wire-0123456789",
          token_type: "Bearer",
          expires_in: "soon",
          scope: null,
          refresh_token: "rt-wire-rotated-0123456789"
        }))
      })
    })
    const { report } = await doctorJson(
      ["--token-endpoint", `${token.origin}/token`, "--client-id", "wire-client", "--refresh"],
      { env: { RENEW_CLIENT_SECRET: "wire-secret-0123456789", RENEW_REFRESH_TOKEN: "rt-wire-original-0123456789" } }
    )
    const refresh = check(report, "refresh")
    assert.strictEqual(refresh.status, "WARN", statuses(report))
    assert.include(refresh.evidence, "the response's expires_in was not usable (wrong type or value) and ignored")
    assert.include(refresh.evidence, "the server ROTATED the refresh token")
    assert.notInclude(JSON.stringify(report), "rt-wire-rotated-0123456789")
  })
})
