/**
 * config: the options make sense, the URLs are https (or loopback http), the grant can be read. Every later check
 * works from what this one establishes (credentials, CA, grant, refresh token), so it returns that even when it
 * fails: the secrets it found must still be scrubbed from the report.
 *
 * @internal
 */
import { type RefreshError, type Token, TokenEndpoint, type TokenStore } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { DoctorOptions } from "../../Doctor.js"
import { basicCredential, type ClientCredentials } from "../http.js"
import { openStore } from "../storeFile.js"
import { secretValues } from "../text.js"
import { remedyFor } from "./remedies.js"
import { fail, type Outcome, pass } from "./verdict.js"

/** The grant read from --store/--key, and the open store a real refresh writes the rotated grant back to. @internal */
export interface Stored {
  readonly filename: string
  readonly key: string
  readonly grant: Token.Grant
  readonly store: TokenStore.TokenStore["Type"]
}

/** @internal */
export interface ConfigContext {
  readonly timeoutMillis: number
  readonly credentials: ClientCredentials
  /** Extra CA certificates (--ca-file) for the TLS probes. */
  readonly extraCa: ReadonlyArray<string> | undefined
  readonly stored: Stored | undefined
  /** Given directly, or the stored grant's. */
  readonly refreshToken: Redacted.Redacted<string> | undefined
  /** Every secret value known so far, to scrub from the report. */
  readonly secrets: ReadonlyArray<string>
}

interface Problem {
  readonly problem: string
  readonly remedy: string
}

const urlRemedy =
  "Use the server's https:// URL; plain http is only accepted on loopback hosts (127.0.0.1, ::1, localhost)."

/** The flag a `TokenEndpoint.validateOptions` error is about, and what to do about it. */
const optionProblem = (option: string, error: RefreshError.ConfigurationError): Problem => {
  switch (error.option) {
    case "url":
      return { problem: `${option}: ${error.detail}`, remedy: urlRemedy }
    case "introspectionUrl":
      return { problem: `--introspection-endpoint: ${error.detail}`, remedy: urlRemedy }
    case "clientSecret":
      return {
        problem: `client secret: ${error.detail}`,
        remedy:
          "Give the client secret (--client-secret-stdin, RENEW_CLIENT_SECRET or --client-secret), or --auth-method none for a public client."
      }
    case "clientId":
      return { problem: `--client-id: ${error.detail}`, remedy: remedyFor(error) }
    default:
      return { problem: `${error.option}: ${error.detail}`, remedy: remedyFor(error) }
  }
}

/** Opens the store and reads the grant; a problem when either fails or the grant is not there. */
const readGrant = (
  options: NonNullable<DoctorOptions["store"]>
): Effect.Effect<Either.Either<Stored, Problem>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const opened = yield* Effect.either(openStore(options))
    if (Either.isLeft(opened)) {
      return Either.left({
        problem: opened.left.message,
        remedy: "Check --store (and --encryption-key for an encrypted store)."
      })
    }
    const store = opened.right
    const found = yield* Effect.either(store.get(options.key))
    if (Either.isLeft(found)) {
      return Either.left({
        problem: found.left.message,
        remedy: /encrypt|decrypt/.test(found.left.message)
          ? "Give the store's encryption key: RENEW_ENCRYPTION_KEY or --encryption-key (base64; the key id defaults to the one recorded on the grant, else --encryption-key-id)."
          : remedyFor(found.left)
      })
    }
    if (Option.isNone(found.right)) {
      return Either.left({
        problem: `no grant is stored under key ${JSON.stringify(options.key)} in ${options.filename}`,
        remedy: "Check --key; `renew inspect --store <file>` lists the stored keys. A missing grant means the user never authorized (or it was removed): authorize first."
      })
    }
    return Either.right({ filename: options.filename, key: options.key, grant: found.right.value, store })
  })

/**
 * @param ca the --ca-file as read by the caller (the HTTP client trusts the same certificates): its contents, or
 *   the error code when it could not be read.
 * @internal
 */
export const check = (
  options: DoctorOptions,
  timeoutMillis: number,
  ca: Either.Either<ReadonlyArray<string>, string> | undefined
): Effect.Effect<Outcome<ConfigContext>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const problems: Array<Problem> = (options.inputProblems ?? []).map((problem) => ({
      problem,
      remedy: "Fix the inputs named above (see `renew doctor --help`); a secret must not carry surrounding whitespace or a newline."
    }))
    const primaryUrl = options.tokenEndpoint ?? options.issuer
    const clientSecret = options.clientSecret?.value
    const authMethod: TokenEndpoint.AuthMethod = options.authMethod ??
      (clientSecret !== undefined ? "client_secret_basic" : "none")
    const credentials: ClientCredentials = { clientId: options.clientId, clientSecret, authMethod }
    const validate = (option: string, url: string, introspectionUrl?: string) => {
      const valid = TokenEndpoint.validateOptions({ ...credentials, url, introspectionUrl, timeout: timeoutMillis })
      if (Either.isLeft(valid)) problems.push(optionProblem(option, valid.left))
    }
    if (primaryUrl === undefined) {
      problems.push({
        problem: "neither --issuer nor --token-endpoint given",
        remedy: "Pass --issuer <url> (the server's metadata gives the endpoints) or --token-endpoint <url>."
      })
    } else {
      validate(options.tokenEndpoint !== undefined ? "--token-endpoint" : "--issuer", primaryUrl, options.introspectionEndpoint)
      if (options.issuer !== undefined && options.tokenEndpoint !== undefined) validate("--issuer", options.issuer)
    }
    if (options.refreshToken !== undefined && options.store !== undefined) {
      problems.push({
        problem: "both a refresh token and --store/--key given",
        remedy: "Give the refresh token one way only: --store/--key, or --refresh-token-stdin / RENEW_REFRESH_TOKEN / --refresh-token."
      })
    }
    if (ca !== undefined && Either.isLeft(ca)) {
      problems.push({
        problem: `--ca-file ${options.caFile}: ${ca.left}`,
        remedy: "Point --ca-file at a readable PEM file with your CA certificate(s)."
      })
    }
    // The store is opened only for otherwise sane options; it stays open for the refresh check.
    let stored: Stored | undefined
    if (options.store !== undefined && problems.length === 0) {
      const read = yield* readGrant(options.store)
      if (Either.isLeft(read)) problems.push(read.left)
      else stored = read.right
    }
    const grant = stored?.grant
    const found: ConfigContext = {
      timeoutMillis,
      credentials,
      extraCa: ca !== undefined ? Either.getOrUndefined(ca) : undefined,
      stored,
      refreshToken: options.refreshToken?.value ?? grant?.refreshToken,
      secrets: [
        ...secretValues(
          clientSecret,
          options.refreshToken?.value,
          grant?.refreshToken,
          grant?.accessToken,
          options.store?.encryptionKey
        ),
        // The Basic credential travels (and may be echoed) as one base64 value of id and secret.
        ...(clientSecret !== undefined ? [basicCredential(options.clientId, Redacted.value(clientSecret))] : [])
      ]
    }

    if (problems.length > 0) {
      return {
        verdict: fail(problems.map((p) => p.problem).join("; "), [...new Set(problems.map((p) => p.remedy))].join(" ")),
        found
      }
    }
    const parts = [
      options.tokenEndpoint !== undefined
        ? `token endpoint ${options.tokenEndpoint}`
        : `issuer ${options.issuer} (token endpoint from its metadata)`,
      `client ${JSON.stringify(options.clientId)} with ${authMethod}${
        options.clientSecret !== undefined ? ` (secret from ${options.clientSecret.source})` : " (no secret)"
      }`,
      options.refreshToken !== undefined
        ? `refresh token from ${options.refreshToken.source}`
        : stored !== undefined
        ? `grant ${JSON.stringify(stored.key)} version ${stored.grant.version} from ${stored.filename}`
        : "no refresh token (token checks will be skipped)"
    ]
    if (primaryUrl !== undefined && new URL(primaryUrl).protocol === "http:") {
      parts.push("plain http is accepted because the host is loopback")
    }
    return { verdict: pass(parts.join("; ")), found }
  })
