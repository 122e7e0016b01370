/**
 * A small HTTP proxy in front of the authorization server. The client service's TokenEndpoint (and introspection)
 * URL points here; the proxy forwards to oidc-provider, or injects the fault that a chaos switch asks for:
 *
 * - latency: every token request is held this long before it is forwarded;
 * - a burst of N 503s: the next N token requests are answered 503 with an HTML error page, as a load balancer would;
 * - a 429 with Retry-After: the next token request is answered 429 Too Many Requests;
 * - network cut: every new connection and every request on an open connection is dropped (the client sees a reset);
 *   exchanges already under way finish, so a refresh the server has already rotated is never lost in the cut.
 *
 * Only token requests (POST /token) get latency, 503s and 429s; the cut drops everything, introspection included.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createServer, type IncomingHttpHeaders, request as httpRequest } from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { formatMillis } from "./output.js"

export interface ChaosState {
  readonly latencyMs: number
  readonly pending503: number
  readonly pending429: { readonly retryAfterSeconds: number } | undefined
  readonly networkCut: boolean
  /** Token requests that reached the proxy. */
  readonly tokenRequests: number
}

export interface ChaosProxy {
  /** http://127.0.0.1:<port> */
  readonly url: string
  readonly port: number
  readonly state: () => ChaosState
  readonly setLatency: (millis: number) => void
  readonly fail503: (count: number) => void
  readonly rateLimit: (retryAfterSeconds: number) => void
  readonly cutNetwork: () => void
  readonly restoreNetwork: () => void
  /** Every switch off. */
  readonly clear: () => void
}

const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"]

const withoutHopByHop = (headers: IncomingHttpHeaders): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.includes(name.toLowerCase())) continue
    out[name] = value
  }
  return out
}

const pathOf = (url: string | undefined): string => {
  const raw = url ?? "/"
  const query = raw.indexOf("?")
  return query === -1 ? raw : raw.slice(0, query)
}

export const start = (options: {
  /** The authorization server's base URL. */
  readonly target: string
  /** A story line. */
  readonly log: (text: string) => void
  /** A 200 token response carried a refresh token (it is not kept; only told). */
  readonly onRefreshTokenIssued: (refreshToken: string) => void
}): Effect.Effect<ChaosProxy, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ proxy: ChaosProxy; close: () => Promise<void> }, Error>((resume) => {
      const target = new URL(options.target)
      let latencyMs = 0
      let pending503 = 0
      let pending429: { retryAfterSeconds: number } | undefined
      let networkCut = false
      let tokenRequests = 0
      let last429: { at: number; retryAfterSeconds: number } | undefined
      const sockets = new Set<Socket>()
      /** Sockets with an exchange under way: a cut lets them finish. */
      const busy = new Set<Socket>()
      const timers = new Set<NodeJS.Timeout>()

      const forward = (
        method: string,
        url: string,
        headers: IncomingHttpHeaders,
        body: Buffer,
        isToken: boolean,
        respond: (status: number, headers: Record<string, string | Array<string>>, body: Buffer) => void
      ) => {
        const upstream = httpRequest(
          {
            host: target.hostname,
            port: target.port,
            method,
            path: url,
            headers: { ...withoutHopByHop(headers), host: target.host, "content-length": String(body.length) }
          },
          (answer) => {
            const parts: Array<Buffer> = []
            answer.on("data", (chunk: Buffer) => parts.push(chunk))
            answer.on("error", () => respond(502, { "content-type": "text/plain" }, Buffer.from("bad gateway")))
            answer.on("end", () => {
              const data = Buffer.concat(parts)
              if (isToken && answer.statusCode === 200) {
                try {
                  const json = JSON.parse(data.toString("utf8")) as { refresh_token?: unknown }
                  if (typeof json.refresh_token === "string") options.onRefreshTokenIssued(json.refresh_token)
                } catch {
                  // not JSON: the client will say so (MalformedResponse)
                }
              }
              respond(answer.statusCode ?? 502, { ...withoutHopByHop(answer.headers), "content-length": String(data.length) }, data)
            })
          }
        )
        upstream.on("error", () => respond(502, { "content-type": "text/plain" }, Buffer.from("bad gateway")))
        upstream.end(body)
      }

      const server = createServer((req, res) => {
        const socket = req.socket
        if (networkCut) {
          socket.destroy()
          options.log("dropped a connection to the authorization server (network cut)")
          return
        }
        busy.add(socket)
        const done = () => busy.delete(socket)
        res.on("close", done)
        const respond = (status: number, headers: Record<string, string | Array<string>>, body: Buffer) => {
          if (res.destroyed || res.headersSent) return
          res.writeHead(status, headers)
          res.end(body)
        }
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("error", () => socket.destroy())
        req.on("end", () => {
          const body = Buffer.concat(chunks)
          const isToken = req.method === "POST" && pathOf(req.url) === "/token"
          if (isToken) {
            tokenRequests++
            if (last429 !== undefined) {
              const gap = Date.now() - last429.at
              options.log(
                `token request arrived ${formatMillis(gap)} after the 429 (Retry-After: ${last429.retryAfterSeconds} s${
                  gap >= last429.retryAfterSeconds * 1000 ? ", honoured" : ", NOT honoured"
                })`
              )
              last429 = undefined
            }
            if (pending503 > 0) {
              pending503--
              options.log(
                `token request → 503 Service Unavailable (${pending503 === 0 ? "last of the burst" : `${pending503} more to come`})`
              )
              respond(
                503,
                { "content-type": "text/html; charset=utf-8" },
                Buffer.from("<html><body><h1>503 Service Unavailable</h1>The server is overloaded.</body></html>")
              )
              return
            }
            if (pending429 !== undefined) {
              const { retryAfterSeconds } = pending429
              pending429 = undefined
              last429 = { at: Date.now(), retryAfterSeconds }
              options.log(`token request → 429 Too Many Requests, Retry-After: ${retryAfterSeconds} s`)
              respond(
                429,
                { "content-type": "application/json", "retry-after": String(retryAfterSeconds) },
                Buffer.from(JSON.stringify({ error: "slow_down", error_description: "too many requests" }))
              )
              return
            }
            if (latencyMs > 0) {
              options.log(`holding a token request for ${latencyMs} ms (latency)`)
              const timer = setTimeout(() => {
                timers.delete(timer)
                forward(req.method ?? "POST", req.url ?? "/", req.headers, body, isToken, respond)
              }, latencyMs)
              timers.add(timer)
              return
            }
          }
          forward(req.method ?? "GET", req.url ?? "/", req.headers, body, isToken, respond)
        })
      })
      server.on("connection", (socket) => {
        if (networkCut) {
          socket.destroy()
          options.log("dropped a connection to the authorization server (network cut)")
          return
        }
        sockets.add(socket)
        socket.once("close", () => {
          sockets.delete(socket)
          busy.delete(socket)
        })
      })
      server.once("error", (error) => resume(Effect.fail(new Error(`the chaos proxy did not start: ${error.message}`))))
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        const proxy: ChaosProxy = {
          url: `http://127.0.0.1:${port}`,
          port,
          state: () => ({ latencyMs, pending503, pending429, networkCut, tokenRequests }),
          setLatency: (millis) => {
            latencyMs = millis
          },
          fail503: (count) => {
            pending503 = count
          },
          rateLimit: (retryAfterSeconds) => {
            pending429 = { retryAfterSeconds }
          },
          cutNetwork: () => {
            networkCut = true
            // Idle keep-alive connections go now; exchanges under way finish.
            for (const socket of sockets) if (!busy.has(socket)) socket.destroy()
          },
          restoreNetwork: () => {
            networkCut = false
          },
          clear: () => {
            latencyMs = 0
            pending503 = 0
            pending429 = undefined
            networkCut = false
            last429 = undefined
          }
        }
        resume(Effect.succeed({
          proxy,
          close: () =>
            new Promise<void>((resolve) => {
              for (const timer of timers) clearTimeout(timer)
              server.close(() => resolve())
              server.closeAllConnections()
              for (const socket of sockets) socket.destroy()
            })
        }))
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
