/**
 * clock-skew: this machine's clock against the server's `Date` header, from the token endpoint probe or, failing
 * that, the metadata requests. No request of its own: it reads answers other checks obtain anyway.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import type { Answer } from "../http.js"
import { formatDuration } from "../text.js"
import type { Endpoint } from "./tokenEndpoint.js"
import { fail, pass, skip, type Verdict, warn } from "./verdict.js"

/** Skew beyond this WARNs (published as `Doctor.clockSkewWarnSeconds`). @internal */
export const clockSkewWarnSeconds = 30

/** Skew beyond this FAILs (published as `Doctor.clockSkewFailSeconds`). @internal */
export const clockSkewFailSeconds = 300

const remedy =
  "Synchronise the clocks with NTP (`timedatectl set-ntp true`, chrony) on this machine, or on the server if this one is right. Skew shifts every absolute time: token `exp`/`iat` checks on the server and resource servers, refresh-token expiry, JWT client assertions; tokens look expired early (or valid too long)."

interface Sample {
  readonly date: string
  readonly sentAt: number
  readonly receivedAt: number
  readonly from: string
}

/**
 * @param endpoint the token endpoint, when known: its probe answer is the preferred sample
 * @param metadataAnswer the last answer of the metadata requests, when discovery made any
 * @internal
 */
export const check = (
  endpoint: Endpoint | undefined,
  metadataAnswer: Answer | undefined
): Effect.Effect<Verdict, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    let sample: Sample | undefined
    if (endpoint !== undefined) {
      const answer = yield* endpoint.probe
      const date = answer.http?.headers["date"]
      if (date !== undefined) {
        sample = { date, sentAt: answer.sentAt, receivedAt: answer.receivedAt, from: "the token endpoint" }
      }
    }
    const metadataDate = metadataAnswer?.headers["date"]
    if (sample === undefined && metadataAnswer !== undefined && metadataDate !== undefined) {
      sample = {
        date: metadataDate,
        sentAt: metadataAnswer.sentAt,
        receivedAt: metadataAnswer.receivedAt,
        from: "the metadata URL"
      }
    }
    if (sample === undefined) {
      return skip("no HTTP answer with a Date header to compare clocks with")
    }
    const serverMillis = Date.parse(sample.date)
    if (Number.isNaN(serverMillis)) return skip(`the server's Date header is not a date: ${JSON.stringify(sample.date)}`)
    // Date has one-second resolution (truncated): the server's time was somewhere in the following second.
    const localMillis = (sample.sentAt + sample.receivedAt) / 2
    const skewSeconds = Math.round((serverMillis + 500 - localMillis) / 1000)
    const direction = skewSeconds > 0 ? "ahead of" : "behind"
    // The estimate is good to about half a second either way: a one-second difference is noise.
    const evidence = Math.abs(skewSeconds) <= 1
      ? `the server's clock (Date from ${sample.from}: ${sample.date}) agrees with this machine's to within a second`
      : `the server's clock is ${formatDuration(Math.abs(skewSeconds) * 1000)} ${direction} this machine's (Date from ${sample.from}: ${sample.date}; local ${
        new Date(localMillis).toUTCString()
      })`
    if (Math.abs(skewSeconds) > clockSkewFailSeconds) return fail(evidence, remedy)
    if (Math.abs(skewSeconds) > clockSkewWarnSeconds) return warn(evidence, remedy)
    return pass(evidence)
  })
