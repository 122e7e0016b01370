/**
 * The classifier of token endpoint answers is total and never quotes a secret (issue 12, "make the class
 * impossible"): for any status × headers × body (random bytes, huge bodies, deep JSON, nulls, wrong types, HTML,
 * redirects) it returns a token response or one typed error, never throws, in bounded time; and no canary secret, in
 * any form the request could have carried it in (plain, form-, URL- and base64-encoded), of any length from 1 to 64,
 * shows in the error's message, String, util.inspect, JSON or schema encoding.
 *
 * The redaction rule being checked (see src/internal/redact.ts): a form of 8 characters or more never appears at
 * all; a shorter one never appears as a whole token. Short canaries start with a character that no template and no
 * filler contains, so any whole-token occurrence in the output can only be a leak.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Providers, RefreshError } from "@renew/core"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as util from "node:util"
import { classifyAnswer } from "../src/internal/classify.js"
import { elide, scrub } from "../src/internal/redact.js"

const CLIENT_ID = "renew-prop-client"

/** Characters (3 bytes in UTF-8) that neither our templates nor the filler generators produce. */
const DISTINCT = ["漢", "字", "語", "鍵", "秘", "密"]
const ALPHABET = [
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  ..."+/=%&:._-~ ",
  ...DISTINCT
]

const canary = FastCheck.oneof(
  FastCheck.string({ unit: FastCheck.constantFrom(...ALPHABET), minLength: 8, maxLength: 64 }),
  FastCheck.tuple(
    FastCheck.constantFrom(...DISTINCT),
    FastCheck.string({ unit: FastCheck.constantFrom(...ALPHABET), maxLength: 6 })
  ).map(([first, rest]) => first + rest)
)

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64")
const formEncode = (text: string) => new URLSearchParams({ v: text }).toString().slice(2)

/** Every form a secret can travel in and be echoed in. */
const formsOf = (secret: string): ReadonlyArray<string> => [
  ...new Set([
    secret,
    formEncode(secret),
    encodeURIComponent(secret),
    encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()),
    base64(secret),
    base64(secret).replace(/=+$/, ""),
    Buffer.from(secret, "utf8").toString("base64url")
  ])
]

const escape = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")

/** Finds where in a text a form of `secret` leaks. */
const leakFinder = (secret: string): (text: string) => string | undefined => {
  const forms = formsOf(secret)
  const long = forms.filter((form) => form.length >= 8)
  const short = forms.filter((form) => form.length < 8)
  const wholeToken = short.length === 0
    ? undefined
    : new RegExp(`(?<![\\p{L}\\p{N}_-])(?:${short.map(escape).join("|")})(?![\\p{L}\\p{N}_-])`, "u")
  return (text) => long.find((form) => text.includes(form)) ?? wholeToken?.exec(text)?.[0]
}

const SEPARATORS = [" ", "\"", "'", "=", "&", ":", ";", ",", "<", ">", "\n", "(", ")"]
const separator = FastCheck.constantFrom(...SEPARATORS)

/** The canaries in some of their forms, each standing on its own between separators. */
const sprinkled = (secrets: ReadonlyArray<string>) =>
  FastCheck.array(
    FastCheck.tuple(
      separator,
      FastCheck.constantFrom(...secrets.flatMap(formsOf)),
      separator,
      FastCheck.string({ maxLength: 12 })
    ).map(([a, form, b, filler]) => `${a}${form}${b}${filler}`),
    { minLength: 1, maxLength: 6 }
  ).map((parts) => parts.join(""))

const anyJson = FastCheck.jsonValue({ maxDepth: 3 })

const OAUTH_CODES = [
  "invalid_grant",
  "invalid_client",
  "unauthorized_client",
  "invalid_scope",
  "invalid_request",
  "unsupported_grant_type",
  "server_error",
  "temporarily_unavailable",
  "slow_down",
  "bad_refresh_token",
  "toString",
  "__proto__",
  "constructor"
]

/** Bodies of every kind, the canaries sprinkled through those that can quote a request. */
const body = (secrets: ReadonlyArray<string>, basic: string): FastCheck.Arbitrary<string> => {
  const quoted = sprinkled([...secrets, basic])
  const value = FastCheck.oneof(
    quoted,
    FastCheck.constantFrom(...secrets),
    FastCheck.constant(null),
    FastCheck.string(),
    FastCheck.double(),
    FastCheck.boolean(),
    anyJson
  )
  const tokenish = FastCheck.record(
    {
      access_token: value,
      token_type: FastCheck.oneof(FastCheck.constantFrom("Bearer", "bearer", "mac", "DPoP"), value),
      expires_in: FastCheck.oneof(FastCheck.double(), FastCheck.constantFrom(3599.1234567, 1e16, "3600", "abc", null)),
      refresh_token: value,
      refresh_expires_in: FastCheck.oneof(FastCheck.double(), FastCheck.constant(null), FastCheck.string()),
      scope: FastCheck.oneof(FastCheck.string(), FastCheck.constant(null), FastCheck.integer()),
      error: FastCheck.oneof(FastCheck.constantFrom(...OAUTH_CODES), quoted, FastCheck.string()),
      error_description: FastCheck.oneof(quoted, FastCheck.string(), anyJson),
      error_uri: FastCheck.oneof(quoted, FastCheck.webUrl()),
      id_token: FastCheck.string()
    },
    { requiredKeys: [] }
  ).chain((fields) =>
    FastCheck.tuple(FastCheck.constantFrom(...secrets), anyJson).map(([name, extra]) =>
      JSON.stringify({ ...fields, [name]: extra })
    )
  )
  const html = FastCheck.tuple(quoted, FastCheck.string(), FastCheck.boolean()).map(([text, title, closed]) =>
    `<!DOCTYPE html><html><head><title>${title}</title><style>p { color: red }</style>` +
    `<script>var a = "${text}"</script></head><body class="x"><h1>Error</h1><pre>authorization: Basic ${basic}\n` +
    `${text}</pre><a href="/x?${text}">back</a>${closed ? "</body></html>" : "<p"}`
  )
  const formEcho = quoted.map((text) =>
    `grant_type=refresh_token&refresh_token=${formEncode(secrets[0]!)}&client_secret=${
      formEncode(secrets[1]!)
    }&note=${text}`
  )
  const randomBytes = FastCheck.uint8Array({ maxLength: 4096 }).map((bytes) => new TextDecoder().decode(bytes))
  const deepJson = FastCheck.tuple(FastCheck.integer({ min: 1, max: 50_000 }), FastCheck.boolean(), FastCheck.boolean())
    .map(([depth, array, balanced]) =>
      array
        ? "[".repeat(depth) + (balanced ? "]".repeat(depth) : "")
        : "{\"a\":".repeat(depth) + "null" + (balanced ? "}".repeat(depth) : "")
    )
  const unicode = FastCheck.tuple(FastCheck.string({ unit: "binary", maxLength: 500 }), quoted).map(([a, b]) => a + b)
  const anyBody = FastCheck.oneof(tokenish, html, formEcho, randomBytes, deepJson, unicode, FastCheck.constant(""))
  const huge = FastCheck.tuple(anyBody, FastCheck.integer({ min: 64 * 1024, max: 1 << 20 })).map(([piece, size]) =>
    piece === "" ? "a-".repeat(size / 2) : piece.repeat(Math.ceil(size / piece.length)).slice(0, size)
  )
  return FastCheck.oneof(
    { arbitrary: tokenish, weight: 4 },
    { arbitrary: html, weight: 2 },
    { arbitrary: formEcho, weight: 1 },
    { arbitrary: randomBytes, weight: 1 },
    { arbitrary: deepJson, weight: 1 },
    { arbitrary: unicode, weight: 1 },
    { arbitrary: huge, weight: 1 }
  )
}

const status = FastCheck.oneof(
  FastCheck.constantFrom(0, 100, 200, 201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 408, 425, 429, 500, 502, 503),
  FastCheck.integer({ min: 0, max: 999 })
)

const headers = (secrets: ReadonlyArray<string>, basic: string) => {
  const quoted = sprinkled([...secrets, basic])
  return FastCheck.record(
    {
      location: FastCheck.oneof(
        FastCheck.webUrl({ withQueryParameters: true }),
        quoted.map((text) => `https://login.example.com/sso?next=${encodeURIComponent(text)}&${text}`),
        FastCheck.constantFrom(...secrets).map((secret) => `https://${secret}.example.com/x`),
        FastCheck.string()
      ),
      "retry-after": FastCheck.oneof(FastCheck.nat().map(String), FastCheck.date().map((d) => d.toUTCString()), FastCheck.string()),
      "www-authenticate": FastCheck.oneof(
        quoted.map((text) => `Basic realm="x", error="invalid_client", error_description="${text.replace(/"/g, "'")}"`),
        FastCheck.string()
      ),
      "content-type": FastCheck.constantFrom("application/json", "text/html", "text/plain", "application/x-www-form-urlencoded")
    },
    { requiredKeys: [] }
  )
}

const TAGS = new Set([
  "InvalidGrant",
  "InvalidClient",
  "UnauthorizedClient",
  "InvalidScope",
  "InvalidRequest",
  "UnsupportedGrantType",
  "RateLimited",
  "ServerError",
  "MalformedResponse"
])

const encode = Schema.encodeSync(RefreshError.RefreshError)

/** Every way an application could print an outcome. */
const renderings = (outcome: Either.Either<unknown, RefreshError.RefreshError>): ReadonlyArray<string> => {
  if (Either.isRight(outcome)) {
    return [String(outcome.right), util.inspect(outcome.right, { depth: 10 }), JSON.stringify(outcome.right)]
  }
  const error = outcome.left
  return [
    error.message,
    String(error),
    util.inspect(error, { depth: 10 }),
    JSON.stringify(error),
    JSON.stringify(encode(error))
  ]
}

describe("the token endpoint answer classifier", () => {
  it.prop(
    "any status × headers × body, with any provider's profile or none: a typed outcome, in bounded time, quoting no form of any secret",
    {
      profile: FastCheck.option(FastCheck.constantFrom(...Providers.all), { nil: undefined }),
      case: FastCheck.tuple(canary, canary).chain(([refreshToken, clientSecret]) => {
        const basic = base64(`${formEncode(CLIENT_ID)}:${formEncode(clientSecret)}`)
        const secrets = [refreshToken, clientSecret]
        return FastCheck.record({
          secrets: FastCheck.constant([...secrets, basic]),
          status,
          headers: headers(secrets, basic),
          body: body(secrets, basic)
        })
      })
    },
    ({ case: { body, headers, secrets, status }, profile }) => {
      const started = performance.now()
      let outcome: Either.Either<unknown, RefreshError.RefreshError> | undefined
      expect(() => {
        outcome = classifyAnswer({ status, headers, body }, {
          now: 1_700_000_000_000,
          secrets,
          acceptedTokenTypes: ["bearer"],
          url: "https://auth.example.com/token",
          profile
        })
      }).not.toThrow()
      assert(outcome !== undefined && Either.isEither(outcome))
      if (Either.isLeft(outcome)) {
        expect(RefreshError.isRefreshError(outcome.left)).toBe(true)
        expect(TAGS.has(outcome.left._tag), outcome.left._tag).toBe(true)
      }
      const texts = renderings(outcome)
      for (const secret of secrets) {
        const leakIn = leakFinder(secret)
        for (const text of texts) {
          const leak = leakIn(text)
          if (leak !== undefined) assert.fail(`${JSON.stringify(leak)} (a form of ${JSON.stringify(secret)}) in ${text}`)
        }
      }
      // Generous: the classifier reads at most 64 KiB; the quadratic elider took seconds on 40 KB.
      expect(performance.now() - started).toBeLessThan(1000)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it.prop(
    "an excerpt cut near a secret never shows a piece of it",
    {
      secret: FastCheck.string({ unit: FastCheck.constantFrom(...ALPHABET.filter((c) => c !== " ")), minLength: 8, maxLength: 64 }),
      offset: FastCheck.integer({ min: -70, max: 70 }),
      padding: FastCheck.constantFrom(" ", "<b></b>", "\n\t")
    },
    ({ offset, padding, secret }) => {
      const lead = padding.repeat(Math.ceil((16 * 1024 + offset) / padding.length)).slice(0, 16 * 1024 + offset)
      for (const form of formsOf(secret)) {
        const excerpt = elide(`${lead}${form} tail`, [secret])
        const described = scrub(`${" ".repeat(2000 + offset)}${form} tail`, [secret])
        for (const text of [excerpt, described]) {
          for (let length = 4; length <= form.length; length++) {
            expect(text.includes(form.slice(0, length)), `${form.slice(0, length)} of ${form} in ${text}`).toBe(false)
          }
        }
      }
    },
    { fastCheck: { numRuns: 60 } }
  )
})
