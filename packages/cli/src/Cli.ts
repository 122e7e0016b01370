/**
 * The `renew` command tree: `doctor`, `token`, `inspect`. `run(argv)` parses and runs one command line and returns
 * the process exit code, so it can run in-process (tests capture the `Console`) as well as from `main.ts`.
 *
 * Exit codes:
 * - `renew doctor`: 0 every check PASS or SKIP; 1 some WARN, no FAIL; 2 some FAIL.
 * - `renew token`: 0 the access token was printed; 1 it could not be obtained (the reason is on stderr).
 * - `renew inspect`: 0 listed; 1 the store could not be read.
 * - any command: 64 the command line is invalid (usage is printed on stderr).
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Args from "@effect/cli/Args"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as CliApp from "@effect/cli/CliApp"
import { Refresher, type RefreshError, TokenEndpoint, TokenStore } from "@renew/core"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Doctor from "./Doctor.js"
import * as Inspect from "./Inspect.js"
import { discover } from "./internal/discovery.js"
import { layerHttpClient, readCa } from "./internal/http.js"
import { openStore } from "./internal/storeFile.js"
import { scrubSecrets, secretValues } from "./internal/text.js"

/**
 * Where `--client-secret-stdin` / `--refresh-token-stdin` read from. Defaults to the process's stdin; tests provide
 * their own.
 *
 * @since 0.1.0
 * @category services
 */
export class Stdin extends Context.Reference<Stdin>()("@renew/cli/Stdin", {
  defaultValue: (): { readonly readAll: Effect.Effect<string, Error> } => ({
    readAll: Effect.async<string, Error>((resume) => {
      const chunks: Array<Buffer> = []
      const stdin = process.stdin
      const onData = (chunk: Buffer) => chunks.push(chunk)
      const onEnd = () => {
        cleanup()
        resume(Effect.succeed(Buffer.concat(chunks).toString("utf8")))
      }
      const onError = (error: Error) => {
        cleanup()
        resume(Effect.fail(error))
      }
      const cleanup = () => {
        stdin.off("data", onData)
        stdin.off("end", onEnd)
        stdin.off("error", onError)
        stdin.pause()
      }
      if (stdin.isTTY) process.stderr.write("renew: reading from stdin (end with Ctrl-D)\n")
      stdin.on("data", onData)
      stdin.once("end", onEnd)
      stdin.once("error", onError)
      stdin.resume()
      return Effect.sync(cleanup)
    })
  })
}) {}

/**
 * The exit code the command chose. Provided by `run`.
 *
 * @since 0.1.0
 * @category services
 */
export class ExitCode extends Context.Tag("@renew/cli/ExitCode")<ExitCode, Ref.Ref<number>>() {}

const setExitCode = (code: number) => Effect.flatMap(ExitCode, (ref) => Ref.set(ref, code))

/** Exit code for an invalid command line (sysexits EX_USAGE). */
const USAGE = 64

// -----------------------------------------------------------------------------------------------------------------
// Options shared by the commands that talk to the authorization server
// -----------------------------------------------------------------------------------------------------------------

const issuer = Options.text("issuer").pipe(
  Options.withDescription(
    "The authorization server's issuer URL; its metadata (RFC 8414, then OpenID discovery) gives the token and introspection endpoints."
  ),
  Options.optional
)
const tokenEndpoint = Options.text("token-endpoint").pipe(
  Options.withDescription("The token endpoint URL (instead of, or overriding, --issuer discovery)."),
  Options.optional
)
const introspectionEndpoint = Options.text("introspection-endpoint").pipe(
  Options.withDescription("The RFC 7662 introspection endpoint (default: from the issuer's metadata)."),
  Options.optional
)
const clientId = Options.text("client-id").pipe(
  Options.withDescription("The OAuth client id."),
  Options.withFallbackConfig(Config.string("RENEW_CLIENT_ID"))
)
const clientSecret = Options.redacted("client-secret").pipe(
  Options.withDescription(
    "The client secret. Prefer RENEW_CLIENT_SECRET or --client-secret-stdin: a flag is visible to other users in the process list."
  ),
  Options.optional
)
const clientSecretStdin = Options.boolean("client-secret-stdin").pipe(
  Options.withDescription(
    "Read the client secret from stdin (with --refresh-token-stdin too: the first line is the secret, the second the token)."
  )
)
const authMethod = Options.choice("auth-method", ["client_secret_basic", "client_secret_post", "none"]).pipe(
  Options.withDescription("How the client authenticates (default: client_secret_basic with a secret, none without)."),
  Options.optional
)
const scope = Options.text("scope").pipe(
  Options.withDescription("The scope refreshes ask for (default: none, so the granted scope is kept)."),
  Options.optional
)
const timeout = Options.integer("timeout").pipe(
  Options.withDescription("Seconds allowed for each network step."),
  Options.withDefault(10)
)
const caFile = Options.text("ca-file").pipe(
  Options.withDescription("A PEM file of extra CA certificates to trust (a private CA); like NODE_EXTRA_CA_CERTS."),
  Options.optional
)
const encryptionKey = Options.redacted("encryption-key").pipe(
  Options.withDescription(
    "The store's AES-256-GCM key (base64), when its grants are encrypted; or RENEW_ENCRYPTION_KEY."
  ),
  Options.optional
)
const encryptionKeyId = Options.text("encryption-key-id").pipe(
  Options.withDescription("The id of --encryption-key (default: the id recorded on the grant's row)."),
  Options.optional
)

const endpointOptions = {
  issuer,
  tokenEndpoint,
  introspectionEndpoint,
  clientId,
  clientSecret,
  clientSecretStdin,
  authMethod,
  scope,
  timeout,
  caFile,
  encryptionKey,
  encryptionKeyId
}

interface Secret {
  readonly value: Redacted.Redacted<string>
  readonly source: string
}

/**
 * Resolves the secrets from their sources. Precedence: stdin (when asked for), then the flag, then the environment.
 * Problems (conflicts, an empty stdin) are returned for the doctor's config check, never thrown.
 */
const gatherSecrets = (input: {
  readonly clientSecretFlag: Option.Option<Redacted.Redacted<string>>
  readonly clientSecretStdin: boolean
  readonly refreshTokenFlag: Option.Option<Redacted.Redacted<string>>
  readonly refreshTokenStdin: boolean
  readonly encryptionKeyFlag: Option.Option<Redacted.Redacted<string>>
}) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const envSecret = yield* Config.option(Config.redacted("RENEW_CLIENT_SECRET")).pipe(Effect.orElseSucceed(() => Option.none()))
    const envToken = yield* Config.option(Config.redacted("RENEW_REFRESH_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none()))
    const envKey = yield* Config.option(Config.redacted("RENEW_ENCRYPTION_KEY")).pipe(Effect.orElseSucceed(() => Option.none()))
    let stdinLines: Array<string> = []
    if (input.clientSecretStdin || input.refreshTokenStdin) {
      const read = yield* Effect.either((yield* Stdin).readAll)
      if (Either.isLeft(read)) problems.push(`cannot read stdin: ${read.left.message}`)
      else stdinLines = read.right.split(/\r?\n/)
    }
    const fromStdin = (index: number, what: string): Secret | undefined => {
      const line = (stdinLines[index] ?? "").trim()
      if (line === "") {
        problems.push(`stdin has no ${what} (line ${index + 1} is empty)`)
        return undefined
      }
      return { value: Redacted.make(line), source: "stdin" }
    }
    let clientSecret: Secret | undefined
    if (input.clientSecretStdin) {
      if (Option.isSome(input.clientSecretFlag)) problems.push("both --client-secret and --client-secret-stdin given")
      clientSecret = fromStdin(0, "client secret")
    } else if (Option.isSome(input.clientSecretFlag)) {
      clientSecret = { value: input.clientSecretFlag.value, source: "--client-secret" }
    } else if (Option.isSome(envSecret)) {
      clientSecret = { value: envSecret.value, source: "RENEW_CLIENT_SECRET" }
    }
    let refreshToken: Secret | undefined
    if (input.refreshTokenStdin) {
      if (Option.isSome(input.refreshTokenFlag)) problems.push("both --refresh-token and --refresh-token-stdin given")
      refreshToken = fromStdin(input.clientSecretStdin ? 1 : 0, "refresh token")
    } else if (Option.isSome(input.refreshTokenFlag)) {
      refreshToken = { value: input.refreshTokenFlag.value, source: "--refresh-token" }
    } else if (Option.isSome(envToken)) {
      refreshToken = { value: envToken.value, source: "RENEW_REFRESH_TOKEN" }
    }
    const encryptionKey = Option.getOrUndefined(Option.orElse(input.encryptionKeyFlag, () => envKey))
    // A secret pasted with surrounding whitespace is a classic wrong-secret cause; stdin lines are trimmed already.
    for (const secret of [clientSecret, refreshToken]) {
      if (secret !== undefined && Redacted.value(secret.value) !== Redacted.value(secret.value).trim()) {
        problems.push(`the ${secret === clientSecret ? "client secret" : "refresh token"} from ${secret.source} has leading or trailing whitespace`)
      }
    }
    return { clientSecret, refreshToken, encryptionKey, problems }
  })

// -----------------------------------------------------------------------------------------------------------------
// renew doctor
// -----------------------------------------------------------------------------------------------------------------

const doctor = Command.make(
  "doctor",
  {
    ...endpointOptions,
    refreshToken: Options.redacted("refresh-token").pipe(
      Options.withDescription(
        "The refresh token to check. Prefer RENEW_REFRESH_TOKEN, --refresh-token-stdin or --store/--key: a flag is visible in the process list."
      ),
      Options.optional
    ),
    refreshTokenStdin: Options.boolean("refresh-token-stdin").pipe(
      Options.withDescription("Read the refresh token from stdin.")
    ),
    store: Options.text("store").pipe(
      Options.withDescription("A @renew/store-sqlite file holding the grant (with --key)."),
      Options.optional
    ),
    key: Options.text("key").pipe(Options.withDescription("The grant's key in --store."), Options.optional),
    refresh: Options.boolean("refresh").pipe(
      Options.withDescription(
        "Do a real refresh: reports rotation and lifetimes. It uses up the refresh token; with --store the new grant is written back."
      )
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object { checks, summary }."))
  },
  (options) =>
    Effect.gen(function*() {
      const secrets = yield* gatherSecrets({
        clientSecretFlag: options.clientSecret,
        clientSecretStdin: options.clientSecretStdin,
        refreshTokenFlag: options.refreshToken,
        refreshTokenStdin: options.refreshTokenStdin,
        encryptionKeyFlag: options.encryptionKey
      })
      const problems = [...secrets.problems]
      const store = Option.getOrUndefined(options.store)
      const key = Option.getOrUndefined(options.key)
      if ((store === undefined) !== (key === undefined)) problems.push("--store and --key go together")
      if (options.timeout <= 0) problems.push("--timeout must be a positive number of seconds")
      const report = yield* Doctor.diagnose({
        issuer: Option.getOrUndefined(options.issuer),
        tokenEndpoint: Option.getOrUndefined(options.tokenEndpoint),
        introspectionEndpoint: Option.getOrUndefined(options.introspectionEndpoint),
        clientId: options.clientId,
        clientSecret: secrets.clientSecret,
        authMethod: Option.getOrUndefined(options.authMethod),
        refreshToken: secrets.refreshToken,
        store: store !== undefined && key !== undefined
          ? {
            filename: store,
            key,
            encryptionKey: secrets.encryptionKey,
            encryptionKeyId: Option.getOrUndefined(options.encryptionKeyId)
          }
          : undefined,
        scope: Option.getOrUndefined(options.scope),
        refresh: options.refresh,
        timeout: `${Math.max(1, options.timeout)} seconds`,
        caFile: Option.getOrUndefined(options.caFile),
        inputProblems: problems
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None))
      yield* Console.log(options.json ? JSON.stringify(report, null, 2) : Doctor.render(report))
      yield* setExitCode(report.summary.exitCode)
    })
).pipe(
  Command.withDescription(
    "Diagnose why refreshing fails: configuration, DNS, TCP, TLS, metadata, clock skew, client authentication, the server, the refresh token, scope, and (--refresh) a real refresh. Exit code 0: all PASS/SKIP; 1: WARN; 2: FAIL."
  )
)

// -----------------------------------------------------------------------------------------------------------------
// renew token
// -----------------------------------------------------------------------------------------------------------------

class CommandFailure {
  readonly _tag = "CommandFailure"
  constructor(readonly message: string) {}
}

const token = Command.make(
  "token",
  {
    ...endpointOptions,
    key: Args.text({ name: "key" }).pipe(Args.withDescription("The grant's key in --store.")),
    store: Options.text("store").pipe(Options.withDescription("The @renew/store-sqlite file holding the grant."))
  },
  (options) =>
    Effect.gen(function*() {
      const secrets = yield* gatherSecrets({
        clientSecretFlag: options.clientSecret,
        clientSecretStdin: options.clientSecretStdin,
        refreshTokenFlag: Option.none(),
        refreshTokenStdin: false,
        encryptionKeyFlag: options.encryptionKey
      })
      const known = secretValues(secrets.clientSecret?.value, secrets.encryptionKey)
      const fail = (message: string) => Effect.fail(new CommandFailure(scrubSecrets(message, known)))
      if (secrets.problems.length > 0) return yield* fail(secrets.problems.join("; "))
      const timeoutMillis = Math.max(1, options.timeout) * 1000
      let url = Option.getOrUndefined(options.tokenEndpoint)
      let introspectionUrl = Option.getOrUndefined(options.introspectionEndpoint)
      if (Option.isSome(options.issuer) && (url === undefined || introspectionUrl === undefined)) {
        const found = (yield* discover(options.issuer.value, timeoutMillis)).found
        if (found === undefined && url === undefined) {
          return yield* fail(
            `no authorization server metadata for ${options.issuer.value}; pass --token-endpoint (run \`renew doctor\` to see why)`
          )
        }
        url ??= found?.metadata.tokenEndpoint
        introspectionUrl ??= found?.metadata.introspectionEndpoint
      }
      if (url === undefined) return yield* fail("give --token-endpoint or --issuer")
      const endpoint = yield* TokenEndpoint.make({
        url,
        clientId: options.clientId,
        clientSecret: secrets.clientSecret?.value,
        authMethod: Option.getOrUndefined(options.authMethod),
        scope: Option.getOrUndefined(options.scope),
        timeout: timeoutMillis,
        introspectionUrl
      }).pipe(Effect.catchAll((error) => fail(error.message)))
      const store = yield* openStore({
        filename: options.store,
        key: options.key,
        encryptionKey: secrets.encryptionKey,
        encryptionKeyId: Option.getOrUndefined(options.encryptionKeyId)
      }).pipe(Effect.catchAll((error) => fail(error.message)))
      const refresher = yield* Refresher.make().pipe(
        Effect.provideService(TokenStore.TokenStore, store),
        Effect.provideService(TokenEndpoint.TokenEndpoint, endpoint),
        Effect.catchAll((error) => fail(error.message))
      )
      const accessToken = yield* refresher.getAccessToken(options.key).pipe(
        Effect.catchAll((error: RefreshError.RefreshError) =>
          fail(`${error._tag}: ${error.message} (run \`renew doctor --store ${options.store} --key ${options.key} …\` for a diagnosis)`)
        )
      )
      // The one place renew prints a token, on purpose: for scripts (TOKEN=$(renew token …)).
      yield* Console.log(Redacted.value(accessToken))
      yield* setExitCode(0)
    }).pipe(
      Effect.provide(layerHttpClient(readCa(Option.getOrUndefined(options.caFile)))),
      Effect.scoped,
      Effect.catchTag("CommandFailure", (failure) =>
        Effect.zipRight(Console.error(`renew token: ${failure.message}`), setExitCode(1)))
    )
).pipe(
  Command.withDescription(
    "Print a valid access token for the grant stored under <key>, refreshing it first if due (through the Renew engine, so the rotated grant is stored). For scripts: prints only the token; exit code 1 and the reason on stderr when it cannot."
  )
)


// -----------------------------------------------------------------------------------------------------------------
// renew inspect
// -----------------------------------------------------------------------------------------------------------------

const inspect = Command.make(
  "inspect",
  {
    store: Options.text("store").pipe(Options.withDescription("The @renew/store-sqlite file.")),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object { store, grants }."))
  },
  (options) =>
    Inspect.inspect(options.store).pipe(
      Effect.flatMap((inventory) =>
        Console.log(options.json ? JSON.stringify(inventory, null, 2) : Inspect.render(inventory))
      ),
      Effect.zipRight(setExitCode(0)),
      Effect.catchTag("StoreFileError", (error) =>
        Effect.zipRight(Console.error(`renew inspect: ${error.message}`), setExitCode(1)))
    )
).pipe(
  Command.withDescription(
    "List the grants in a @renew/store-sqlite file: key, version, expiries, status (active / needs re-auth and why / refresh in flight), scope. Never shows a token."
  )
)

// -----------------------------------------------------------------------------------------------------------------
// renew
// -----------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("renew", {}, () =>
  Console.log(
    "renew: keep OAuth 2.0 access tokens fresh.\n\n  renew doctor   diagnose why refreshing fails\n  renew token    print a fresh access token from a store\n  renew inspect  list the grants in a store\n\nRun `renew <command> --help` for the options."
  )).pipe(Command.withSubcommands([doctor, token, inspect]))

const cli = Command.run(command, { name: "renew", version: "0.1.0" })

/**
 * Runs one command line (`argv` as in `process.argv`: runtime, script, then the arguments) and returns the exit code.
 * Output goes through `Console` (stdout for results, stderr for errors); logs go to stderr, errors only unless
 * `--log-level` asks for more.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  Effect.gen(function*() {
    const exitCode = yield* Ref.make(0)
    const outcome = yield* cli(argv).pipe(
      Effect.provideService(ExitCode, exitCode),
      Effect.either
    )
    if (Either.isLeft(outcome)) {
      // Usage errors were printed by the parser already.
      if (ValidationError.isValidationError(outcome.left)) return USAGE
      yield* Console.error(`renew: ${String(outcome.left)}`)
      return 70
    }
    return yield* Ref.get(exitCode)
  }).pipe(
    // Logs never go to stdout (it carries results: a token, JSON). Errors only, unless --log-level says otherwise.
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))),
    Logger.withMinimumLogLevel(LogLevel.Error)
  )
