/**
 * The HTTP side of one token-endpoint exchange: never follow a redirect (a token from another origin is never accepted,
 * and a re-sent POST would carry the credentials there), and read at most `MAX_BODY_BYTES` of any answer.
 *
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Headers from "@effect/platform/Headers"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { MAX_BODY_BYTES } from "./classify.js"

const SENSITIVE_HEADERS = ["location", "www-authenticate", "proxy-authenticate", "proxy-authorization"]

/**
 * `NodeHttpClient.UndiciRequestOptions` of @effect/platform-node (the same key, so the same service): core does not
 * depend on platform-node.
 */
const UndiciRequestOptions = Context.GenericTag<
  "@effect/platform-node/NodeHttpClient/undiciOptions",
  Readonly<Record<string, unknown>>
>("@effect/platform-node/NodeHttpClient/undiciOptions")

/**
 * The token and introspection endpoints never follow a redirect: a 3xx is an `InvalidRequest` naming the `Location`
 * host. Following one would resend the refresh token and the client credentials (307/308), or accept tokens from
 * another origin (301/302/303). HTTP clients follow redirects on their own, so each request is sent with following
 * switched off for every client `@effect/platform` ships:
 *
 * - `FetchHttpClient`: through a fetch that sets `redirect: "manual"` and calls the `FetchHttpClient.Fetch` of the
 *   calling context, or `globalThis.fetch` (a `Fetch` given only to the HttpClient layer is not used for these
 *   requests; a `RequestInit` is, as before);
 * - `NodeHttpClient.layerUndici`: with `maxRedirections: 0`, which turns off undici's redirect interceptor if the
 *   dispatcher has one (merged over the `UndiciRequestOptions` of the calling context);
 * - `NodeHttpClient.layer` (node:http) never follows redirects.
 */
export const withoutRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.all([Effect.serviceOption(FetchHttpClient.Fetch), Effect.serviceOption(UndiciRequestOptions)]),
    ([fetch, undici]) => {
      const base = Option.getOrElse(fetch, () => globalThis.fetch)
      const manual: typeof globalThis.fetch = (input, init) => base(input, { ...init, redirect: "manual" })
      return effect.pipe(
        Effect.provideService(FetchHttpClient.Fetch, manual),
        Effect.provideService(UndiciRequestOptions, { ...Option.getOrElse(undici, () => ({})), maxRedirections: 0 }),
        // The HTTP client span records response headers: a Location or an authenticate challenge can quote a code
        // or a secret back.
        Effect.locallyWith(Headers.currentRedactedNames, (names) => [...names, ...SENSITIVE_HEADERS])
      )
    }
  )

/**
 * Reads at most `MAX_BODY_BYTES` (64 KiB) of an answer, then stops reading (the rest is never buffered) and says the
 * body was truncated.
 */
export const readCapped = (
  response: HttpClientResponse.HttpClientResponse
): Effect.Effect<{ readonly body: string; readonly truncated: boolean }, HttpClientError.ResponseError> =>
  Stream.runFoldWhile(
    response.stream,
    { chunks: Chunk.empty<Uint8Array>(), size: 0 },
    ({ size }) => size <= MAX_BODY_BYTES,
    ({ chunks, size }, chunk) => ({ chunks: Chunk.append(chunks, chunk), size: size + chunk.length })
  ).pipe(
    Effect.map(({ chunks }) => {
      const bytes = new Uint8Array(MAX_BODY_BYTES + 1)
      let size = 0
      for (const chunk of chunks) {
        const take = Math.min(chunk.length, bytes.length - size)
        bytes.set(chunk.subarray(0, take), size)
        size += take
      }
      const truncated = size > MAX_BODY_BYTES
      return {
        body: new TextDecoder().decode(bytes.subarray(0, Math.min(size, MAX_BODY_BYTES))),
        truncated
      }
    })
  )
