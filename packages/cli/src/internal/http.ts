/**
 * Plain HTTP exchanges for the doctor: the raw status, headers and body (the doctor judges them itself), when the
 * request was sent and answered (for the clock-skew estimate), and a transport failure as an error code, never as a
 * request dump.
 *
 * @internal
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type { TokenEndpoint } from "@renew/core"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Tls from "node:tls"

/** @internal */
export interface Answer {
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  /** At most `maxBodyBytes` of the body (UTF-8). */
  readonly body: string
  /** The body was longer than `maxBodyBytes` and was not read further. */
  readonly truncated: boolean
  readonly sentAt: number
  readonly receivedAt: number
}

/** @internal */
export interface TransportFailure {
  readonly _tag: "TransportFailure"
  /** An error code or a short description (ECONNREFUSED, ETIMEDOUT, DEPTH_ZERO_SELF_SIGNED_CERT, …). */
  readonly detail: string
}

/** The error codes along a cause chain: `ECONNREFUSED`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, … @internal */
export const describeCause = (cause: unknown): string => {
  const seen: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    const message = (current as { message?: unknown }).message
    if (typeof code === "string" && !seen.includes(code)) seen.push(code)
    else if (typeof message === "string" && seen.length === 0 && message !== "fetch failed") seen.push(message)
    current = (current as { cause?: unknown }).cause
  }
  return seen.length === 0 ? "connection failed" : seen.join(": ")
}

/** The most the doctor reads of any answer, like the engine: 64 KiB. @internal */
export const maxBodyBytes = 64 * 1024

/** Reads at most `maxBodyBytes` of a body, then stops reading (the rest is never buffered). */
const readCapped = (response: HttpClientResponse.HttpClientResponse) =>
  Stream.runFoldWhile(
    response.stream,
    { chunks: Chunk.empty<Uint8Array>(), size: 0 },
    ({ size }) => size <= maxBodyBytes,
    ({ chunks, size }, chunk) => ({ chunks: Chunk.append(chunks, chunk), size: size + chunk.length })
  ).pipe(
    Effect.map(({ chunks, size }) => {
      const bytes = new Uint8Array(Math.min(size, maxBodyBytes))
      let at = 0
      for (const chunk of chunks) {
        if (at >= bytes.length) break
        const piece = chunk.subarray(0, bytes.length - at)
        bytes.set(piece, at)
        at += piece.length
      }
      return { body: new TextDecoder().decode(bytes), truncated: size > maxBodyBytes }
    })
  )

/**
 * Sends one request and reads the answer (at most `maxBodyBytes` of its body), within `timeoutMillis`. Redirects are
 * not followed (node:http never does): a 3xx is an answer like any other.
 *
 * @internal
 */
export const exchange = (
  request: HttpClientRequest.HttpClientRequest,
  timeoutMillis: number
): Effect.Effect<Either.Either<Answer, TransportFailure>, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withTracerPropagation(false))
    const sentAt = Date.now()
    return yield* client.execute(request).pipe(
      Effect.flatMap((response) =>
        Effect.map(readCapped(response), ({ body, truncated }): Answer => ({
          status: response.status,
          headers: response.headers,
          body,
          truncated,
          sentAt,
          receivedAt: Date.now()
        }))
      ),
      Effect.scoped,
      Effect.timeoutFail({
        duration: timeoutMillis,
        onTimeout: (): TransportFailure => ({
          _tag: "TransportFailure",
          detail: `no answer within ${Math.round(timeoutMillis / 100) / 10}s`
        })
      }),
      Effect.catchTags({
        RequestError: (error) =>
          Effect.fail<TransportFailure>({ _tag: "TransportFailure", detail: describeCause(error.cause) }),
        ResponseError: (error) =>
          Effect.fail<TransportFailure>({ _tag: "TransportFailure", detail: describeCause(error.cause) })
      }),
      Effect.either
    )
  })

/** @internal */
export interface ClientCredentials {
  readonly clientId: string
  readonly clientSecret: Redacted.Redacted<string> | undefined
  readonly authMethod: TokenEndpoint.AuthMethod
}

// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded.
const formEncode = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2)

/** The client_secret_basic credential (the part after `Basic `): a secret of its own, to scrub. @internal */
export const basicCredential = (clientId: string, clientSecret: string): string =>
  btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)

/** A form POST authenticated like the token endpoint expects (Basic, client_secret_post or none). @internal */
export const authenticatedPost = (
  url: string,
  params: Record<string, string>,
  credentials: ClientCredentials
): HttpClientRequest.HttpClientRequest => {
  const form: Record<string, string> = { ...params }
  if (credentials.authMethod === "client_secret_post") {
    form.client_id = credentials.clientId
    if (credentials.clientSecret !== undefined) form.client_secret = Redacted.value(credentials.clientSecret)
  } else if (credentials.authMethod === "none") {
    form.client_id = credentials.clientId
  }
  let request = HttpClientRequest.post(url).pipe(
    HttpClientRequest.acceptJson,
    HttpClientRequest.bodyUrlParams(form)
  )
  if (credentials.authMethod === "client_secret_basic" && credentials.clientSecret !== undefined) {
    request = HttpClientRequest.setHeader(
      request,
      "authorization",
      `Basic ${basicCredential(credentials.clientId, Redacted.value(credentials.clientSecret))}`
    )
  }
  return request
}

/** Parses a JSON object body; anything else is `undefined`. @internal */
export const jsonObject = (body: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(body)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The HTTP client the CLI uses: Node's http/https with a fresh agent (no keep-alive, so the process exits as soon as
 * it is done), trusting Node's default CAs plus `extraCa` when given.
 *
 * @internal
 */
export const layerHttpClient = (extraCa: ReadonlyArray<string> | undefined): Layer.Layer<HttpClient.HttpClient> =>
  NodeHttpClient.layerWithoutAgent.pipe(
    Layer.provide(
      NodeHttpClient.makeAgentLayer({
        keepAlive: false,
        ...(extraCa !== undefined ? { ca: [...Tls.rootCertificates, ...extraCa] } : {})
      })
    )
  )

/** Reads a PEM file of extra CA certificates: its contents, or the error code when it cannot be read. @internal */
export const readCaFile = (file: string): Either.Either<ReadonlyArray<string>, string> => {
  try {
    return Either.right([Fs.readFileSync(file, "utf8")])
  } catch (error) {
    return Either.left((error as NodeJS.ErrnoException).code ?? "unreadable")
  }
}

/** Reads a PEM file of extra CA certificates; `undefined` when not given or unreadable (the doctor reports that). @internal */
export const readCa = (file: string | undefined): ReadonlyArray<string> | undefined =>
  file === undefined ? undefined : Either.getOrUndefined(readCaFile(file))
