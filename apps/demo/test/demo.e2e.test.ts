/**
 * The demo, run as a user runs it: `npm start -- <flags>` in a process group of its own, driven over its HTTP
 * endpoints, read from its stdout, stopped with SIGINT. Short tokens (2 s) and a fast call interval (300 ms) make a
 * minute show what the default settings show in ten.
 *
 * 1. steady state: no failed call, about one refresh per token lifetime, the SQLite grant is the latest rotation
 *    and is active; every refresh reached the OTLP receiver as a trace;
 * 2. each chaos switch and Renew's answer to it, and the grant's events (reauthRequired, failing, recovered);
 * 3. Ctrl-C: a clean stop, nothing left running;
 * 4. a restart on the same data directory resumes the grant from SQLite without a new authorization, and with API
 *    calls a minute apart the RefreshScheduler keeps the grant fresh on its own (scheduled refreshes, no caller);
 *    SIGINT to the demo's process: `npm start` exits 0;
 * and, throughout, no token or secret on stdout or stderr, nor in the exported traces.
 */
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Effect, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest"
import { type OtlpReceiver, startOtlpReceiver } from "@renew/otlp-receiver-fixture"

const ROOT = fileURLToPath(new URL("../../../", import.meta.url))
const GRANT_KEY = "demo-user"
// The first run tells what callers see, so its refreshes are the callers' own (no scheduler); the restart runs the
// scheduler (see step 4).
const FLAGS = ["--port", "0", "--access-token-ttl", "2", "--interval", "300ms", "--skew", "0.2", "--sweep-interval", "off"]

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * How long to wait for something the demo does on its own (a story line, an exit, a span): far beyond what a quiet
 * machine needs, so only a demo that never does it fails, not a loaded machine. Nothing asserts how long it took.
 */
const PATIENCE = 60_000
const fingerprint = (token: string) => Crypto.createHash("sha256").update(token).digest("hex").slice(0, 16)

/** A story line: `HH:MM:SS.mmm  category text`. */
const LINE = /^\d\d:\d\d:\d\d\.\d{3} {2}(\S+)\s+(.*)$/

/** "826 ms" / "1.07 s" → milliseconds. */
const millisOf = (text: string): number => {
  const match = /([\d.]+) (ms|s)\b/.exec(text)
  if (match === null) throw new Error(`no duration in ${JSON.stringify(text)}`)
  return Number(match[1]) * (match[2] === "s" ? 1000 : 1)
}

class Demo {
  out = ""
  err = ""
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  port = 0
  pid = 0
  /** Where the last `waitFor` match ended in stdout: a mark for "after that line". */
  lastEnd = 0

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (this.out += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.err += chunk))
    // "close": the process exited AND every holder of its stdout/stderr (the demo under npm and tsx) is gone.
    this.exited = new Promise((resolve) => child.once("close", (code, signal) => resolve({ code, signal })))
  }

  /**
   * `npm start -- <FLAGS> --data-dir <dataDir> <args>` from the repository root, in its own process group (as a
   * terminal would run it); a flag in `args` wins over the same flag in FLAGS.
   */
  static async start(dataDir: string, env: Record<string, string> = {}, args: ReadonlyArray<string> = []): Promise<Demo> {
    const clean: Record<string, string> = {}
    for (const [name, value] of Object.entries(process.env)) {
      // A user's shell has no npm_* variables (the test runner may, from `npm test`) and no OTEL_* unless asked.
      if (value === undefined || name.startsWith("npm_") || name.startsWith("OTEL_") || name === "INIT_CWD") continue
      clean[name] = value
    }
    const child = spawn("npm", ["start", "--", ...FLAGS, "--data-dir", dataDir, ...args], {
      cwd: ROOT,
      detached: true,
      env: { ...clean, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const demo = new Demo(child)
    const [, port] = await demo.waitFor(/client service\s+http:\/\/127\.0\.0\.1:(\d+)/, 2 * PATIENCE)
    demo.port = Number(port)
    demo.pid = Number((await demo.waitFor(/pid (\d+)/))[1])
    return demo
  }

  mark(): number {
    return this.out.length
  }

  /** Story lines written since `mark`, as [category, text]. */
  lines(mark = 0): Array<[string, string]> {
    return this.out.slice(mark).split("\n").flatMap((line) => {
      const match = LINE.exec(line)
      return match === null ? [] : [[match[1]!, match[2]!] as [string, string]]
    })
  }

  /** Waits until stdout (from `mark`) matches `pattern`. */
  async waitFor(pattern: RegExp, timeoutMs = PATIENCE, mark = 0): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const match = pattern.exec(this.out.slice(mark))
      if (match !== null) {
        this.lastEnd = mark + match.index + match[0].length
        return match
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the demo exited while waiting for ${pattern}\n--- stdout ---\n${this.out}\n--- stderr ---\n${this.err}`)
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${pattern}\n--- stdout since mark ---\n${this.out.slice(mark)}\n--- stderr ---\n${this.err}`)
      }
      await sleep(50)
    }
  }

  async request(method: "GET" | "POST", path: string): Promise<any> {
    const response = await fetch(`http://127.0.0.1:${this.port}${path}`, { method })
    return response.json()
  }

  failedCalls(mark: number): Array<string> {
    return this.lines(mark).filter(([category, text]) => category === "call" && /^#\d+ FAILED/.test(text)).map(([, t]) => t)
  }

  /** Waits until no process of the demo's process group is left. */
  async groupGone(timeoutMs = PATIENCE): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      try {
        process.kill(-this.child.pid!, 0)
      } catch {
        return true
      }
      await sleep(50)
    }
    return false
  }

  kill(): void {
    try {
      process.kill(-this.child.pid!, "SIGKILL")
    } catch {
      // gone already
    }
  }
}

/** The grant in the demo's SQLite file, read with the store the demo uses. */
const readStoredGrant = (dataDir: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(
        SqliteTokenStore.make({ filename: Path.join(dataDir, "renew-grants.sqlite") }),
        (store) => store.get(GRANT_KEY)
      )
    )
  ).then((option) => {
    if (option._tag === "None") throw new Error("no grant in the SQLite file")
    return option.value
  })

describe("apps/demo (npm start)", () => {
  let dataDir: string
  let receiver: OtlpReceiver
  const demos: Array<Demo> = []
  /** Every token and secret seen in the data directory: none may appear in any output. */
  const secrets = new Set<string>()
  const collectSecrets = async () => {
    const grant = await readStoredGrant(dataDir)
    if (grant.accessToken !== undefined) secrets.add(Redacted.value(grant.accessToken))
    if (grant.refreshToken !== undefined) secrets.add(Redacted.value(grant.refreshToken))
    const state = JSON.parse(Fs.readFileSync(Path.join(dataDir, "auth-server.json"), "utf8")) as {
      clientSecrets: Record<string, string>
      entries: Array<{ model: string; id: string }>
    }
    for (const secret of Object.values(state.clientSecrets)) secrets.add(secret)
    for (const entry of state.entries) {
      if (["AccessToken", "RefreshToken", "AuthorizationCode"].includes(entry.model)) secrets.add(entry.id)
    }
  }

  beforeAll(async () => {
    dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-demo-e2e-"))
    receiver = await startOtlpReceiver()
  })

  afterAll(async () => {
    for (const demo of demos) demo.kill()
    await receiver?.close()
    Fs.rmSync(dataDir, { recursive: true, force: true })
  })

  it("runs, refreshes about once per token lifetime, survives every chaos switch, stops on Ctrl-C, resumes from SQLite and refreshes in the background", async () => {
    const startedAt = Date.now()
    onTestFailed(() => {
      for (const [index, demo] of demos.entries()) {
        console.error(`--- demo run ${index + 1}: last lines of stdout ---\n${demo.out.split("\n").slice(-40).join("\n")}`)
        console.error(`--- demo run ${index + 1}: stderr ---\n${demo.err}`)
      }
    })
    // --- 1. steady state -----------------------------------------------------------------------------------------
    const demo = await Demo.start(dataDir, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
    demos.push(demo)
    expect(demo.out).toContain(`every refresh is a trace, exported to ${receiver.url}/v1/traces`)
    await demo.waitFor(/auth\s+no grant stored: authorizing/)
    await demo.waitFor(/auth\s+new grant stored \(version 1\)/)
    const steady = demo.mark()
    const steadyStart = Date.now()
    // Until nine refreshes (a 2 s token lives 1-2 s: several natural lifetimes), however long a loaded machine takes.
    const refreshesSince = (mark: number) =>
      demo.lines(mark).filter(([c, t]) => c === "refresh" && /^(due|forced|rejected-401): ok/.test(t))
    while (refreshesSince(steady).length < 9) {
      expect(Date.now() - steadyStart, "nine refreshes within the patience").toBeLessThan(2 * PATIENCE)
      expect(demo.child.exitCode, "the demo is running").toBeNull()
      await sleep(200)
    }
    const steadyMillis = Date.now() - steadyStart
    const steadyLines = demo.lines(steady)
    const okCalls = steadyLines.filter(([c, t]) => c === "call" && /^#\d+ 200 OK/.test(t))
    const refreshes = refreshesSince(steady)
    expect(demo.failedCalls(steady)).toEqual([])
    expect(steadyLines.filter(([c, t]) => c === "refresh" && /FAILED/.test(t))).toEqual([])
    // A 2 s token lives 1-2 s (its expiry is whole seconds); Renew counts 1 s and refreshes 0.2 s before, from when it
    // sent the request: never more often than every ~0.8 s (a slow machine only spaces refreshes out), and never one
    // per call (calls come every 300 ms; most are served from the cache).
    expect(refreshes.length).toBeLessThanOrEqual(Math.ceil(steadyMillis / 700))
    expect(refreshes.length).toBeLessThan(okCalls.length)

    // The SQLite file holds the latest rotated refresh token, and the server says it is active.
    // Three reads that must not straddle a refresh (one every ~0.8 s): tried until they do not, however slow.
    let checked = false
    for (const deadline = Date.now() + PATIENCE; !checked && Date.now() < deadline;) {
      const before = await demo.request("GET", "/admin/status")
      const stored = await readStoredGrant(dataDir)
      const after = await demo.request("GET", "/admin/status")
      if (before.grant.version !== stored.version || after.grant.version !== stored.version) continue
      const storedFingerprint = fingerprint(Redacted.value(stored.refreshToken!))
      expect(storedFingerprint).toBe(after.lastIssuedRefreshTokenFingerprint)
      expect(storedFingerprint).toBe(after.grant.refreshTokenFingerprint)
      expect(after.grant.refreshTokenActive).toBe(true)
      expect(stored.reauthRequired).toBeUndefined()
      checked = true
    }
    expect(checked).toBe(true)
    await collectSecrets()

    // --- 2. chaos ------------------------------------------------------------------------------------------------
    // latency → still served
    let mark = demo.mark()
    await demo.request("POST", "/admin/chaos/latency?ms=700")
    await demo.waitFor(/holding a token request for 700 ms/, PATIENCE, mark)
    const slow = await demo.waitFor(/refresh\s+due: ok in ([\d.]+ (?:ms|s))/, PATIENCE, demo.lastEnd)
    expect(millisOf(slow[1]!)).toBeGreaterThanOrEqual(700)
    await demo.request("POST", "/admin/chaos/latency?ms=0")
    await demo.waitFor(/call\s+#\d+ 200 OK/, PATIENCE, demo.mark())
    expect(demo.failedCalls(mark)).toEqual([])

    // a burst of 503s → retried with backoff, recovered
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/503?count=2")
    await demo.waitFor(/refresh\s+due: ok after 3 attempts/, PATIENCE, mark)
    expect(demo.out.slice(mark)).toMatch(/token request → 503 Service Unavailable \(1 more to come\)/)
    expect(demo.out.slice(mark)).toMatch(/attempt 1 failed with ServerError, retrying in/)
    expect(demo.out.slice(mark)).toMatch(/attempt 2 failed with ServerError, retrying in/)
    expect(demo.failedCalls(mark)).toEqual([])

    // 429 with Retry-After → retried no sooner than asked
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/429?retry-after=1")
    const limited = await demo.waitFor(/attempt 1 failed with RateLimited, retrying in ([\d.]+ (?:ms|s))/, PATIENCE, mark)
    expect(millisOf(limited[1]!)).toBeGreaterThanOrEqual(1000)
    await demo.waitFor(/token request arrived [\d.]+ (?:ms|s) after the 429 \(Retry-After: 1 s, honoured\)/, PATIENCE, mark)
    await demo.waitFor(/refresh\s+due: ok after 2 attempts/, PATIENCE, mark)
    expect(demo.failedCalls(mark)).toEqual([])

    // revoke → InvalidGrant with the re-authorize remedy; /admin/reauthorize recovers
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/revoke")
    const revoked = await demo.waitFor(/refresh\s+\S+: FAILED InvalidGrant after \d+ attempts? in .*/, PATIENCE, mark)
    expect(revoked[0]).toContain("The user must authorize again")
    expect(revoked[0]).toContain("POST /admin/reauthorize")
    await demo.waitFor(/call\s+#\d+ FAILED InvalidGrant/, PATIENCE, mark)
    // The state change is told once, as an event, whatever number of calls fail on it.
    const reauthEvent = await demo.waitFor(/event\s+reauthRequired demo-user \((revoked|invalid_grant)\): .*/, PATIENCE, mark)
    expect(reauthEvent[0]).toContain("POST /admin/reauthorize")
    expect((await demo.request("GET", "/admin/status")).grant.state).toBe("needs_reauthorization")
    expect(demo.lines(mark).filter(([c, t]) => c === "event" && t.startsWith("reauthRequired"))).toHaveLength(1)
    mark = demo.mark()
    const reauthorized = await demo.request("POST", "/admin/reauthorize")
    expect(reauthorized.ok).toBe(true)
    await demo.waitFor(/auth\s+new grant stored/, PATIENCE, mark)
    await demo.waitFor(/call\s+#\d+ 200 OK/, PATIENCE, mark)
    expect((await demo.request("GET", "/admin/status")).grant.state).toBe("ok")

    // a rotated client secret → InvalidClient with the credentials remedy; restoring the secret recovers
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/rotate-secret")
    const badClient = await demo.waitFor(/refresh\s+\S+: FAILED InvalidClient after 1 attempt in .*/, PATIENCE, mark)
    expect(badClient[0]).toContain("Check the client id and secret")
    expect((await demo.request("GET", "/admin/status")).grant.state).toBe("ok") // the grant is untouched
    await demo.waitFor(/event\s+failing demo-user \(InvalidClient\)/, PATIENCE, mark)
    await demo.request("POST", "/admin/chaos/restore-secret")
    const restored = demo.mark()
    await demo.waitFor(/refresh\s+due: ok/, PATIENCE, restored)
    await demo.waitFor(/event\s+recovered demo-user: refreshes succeed again after [\d.]+ (?:ms|s) of failures/, PATIENCE, mark)
    await demo.waitFor(/call\s+#\d+ 200 OK/, PATIENCE, restored)
    expect(demo.lines(mark).filter(([c]) => c === "event").map(([, t]) => t.split(" ")[0])).toEqual(["failing", "recovered"])

    // the network to the authorization server cut → NetworkError, retried (served stale while the token is valid);
    // restoring the network recovers
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/cut-network")
    await demo.waitFor(
      /refresh\s+due: (?:FAILED NetworkError after 1 attempt|failed with NetworkError after 1 attempt .* serving the still-valid access token)/,
      PATIENCE,
      mark
    )
    // A dropped connection may have reached the server: the same refresh token is not sent again within the refresh.
    expect(demo.out.slice(mark)).not.toMatch(/attempt 1 failed with NetworkError, retrying in/)
    mark = demo.mark()
    await demo.request("POST", "/admin/chaos/restore-network")
    await demo.waitFor(/refresh\s+due: ok/, PATIENCE, mark)
    await demo.waitFor(/call\s+#\d+ 200 OK/, PATIENCE, mark)
    await collectSecrets()

    // --- 3. Ctrl-C: SIGINT to the whole process group, as a terminal sends it ------------------------------------
    const refreshLines = demo.lines().filter(([c, t]) => c === "refresh" && /: ok/.test(t)).length
    process.kill(-demo.child.pid!, "SIGINT")
    const exit = await Promise.race([demo.exited, sleep(PATIENCE).then(() => undefined)])
    expect(exit, "the demo stopped on SIGINT").toBeDefined()
    // npm re-raises the SIGINT it received itself; the demo's own clean exit is its last line.
    expect(exit!.code === 0 || exit!.signal === "SIGINT").toBe(true)
    expect(demo.out.trimEnd()).toMatch(/demo\s+stopped cleanly$/)
    expect(await demo.groupGone()).toBe(true)

    // Every refresh was a trace at the OTLP receiver (flushed on shutdown), as service "renew-demo".
    const spans = await receiver.waitForSpans(
      (all) => all.filter((span) => span.name === "renew.refresh").length >= refreshLines,
      PATIENCE
    )
    const refreshSpans = spans.filter((span) => span.name === "renew.refresh")
    expect(refreshSpans.every((span) => span.serviceName === "renew-demo")).toBe(true)
    expect(refreshSpans.some((span) => span.attributes["renew.trigger"] === "due")).toBe(true)
    expect(spans.some((span) => span.name === "renew.refresh.attempt")).toBe(true)
    await collectSecrets()

    // --- 4. restart on the same data directory: resumed from SQLite, no new authorization; the scheduler on -------
    // API calls a minute apart: after the first, every refresh is the scheduler's, with no caller.
    const again = await Demo.start(dataDir, {}, ["--interval", "1m", "--sweep-interval", "200ms"])
    demos.push(again)
    expect(again.out).toContain("traces                not exported")
    expect(again.out).toContain("docker compose -f apps/demo/docker-compose.yml up")
    expect(again.out).toMatch(/refresh policy\s+the scheduler \(a sweep every 200 ms\) refreshes the grant about/)
    await again.waitFor(/auth\s+resumed grant version \d+ from .*renew-grants\.sqlite: no new authorization/)
    const resumed = again.mark()
    // The expired grant is refreshed at start, by the scheduler's first sweep or by the first call (whichever is first).
    await again.waitFor(/refresh\s+(?:due|scheduled): ok/, PATIENCE, resumed)
    await again.waitFor(/call\s+#1 200 OK/, PATIENCE, resumed)
    const afterFirstCall = again.lastEnd
    const scheduledSince = (mark: number) =>
      again.lines(mark).filter(([c, t]) => c === "refresh" && /^scheduled: ok/.test(t))
    for (const deadline = Date.now() + 2 * PATIENCE; scheduledSince(afterFirstCall).length < 3;) {
      expect(Date.now(), "three scheduled refreshes within the patience").toBeLessThan(deadline)
      expect(again.child.exitCode, "the demo is running").toBeNull()
      await sleep(100)
    }
    const status = await again.request("GET", "/admin/status")
    expect(status.refreshes.byTrigger.scheduled).toBeGreaterThanOrEqual(3)
    expect(status.refreshes.failed).toBe(0)
    expect(status.events).toEqual({ reauthRequired: 0, failing: 0, recovered: 0 })
    expect(status.authServer.restoredFromDataDir).toBe(true)
    expect(status.authServer.tokenRequests.authorizationCode).toBe(0)
    expect(status.authorizationsThisRun).toBe(0)
    expect(status.grant.state).toBe("ok")
    expect(again.out).not.toMatch(/authorizing/)
    expect(again.failedCalls(0)).toEqual([])
    // A call now is served from memory: the scheduler keeps the token fresh.
    const served = await again.request("GET", "/call")
    expect(served.ok).toBe(true)

    // SIGINT to the demo process itself (as a process manager sends it): `npm start` exits 0.
    process.kill(again.pid, "SIGINT")
    const exitAgain = await Promise.race([again.exited, sleep(PATIENCE).then(() => undefined)])
    expect(exitAgain).toEqual({ code: 0, signal: null })
    expect(again.out.trimEnd()).toMatch(/demo\s+stopped cleanly$/)
    expect(await again.groupGone()).toBe(true)
    await collectSecrets()

    // --- no token or secret anywhere ----------------------------------------------------------------------------
    expect(secrets.size).toBeGreaterThan(10)
    const outputs = [demo.out, demo.err, again.out, again.err].join("\n")
    const exported = receiver.payloadText()
    for (const secret of secrets) {
      expect(outputs.includes(secret), "a token or secret was printed").toBe(false)
      expect(exported.includes(secret), "a token or secret was exported").toBe(false)
    }
    const took = Date.now() - startedAt
    console.info(
      `demo e2e: steady ${(steadyMillis / 1000).toFixed(1)} s: ${okCalls.length} calls, 0 failed, ${refreshes.length} refreshes; ` +
        `after the restart ${status.refreshes.byTrigger.scheduled} scheduled refreshes, ${status.calls.total} calls; ` +
        `${refreshSpans.length} renew.refresh spans exported; ${secrets.size} tokens/secrets checked; total ${(took / 1000).toFixed(1)} s`
    )
  }, 10 * PATIENCE)
})
