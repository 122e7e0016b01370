/**
 * A tiny loopback HTTP server for one test: a handler, a request count, and a close that destroys every socket.
 * Plain node:http, so it depends on nothing under test.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo, Socket } from "node:net"

export interface Loopback {
  /** http://127.0.0.1:<port> */
  readonly origin: string
  /** 127.0.0.1:<port> */
  readonly host: string
  /** http://127.0.0.1:<port>/token */
  readonly url: string
  /** Requests that reached the server. */
  readonly requests: () => number
  /** Responses whose connection closed (the client stopped reading, or it ended). */
  readonly closed: () => number
}

/** Reads a request body (as text) before answering. */
export const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

/** A loopback server that lives as long as the test's scope. */
export const loopback = (
  handler: (req: IncomingMessage, res: ServerResponse) => void
): Effect.Effect<Loopback, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
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
      const { port } = server.address() as AddressInfo
      const close = () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
          for (const socket of sockets) socket.destroy()
        })
      return {
        loopback: {
          origin: `http://127.0.0.1:${port}`,
          host: `127.0.0.1:${port}`,
          url: `http://127.0.0.1:${port}/token`,
          requests: () => requests,
          closed: () => closed
        },
        close
      }
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ loopback }) => loopback))
