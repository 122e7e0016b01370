/**
 * The Promise facade's `logger` option, against a real loopback token endpoint: by default nothing on stdout and
 * nothing on success, warnings and errors as JSON lines on stderr; a level; `false`; a function; real pino, winston
 * and a console-shaped object. No record holds the client secret or a token, at any level.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { RefreshError, TokenManager } from "@renew/core"
import { type ScriptedTokenEndpoint, startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Writable } from "node:stream"
import { pino } from "pino"
import * as winston from "winston"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const unavailable = { kind: "respond", status: 503, body: { error: "temporarily_unavailable" } } as const

const startEndpoint = async () => {
  const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
  cleanups.push(() => endpoint.close())
  return endpoint
}

const manager = (endpoint: ScriptedTokenEndpoint, options: Partial<TokenManager.TokenManagerOptions> = {}) => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: endpoint.url,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    // One attempt per refresh: a scripted failure is the refresh's outcome.
    retry: { maxAttempts: 1 },
    ...options
  })
  cleanups.push(() => tokens.dispose())
  return tokens
}

/** What the process writes to stdout and stderr while the test runs (still passed through). */
const captureOutput = () => {
  const written = { stdout: "", stderr: "" }
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name]
    const original = stream.write
    stream.write = function(this: unknown, chunk: unknown, ...rest: Array<unknown>) {
      written[name] += typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString()
      return (original as (...args: Array<unknown>) => boolean).call(this, chunk, ...rest)
    } as typeof stream.write
    cleanups.push(() => void (stream.write = original))
  }
  return written
}

const jsonLines = (text: string): Array<Record<string, unknown>> =>
  text.split("\n").filter((line) => line.startsWith("{\"time\"")).map((line) => JSON.parse(line))

/** One successful refresh of `ok`, then one that fails with a 503 of `failing`. */
const refreshOnceAndFailOnce = async (tokens: TokenManager.TokenManager, endpoint: ScriptedTokenEndpoint) => {
  await tokens.setGrant("ok", { accessToken: "at_0", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
  assert.strictEqual(await tokens.getAccessToken("ok"), endpoint.lastIssued()!.accessToken)
  endpoint.script(unavailable)
  await tokens.setGrant("failing", { accessToken: "at_1", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
  const error = await tokens.getAccessToken("failing").then(() => undefined, (e: unknown) => e)
  assert.instanceOf(error, RefreshError.ServerError)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls until `done()` (up to 30 s: only a hang fails it). */
const until = async (what: string, done: () => boolean): Promise<void> => {
  const deadline = Date.now() + 30_000
  while (!done()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

describe("TokenManager logger", () => {
  it("by default: nothing on stdout, nothing for a success, warnings as JSON lines on stderr", async () => {
    const endpoint = await startEndpoint()
    const output = captureOutput()
    const tokens = manager(endpoint)
    await tokens.setGrant("ok", { accessToken: "at_0", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    await tokens.getAccessToken("ok")
    await sleep(50)
    assert.deepStrictEqual(jsonLines(output.stderr), [], "a successful refresh logs nothing")
    await refreshOnceAndFailOnce(tokens, endpoint)
    await until("the failure's lines", () => jsonLines(output.stderr).length >= 2)
    assert.notInclude(output.stdout, "renew:", "nothing on stdout")
    const records = jsonLines(output.stderr)
    for (const record of records) assert.include(["warn", "error"], record.level)
    const failed = records.find((record) => String(record.message).startsWith("renew: refresh failed with ServerError"))
    assert.isDefined(failed, JSON.stringify(records))
    assert.include(failed, {
      level: "warn",
      "oauth.client_id": CLIENT_ID,
      trigger: "due",
      outcome: "ServerError",
      attempts: 1
    })
    assert.match(String(failed!["renew.grant.key_hash"]), /^[0-9a-f]{16}$/)
    assert.isTrue(!Number.isNaN(Date.parse(String(failed!.time))), "time is ISO 8601")
    assert.isDefined(records.find((record) => String(record.message).includes("refreshes are failing")))
  })

  it("a level: that level and above on stderr; false: nothing anywhere", async () => {
    const endpoint = await startEndpoint()
    const output = captureOutput()
    await refreshOnceAndFailOnce(manager(endpoint, { logger: "info" }), endpoint)
    await until("the info and warn lines", () => jsonLines(output.stderr).length >= 3)
    const info = jsonLines(output.stderr)
    assert.isDefined(info.find((r) => r.level === "info" && r.message === "renew: refreshed access token (due)"))
    assert.isUndefined(info.find((r) => r.level === "debug"))

    output.stderr = ""
    await refreshOnceAndFailOnce(manager(endpoint, { logger: "error" }), endpoint)
    await refreshOnceAndFailOnce(manager(endpoint, { logger: false }), endpoint)
    await sleep(100)
    assert.deepStrictEqual(jsonLines(output.stderr), [], "no warning at level error, nothing with false")
    assert.notInclude(output.stdout, "renew:")
  })

  it("a function gets every record, debug included, as a plain object", async () => {
    const endpoint = await startEndpoint()
    const records: Array<TokenManager.LogRecord> = []
    const tokens = manager(endpoint, { logger: (record) => void records.push(record) })
    await refreshOnceAndFailOnce(tokens, endpoint)
    // A call on the paused grant is answered without a request: a debug line.
    await tokens.getAccessToken("failing").catch(() => undefined)
    await until("the debug line", () => records.some((r) => r.level === "debug"))
    assert.sameMembers([...new Set(records.map((r) => r.level))], ["debug", "info", "warn"])
    const refreshed = records.find((r) => r.message === "renew: refreshed access token (due)")!
    assert.include(refreshed, { level: "info", "oauth.client_id": CLIENT_ID, outcome: "success", trigger: "due" })
    // A throwing logger breaks nothing.
    const broken = manager(endpoint, {
      logger: () => {
        throw new Error("logger bug")
      }
    })
    await refreshOnceAndFailOnce(broken, endpoint)
  })

  it("pino, winston and console-shaped objects get each record at the method of its level", async () => {
    const endpoint = await startEndpoint()
    const sink = () => {
      const lines: Array<Record<string, unknown>> = []
      const stream = new Writable({
        write(chunk, _encoding, done) {
          for (const line of String(chunk).split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line))
          done()
        }
      })
      return { lines, stream }
    }
    const fromPino = sink()
    await refreshOnceAndFailOnce(manager(endpoint, { logger: pino({ level: "info" }, fromPino.stream) }), endpoint)
    const fromWinston = sink()
    const winstonLogger = winston.createLogger({
      level: "info",
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: fromWinston.stream })]
    })
    await refreshOnceAndFailOnce(manager(endpoint, { logger: winstonLogger }), endpoint)
    const consoleLike: Array<[string, unknown]> = []
    const fakeConsole = {
      debug: (...args: Array<unknown>) => void consoleLike.push(["debug", ...args] as [string, unknown]),
      info: (...args: Array<unknown>) => void consoleLike.push(["info", ...args] as [string, unknown]),
      warn: (...args: Array<unknown>) => void consoleLike.push(["warn", ...args] as [string, unknown]),
      error: (...args: Array<unknown>) => void consoleLike.push(["error", ...args] as [string, unknown])
    }
    await refreshOnceAndFailOnce(manager(endpoint, { logger: fakeConsole }), endpoint)
    await until("every logger's lines", () =>
      [fromPino.lines, fromWinston.lines].every((lines) => lines.some((l) => String(l.msg ?? l.message).includes("ServerError"))) &&
      consoleLike.some(([level]) => level === "warn"))

    // pino: its own level numbers and `msg`, our fields beside them.
    const pinoFailed = fromPino.lines.find((l) => String(l.msg).startsWith("renew: refresh failed with ServerError"))!
    assert.include(pinoFailed, { level: 40, "oauth.client_id": CLIENT_ID, outcome: "ServerError" })
    assert.isDefined(fromPino.lines.find((l) => l.level === 30 && l.msg === "renew: refreshed access token (due)"))
    // winston: `message` and its level names.
    const winstonFailed = fromWinston.lines.find((l) => String(l.message).startsWith("renew: refresh failed"))!
    assert.include(winstonFailed, { level: "warn", "oauth.client_id": CLIENT_ID, outcome: "ServerError" })
    assert.isDefined(fromWinston.lines.find((l) => l.level === "info" && l.message === "renew: refreshed access token (due)"))
    // Anything else: the whole record as one argument.
    const [, record] = consoleLike.find(([level]) => level === "warn")! as [string, TokenManager.LogRecord]
    assert.include(record, { level: "warn", "oauth.client_id": CLIENT_ID })
  })

  it("refuses a logger that is none of the accepted forms, at once", () => {
    const refused = (logger: unknown) => {
      try {
        TokenManager.createTokenManager({
          tokenEndpoint: "https://auth.example.com/token",
          clientId: "c",
          clientSecret: "s",
          logger: logger as TokenManager.LoggerOption
        })
      } catch (error) {
        return error as RefreshError.ConfigurationError
      }
      return assert.fail("not refused")
    }
    assert.strictEqual(refused("verbose").option, "logger")
    assert.include(refused({ info: () => undefined, warn: () => undefined }).message, "debug, error")
    assert.strictEqual(refused(true)._tag, "ConfigurationError")
  })

  it("no record holds the client secret or a token, at any level, even when the server echoes them", async () => {
    const endpoint = await startEndpoint()
    const records: Array<TokenManager.LogRecord> = []
    const tokens = manager(endpoint, { logger: (record) => void records.push(record), background: { intervalSeconds: 0.05 } })
    const echo = (refreshToken: string) => `bad token ${refreshToken} for client secret ${CLIENT_SECRET}`
    const failing = endpoint.mintRefreshToken()
    const dying = endpoint.mintRefreshToken()
    endpoint.script(
      { kind: "respond", status: 503, body: { error: "temporarily_unavailable", error_description: echo(failing) } },
      { kind: "respond", status: 400, body: { error: "invalid_grant", error_description: echo(dying) } },
      { kind: "respond", status: 200, body: { token_type: "Bearer", refresh_token: "rt_only_in_a_broken_answer_1234" } }
    )
    await tokens.setGrant("fails", { accessToken: "at_secret_1", refreshToken: failing, expiresIn: 0 })
    await until("the 503", () => endpoint.refreshRequests >= 1)
    await tokens.setGrant("dies", { accessToken: "at_secret_2", refreshToken: dying, expiresIn: 0 })
    await until("the invalid_grant", () => endpoint.refreshRequests >= 2)
    await tokens.setGrant("garbled", { accessToken: "at_secret_3", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    await until("the garbled answer", () => endpoint.refreshRequests >= 3)
    await tokens.refresh("fails", { deadlineMs: 30_000 })
    await until("the records of all four", () => records.filter((r) => r.level === "warn").length >= 4)
    const text = JSON.stringify(records)
    const secrets = [
      CLIENT_SECRET,
      "rt_only_in_a_broken_answer_1234",
      "at_secret_1",
      "at_secret_2",
      "at_secret_3",
      ...endpoint.knownRefreshTokens,
      ...endpoint.issuedTokens.map((t) => t.accessToken)
    ]
    for (const secret of secrets) assert.notInclude(text, secret)
    assert.isAbove(records.length, 5)
  })
})
