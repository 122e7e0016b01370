/**
 * The protected resource API: `GET /resource` answers 200 only for an access token the authorization server says is
 * active (RFC 7662 introspection, as the API's own client), and 401 otherwise. It talks to the authorization server
 * directly, not through the chaos proxy: the chaos is between the client and its token endpoint.
 */
import type { AuthServer, FixtureClient } from "@renew/auth-server-fixture"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createServer, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export interface ResourceApi {
  /** http://127.0.0.1:<port>/resource */
  readonly url: string
  readonly port: number
  readonly stats: () => { readonly ok: number; readonly rejected: number }
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const data = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)), ...headers })
  res.end(data)
}

export const start = (options: {
  readonly server: AuthServer
  readonly client: FixtureClient
  readonly log: (text: string) => void
}): Effect.Effect<ResourceApi, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ api: ResourceApi; close: () => Promise<void> }, Error>((resume) => {
      let ok = 0
      let rejected = 0
      const sockets = new Set<Socket>()
      const server = createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]
        if (req.method !== "GET" || path !== "/resource") {
          json(res, 404, { error: "not_found", hint: "GET /resource" })
          return
        }
        const header = req.headers.authorization ?? ""
        const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : ""
        const unauthorized = (why: string) => {
          rejected++
          options.log(`401 for GET /resource: ${why}`)
          json(res, 401, { error: "invalid_token", error_description: why }, {
            "www-authenticate": `Bearer error="invalid_token", error_description="${why}"`
          })
        }
        if (token === "") {
          unauthorized("no bearer token")
          return
        }
        options.server.introspect(token, options.client).then(
          (answer) => {
            if (answer.active !== true) {
              unauthorized("the access token is not active (expired or revoked)")
              return
            }
            ok++
            const exp = typeof answer.exp === "number" ? answer.exp : undefined
            json(res, 200, {
              resource: "the protected resource",
              sub: answer.sub,
              client_id: answer.client_id,
              scope: answer.scope,
              token_expires_in_seconds: exp === undefined ? undefined : Math.max(0, exp - Math.floor(Date.now() / 1000))
            })
          },
          (error: unknown) => {
            options.log(`503 for GET /resource: introspection failed (${error instanceof Error ? error.message : String(error)})`)
            json(res, 503, { error: "temporarily_unavailable", error_description: "cannot check the token right now" })
          }
        )
      })
      server.on("connection", (socket) => {
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
      })
      server.once("error", (error) => resume(Effect.fail(new Error(`the protected API did not start: ${error.message}`))))
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(Effect.succeed({
          api: { url: `http://127.0.0.1:${port}/resource`, port, stats: () => ({ ok, rejected }) },
          close: () =>
            new Promise<void>((resolve) => {
              server.close(() => resolve())
              server.closeAllConnections()
              for (const socket of sockets) socket.destroy()
            })
        }))
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ api }) => api))
