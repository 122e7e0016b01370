import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Refresher, Telemetry, Token, TokenEndpoint, TokenManager } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import {
  type ScriptedTokenEndpoint,
  startScriptedTokenEndpoint
} from "@renew/scripted-endpoint-fixture"

const CHILD = fileURLToPath(new URL("./support/child.ts", import.meta.url))
const CLAIMER = fileURLToPath(new URL("./support/claimer.ts", import.meta.url))
const ROOT = fileURLToPath(new URL("../../../", import.meta.url))
const KEY = "user-1"
const SECRET = "CANARY-client-secret-7f3a9c2e"

interface ChildResult {
  readonly served: number
  readonly failed: number
  readonly tags: Record<string, number>
  readonly tokenHashes: Array<string>
}

/** Starts a child (`script`, default the refreshing one) on the database and resolves when it is ready to call. */
const startChild = <Result = ChildResult>(env: Record<string, string>, script = CHILD) =>
  new Promise<{ child: ChildProcess; result: Promise<Result | undefined> }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    let ready = false
    const result = new Promise<Result | undefined>((done) => {
      child.on("exit", () => {
        const line = out.split("\n").find((l) => l.startsWith("{"))
        done(line === undefined ? undefined : JSON.parse(line))
      })
    })
    child.stdout!.on("data", (chunk) => {
      out += chunk
      if (!ready && out.includes("ready\n")) {
        ready = true
        resolve({ child, result })
      }
    })
    child.stderr!.on("data", (chunk) => (err += chunk))
    child.on("exit", (code) => {
      if (!ready) reject(new Error(`child exited (${code}) before ready: ${err}`))
    })
  })

const tempDb = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-mp-")), "grants.db")

const seed = async (file: string, endpoint: ScriptedTokenEndpoint, refreshToken = endpoint.mintRefreshToken()) => {
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const store = yield* SqliteTokenStore.make({ filename: file })
    const grant = Either.getOrThrow(Token.grantFromInput(
      { accessToken: "at_expired", refreshToken, expiresIn: 0 },
      { now: Date.now(), defaultLifetime: "1 hour", version: 0 }
    ))
    yield* store.compareAndSet(KEY, undefined, grant)
  })))
  return refreshToken
}

const readGrant = (file: string) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const store = yield* SqliteTokenStore.make({ filename: file })
    return Option.getOrThrow(yield* store.get(KEY))
  })))

describe("SQLite across processes", () => {
  it("4 processes × 250 concurrent callers on one expired grant: exactly one token request, every caller served", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "renew-test-client", clientSecret: SECRET, latencyMs: 50 })
    try {
      const file = tempDb()
      await seed(file, endpoint)
      const children = await Promise.all(
        Array.from({ length: 4 }, () =>
          startChild({ TOKEN_URL: endpoint.url, DB_FILE: file, KEY, CALLERS: "250", LEASE_TTL_MS: "10000" }))
      )
      for (const { child } of children) child.stdin!.write("go\n")
      const results = await Promise.all(children.map(({ result }) => result))
      assert.strictEqual(endpoint.refreshRequests, 1)
      const issued = Telemetry.hashKey(endpoint.lastIssued()!.accessToken)
      for (const result of results) {
        assert.isDefined(result)
        assert.strictEqual(result!.served, 250)
        assert.deepStrictEqual(result!.tokenHashes, [issued])
      }
      const stored = await readGrant(file)
      assert.strictEqual(Redacted.value(stored.refreshToken!), endpoint.lastIssued()!.refreshToken)
      assert.isTrue(endpoint.isActive(Redacted.value(stored.refreshToken!)))
    } finally {
      await endpoint.close()
    }
  }, 240_000)

  // In one process better-sqlite3 runs each statement to completion before another fiber runs, so only separate
  // processes make claims really overlap (on SQLite's file locks).
  it("4 processes claiming 2,000 due grants at once: each grant is claimed exactly once", async () => {
    const file = tempDb()
    const now = 1_800_000_000_000
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const store = yield* SqliteTokenStore.make({ filename: file })
      yield* Effect.forEach(Array.from({ length: 2_000 }, (_, i) => i), (i) =>
        store.compareAndSet(`due:${i}`, undefined, new Token.Grant({
          accessToken: Redacted.make("at"),
          refreshToken: Redacted.make("rt"),
          tokenType: "Bearer",
          issuedAt: now - 3_600_000,
          expiresAt: now + 60_000,
          refreshDueAt: now - (i % 100),
          version: 0
        })), { discard: true })
    })))
    const claimers = await Promise.all(
      Array.from({ length: 4 }, () =>
        startChild<{ claimed: Array<string> }>(
          { DB_FILE: file, NOW: String(now), HOLD_UNTIL: String(now + 600_000) },
          CLAIMER
        ))
    )
    for (const { child } of claimers) child.stdin!.write("go\n")
    const claims = (await Promise.all(claimers.map(({ result }) => result))).flatMap((result) => {
      assert.isDefined(result, "a claimer failed")
      return result!.claimed
    })
    assert.strictEqual(claims.length, 2_000)
    assert.strictEqual(new Set(claims).size, 2_000)
  }, 240_000)

  it("TokenManager accepts a SQLite file path, and a second manager resumes from it", async () => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "renew-test-client", clientSecret: SECRET })
    const file = tempDb()
    try {
      const options = { tokenEndpoint: endpoint.url, clientId: "renew-test-client", clientSecret: SECRET, store: file }
      const first = TokenManager.createTokenManager(options)
      await first.setGrant(KEY, { refreshToken: endpoint.mintRefreshToken() })
      const token = await first.getAccessToken(KEY)
      await first.dispose()
      const second = TokenManager.createTokenManager(options)
      assert.strictEqual(await second.getAccessToken(KEY), token, "served from the file, no new refresh")
      assert.strictEqual(endpoint.refreshRequests, 1)
      await second.dispose()
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
    } finally {
      await endpoint.close()
    }
  })
})

/**
 * A child is SIGKILLed at one point of a refresh. The survivor (this process) must take over once the lease runs out,
 * and the grant must end refreshed or marked `rotation_lost`: never silently lost, never stuck.
 */
describe("crash matrix", () => {
  // A lease renewed every 1.7 s keeps 3 s to spare: a loaded machine cannot stall the survivor's lease away. The
  // per-attempt timeout is generous (30 s, as the children's): a timed-out attempt has an unknown outcome, and its
  // refresh token is not presented again, so a slow loopback answer would end the refresh. The lock wait is generous
  // too: it only bounds a hang.
  const LEASE_TTL_MS = 5000

  const survivor = (endpoint: ScriptedTokenEndpoint, file: string) =>
    Refresher.layer().pipe(
      Layer.provide(TokenEndpoint.layer({
        url: endpoint.url,
        clientId: "renew-test-client",
        clientSecret: Redacted.make(SECRET),
        timeout: "30 seconds"
      })),
      Layer.provide(NodeHttpClient.layerUndici),
      Layer.provideMerge(SqliteTokenStore.layer({ filename: file, leaseTtl: LEASE_TTL_MS, lockWaitTimeout: "60 seconds" }))
    )

  const crashAndRecover = async (
    crashAt: "lease-taken" | "request-sent" | "outcome-received" | "committed"
  ) => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: "renew-test-client", clientSecret: SECRET })
    try {
      const file = tempDb()
      await seed(file, endpoint)
      // "request-sent": the server rotates at once but never answers; the child dies waiting, however slowly it is killed.
      if (crashAt === "request-sent") endpoint.script({ kind: "issue", withhold: true })
      const { child, result } = await startChild({
        TOKEN_URL: endpoint.url,
        DB_FILE: file,
        KEY,
        CALLERS: "1",
        LEASE_TTL_MS: String(LEASE_TTL_MS),
        ...(crashAt === "request-sent" ? {} : { CRASH_AT: crashAt })
      })
      child.stdin!.write("go\n")
      if (crashAt === "request-sent") {
        await endpoint.waitForRequests(1, 60_000)
        child.kill("SIGKILL")
      }
      assert.isUndefined(await result, "the child died before answering")
      const killedAt = Date.now()
      const outcome = await Effect.runPromise(
        Effect.gen(function*() {
          const refresher = yield* Refresher.Refresher
          return yield* Effect.either(refresher.getAccessToken(KEY))
        }).pipe(Effect.provide(survivor(endpoint, file)), Effect.scoped)
      )
      // On a quiet machine this is about the lease TTL; the exact bound (TTL + jitter) is proven on the TestClock in
      // SqliteTokenStore.test.ts. Here, with real processes, 6 times the TTL only rules out a stuck lease.
      const tookOver = Date.now() - killedAt
      console.log(`[crash matrix] ${crashAt}: taken over ${tookOver} ms after the child died`)
      assert.isBelow(tookOver, 6 * LEASE_TTL_MS, "taken over once the lease ran out")
      const stored = await readGrant(file)
      assert.isUndefined(stored.refreshStartedAt, "no intent left behind")
      return { outcome, stored, endpoint }
    } catch (error) {
      await endpoint.close()
      throw error
    }
  }

  const assertRefreshed = (r: Awaited<ReturnType<typeof crashAndRecover>>) => {
    assert.strictEqual(r.outcome._tag, "Right")
    assert.isTrue(r.endpoint.isActive(Redacted.value(r.stored.refreshToken!)), "the stored refresh token is live")
    assert.isUndefined(r.stored.reauthRequired)
  }

  it("killed right after taking the lease: the survivor refreshes", async () => {
    const r = await crashAndRecover("lease-taken")
    assertRefreshed(r)
    await r.endpoint.close()
  }, 180_000)

  it("killed after the request was sent (the server rotated): rotation_lost, never a silent loss", async () => {
    const r = await crashAndRecover("request-sent")
    assert.strictEqual(r.outcome._tag, "Left")
    const error = (r.outcome as Either.Left<any, any>).left
    assert.strictEqual(error._tag, "InvalidGrant")
    assert.strictEqual(error.reason, "rotation_lost")
    assert.strictEqual(r.stored.reauthRequired, "rotation_lost")
    await r.endpoint.close()
  }, 180_000)

  it("killed after the response arrived but before it was committed: rotation_lost", async () => {
    const r = await crashAndRecover("outcome-received")
    assert.strictEqual(r.outcome._tag, "Left")
    assert.strictEqual((r.outcome as Either.Left<any, any>).left.reason, "rotation_lost")
    assert.strictEqual(r.stored.reauthRequired, "rotation_lost")
    await r.endpoint.close()
  }, 180_000)

  it("killed after committing but before releasing the lease: the survivor uses the committed grant", async () => {
    const r = await crashAndRecover("committed")
    assertRefreshed(r)
    assert.strictEqual(r.endpoint.refreshRequests, 1, "no second refresh")
    await r.endpoint.close()
  }, 180_000)
})

