import { assert, describe, it } from "@effect/vitest"
import { Token } from "@renew/core"
import { SqliteTokenStore } from "@renew/store-sqlite"
import { LeaseSuite, SchedulerSuite, SchedulingSuite, SealingSuite, TokenStoreSuite } from "@renew/store-testkit"
import Sqlite from "better-sqlite3"
import { Clock, Deferred, Effect, Fiber, Option, Redacted, TestClock } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const tempDir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "renew-sqlite-"))
const suiteFile = Path.join(tempDir(), "conformance.db")

TokenStoreSuite.suite("sqlite", {
  // Each open() is its own connection to the same file, like another process.
  open: SqliteTokenStore.make({ filename: suiteFile, leaseTtl: "30 seconds" }),
  durability: "durable",
  lease: { ttlMillis: 30_000, renewEveryMillis: 10_000, waitMillis: 60_000 }
})

/** The suite's file opened directly, as another process (or someone with write access) would. */
const rawFile = Effect.acquireRelease(Effect.sync(() => new Sqlite(suiteFile)), (db) => Effect.sync(() => db.close()))

LeaseSuite.suite("sqlite", {
  open: ({ lockWaitMillis, ttlMillis }) =>
    SqliteTokenStore.make({
      filename: suiteFile,
      leaseTtl: ttlMillis,
      ...(lockWaitMillis !== undefined ? { lockWaitTimeout: lockWaitMillis } : {})
    }),
  expireLease: (key) =>
    Effect.map(rawFile, (db) => void db.prepare("UPDATE renew_leases SET expires_at = ? WHERE key = ?").run(Date.now() - 1, key)),
  leaseOwner: (key) =>
    Effect.map(rawFile, (db) =>
      (db.prepare("SELECT owner FROM renew_leases WHERE key = ?").get(key) as { owner: string } | undefined)?.owner)
})

SealingSuite.suite("sqlite", {
  open: (encryption) => SqliteTokenStore.make({ filename: suiteFile, ...(encryption !== undefined ? { encryption } : {}) }),
  readRecord: (key) =>
    Effect.map(rawFile, (db) => db.prepare("SELECT * FROM renew_grants WHERE key = ?").get(key) as SealingSuite.RawRecord),
  writeRecord: (key, fields) =>
    Effect.map(rawFile, (db) => {
      const names = Object.keys(fields)
      db.prepare(`UPDATE renew_grants SET ${names.map((name) => `${name} = ?`).join(", ")} WHERE key = ?`)
        .run(...names.map((name) => fields[name]), key)
    })
})

// The due index is global to a file: each scheduling test gets a file of its own, and each client it opens is its own
// connection to it (the concurrent claimers really race, across connections, as processes do).
SchedulingSuite.suite("sqlite", {
  backend: Effect.sync(() => {
    const filename = Path.join(tempDir(), "scheduling.db")
    return SqliteTokenStore.make({ filename })
  })
})

SchedulerSuite.suite("sqlite", {
  backend: Effect.sync(() => SqliteTokenStore.make({ filename: Path.join(tempDir(), "scheduler.db") }))
})

const sample = (overrides: Partial<ConstructorParameters<typeof Token.Grant>[0]> = {}) =>
  new Token.Grant({
    accessToken: Redacted.make("at_sqlite_secret_value"),
    refreshToken: Redacted.make("rt_sqlite_secret_value"),
    tokenType: "Bearer",
    issuedAt: 1,
    expiresAt: 2,
    version: 0,
    ...overrides
  })

/**
 * Moves the TestClock forward in small steps until `done` holds (dies past `limitMillis`): between steps every fiber
 * woken on the way gets to schedule its next sleep (a lease renewal, a waiter's next try) before time moves on.
 */
const advanceUntil = (done: Effect.Effect<boolean>, limitMillis: number, stepMillis = 1) =>
  Effect.gen(function*() {
    for (let moved = 0; !(yield* done); moved += stepMillis) {
      if (moved >= limitMillis) return yield* Effect.dieMessage(`not done within ${limitMillis} ms of the TestClock`)
      yield* TestClock.adjust(stepMillis)
    }
  })

/** Moves the TestClock forward by `millis` in small steps (see advanceUntil). */
const advanceBy = (millis: number, stepMillis = 10) =>
  Effect.gen(function*() {
    for (let moved = 0; moved < millis; moved += stepMillis) yield* TestClock.adjust(stepMillis)
  })

const KEY_A = Buffer.alloc(32, 1).toString("base64")
const KEY_B = Buffer.alloc(32, 2).toString("base64")

describe("SqliteTokenStore", () => {
  it.scopedLive("creates the database file with mode 0600, in WAL mode", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "nested", "grants.db")
      yield* SqliteTokenStore.make({ filename: file })
      assert.strictEqual(Fs.statSync(file).mode & 0o777, 0o600)
      assert.isTrue(Fs.existsSync(`${file}-wal`))
    }))

  // The lease clock is Effect's Clock (SqliteTokenStore reads no other time), so this runs on the TestClock: a loaded
  // machine cannot stall a renewal past the TTL, and "after the TTL" is exact.
  it.scoped("a lease whose holder stopped renewing is taken over after the TTL; its late release changes nothing (LK-1, LK-2)", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "lease.db")
      const a = yield* SqliteTokenStore.make({ filename: file, leaseTtl: "300 millis", lockWaitTimeout: "5 seconds" })
      const b = yield* SqliteTokenStore.make({ filename: file, leaseTtl: "300 millis", lockWaitTimeout: "5 seconds" })
      // Simulate a holder that froze (a paused process): it wrote a lease and never renews or releases it.
      const raw = new Sqlite(file)
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.close()))
      const start = yield* Clock.currentTimeMillis
      raw.prepare("INSERT INTO renew_leases (key, owner, expires_at) VALUES (?, ?, ?)").run("k", "frozen", start + 300)
      const bIn = yield* Deferred.make<number>()
      const bDone = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(b.withLock("k", () => Effect.gen(function*() {
        yield* Deferred.succeed(bIn, yield* Clock.currentTimeMillis)
        yield* Deferred.await(bDone)
      })))
      yield* advanceBy(290)
      yield* advanceBy(9, 1)
      assert.isFalse(yield* Deferred.isDone(bIn), "B waits while the frozen lease runs")
      // A waiter never sleeps past the holder's expiry by more than 10 ms of jitter.
      yield* advanceUntil(Deferred.isDone(bIn), 20)
      const bInAt = yield* Deferred.await(bIn)
      assert.isAtLeast(bInAt, start + 300, "B got in once the frozen lease had expired")
      assert.isAtMost(bInAt, start + 311, "and at most the jitter later")
      // The frozen holder wakes up and releases "its" lease: owner-checked, so B keeps it.
      raw.prepare("DELETE FROM renew_leases WHERE key = ? AND owner = ?").run("k", "frozen")
      const owner = raw.prepare("SELECT owner FROM renew_leases WHERE key = ?").get("k") as { owner: string }
      assert.notStrictEqual(owner.owner, "frozen")
      // And A cannot get in while B holds it, however long that is: B renews its lease.
      const aIn = yield* Deferred.make<void>()
      const waiter = yield* Effect.fork(a.withLock("k", () => Deferred.succeed(aIn, undefined)))
      yield* advanceBy(4000, 25)
      assert.isFalse(yield* Deferred.isDone(aIn), "A got in while B held the lease")
      yield* Deferred.succeed(bDone, undefined)
      yield* Fiber.join(holder)
      yield* advanceUntil(Deferred.isDone(aIn), 1000, 10)
      yield* Fiber.join(waiter)
    }))

  it.scopedLive("encrypts token columns at rest; a wrong key is a clear StoreError; key rotation keeps old rows readable", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "encrypted.db")
      const v1 = yield* SqliteTokenStore.make({
        filename: file,
        encryption: { keys: { k1: Redacted.make(KEY_A) }, activeKeyId: "k1" }
      })
      yield* v1.compareAndSet("user", undefined, sample())
      const bytes = Fs.readFileSync(file).toString("latin1") + Fs.readFileSync(`${file}-wal`).toString("latin1")
      assert.notInclude(bytes, "at_sqlite_secret_value")
      assert.notInclude(bytes, "rt_sqlite_secret_value")
      // Rotation: k2 is active, k1 still listed.
      const v2 = yield* SqliteTokenStore.make({
        filename: file,
        encryption: { keys: { k1: Redacted.make(KEY_A), k2: Redacted.make(KEY_B) }, activeKeyId: "k2" }
      })
      const read = Option.getOrThrow(yield* v2.get("user"))
      assert.strictEqual(Redacted.value(read.refreshToken!), "rt_sqlite_secret_value")
      yield* v2.compareAndSet("user", read.version, sample({ accessToken: Redacted.make("at_rotated") }))
      // The wrong key: a clear error, nothing returned, nothing overwritten.
      const wrong = yield* SqliteTokenStore.make({
        filename: file,
        encryption: { keys: { k2: Redacted.make(KEY_A) }, activeKeyId: "k2" }
      })
      const error = yield* Effect.flip(wrong.get("user"))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /cannot decrypt.*key id k2/)
      const still = Option.getOrThrow(yield* v2.get("user"))
      assert.strictEqual(Redacted.value(still.accessToken!), "at_rotated")
      // No keys at all for an encrypted row.
      const plain = yield* SqliteTokenStore.make({ filename: file })
      assert.match((yield* Effect.flip(plain.get("user"))).message, /encrypted/)
    }))

  it.scopedLive("a bad encryption key is refused at configuration time", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqliteTokenStore.make({
        filename: Path.join(tempDir(), "bad-key.db"),
        encryption: { keys: { k1: Redacted.make("c2hvcnQ=") }, activeKeyId: "k1" }
      }))
      assert.strictEqual(error._tag, "ConfigurationError")
      const missing = yield* Effect.flip(SqliteTokenStore.make({
        filename: Path.join(tempDir(), "bad-key2.db"),
        encryption: { keys: { k1: Redacted.make(KEY_A) }, activeKeyId: "nope" }
      }))
      assert.strictEqual(missing._tag, "ConfigurationError")
    }))

  it.scopedLive("a corrupt database file is a StoreError that says what to do, and is not overwritten", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "corrupt.db")
      const garbage = Buffer.from("this is not a sqlite database, it is garbage ".repeat(200))
      Fs.writeFileSync(file, garbage)
      const error = yield* Effect.flip(SqliteTokenStore.make({ filename: file }))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /not a SQLite database or is corrupt.*Nothing was overwritten/)
      assert.isTrue(Fs.readFileSync(file).equals(garbage))
    }))

  it.scopedLive("a database from a newer schema version is refused and left alone", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "newer.db")
      const raw = new Sqlite(file)
      raw.pragma("user_version = 99")
      raw.close()
      const before = Fs.readFileSync(file)
      const error = yield* Effect.flip(SqliteTokenStore.make({ filename: file }))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /schema version 99.*newer.*Upgrade/)
      assert.isTrue(Fs.readFileSync(file).equals(before))
    }))

  it.scopedLive("a file of schema version 1 is migrated once, by replicas opening it together: its grants stay readable and join the due index with their next write", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "v1.db")
      // The tables as @renew/store-sqlite 0.1.0 created them, holding one grant.
      const raw = new Sqlite(file)
      raw.pragma("journal_mode = WAL")
      raw.exec(`CREATE TABLE renew_grants (key TEXT PRIMARY KEY, version INTEGER NOT NULL, access_token TEXT,
          refresh_token TEXT, token_type TEXT NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
          scope TEXT, refresh_token_expires_at INTEGER, refresh_started_at INTEGER, reauth_required TEXT, key_id TEXT,
          updated_at INTEGER NOT NULL);
        CREATE TABLE renew_leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
        PRAGMA user_version = 1;`)
      raw.prepare(`INSERT INTO renew_grants (key, version, access_token, refresh_token, token_type, issued_at, expires_at,
          updated_at) VALUES ('old', 3, 'at_old', 'rt_old', 'Bearer', 1000, 61000, 0)`).run()
      raw.close()
      const stores = yield* Effect.all(Array.from({ length: 4 }, () => SqliteTokenStore.make({ filename: file })), {
        concurrency: "unbounded"
      })
      const check = new Sqlite(file, { readonly: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => check.close()))
      assert.strictEqual(check.pragma("user_version", { simple: true }), SqliteTokenStore.SCHEMA_VERSION)
      const columns = (check.prepare("PRAGMA table_info(renew_grants)").all() as Array<{ name: string }>).map((c) => c.name)
      assert.includeMembers(columns, ["refresh_due_at", "failing_since", "due_at"])
      const old = Option.getOrThrow(yield* stores[1]!.get("old"))
      assert.strictEqual(old.version, 3)
      assert.strictEqual(Redacted.value(old.refreshToken!), "rt_old")
      assert.isUndefined(old.refreshDueAt)
      assert.isUndefined(old.failingSince)
      const scheduling = stores[0]!.scheduling!
      assert.strictEqual((yield* scheduling.backlog(0)).scheduled, 0)
      yield* stores[2]!.compareAndSet("old", 3, new Token.Grant({ ...old, refreshDueAt: 50_000, failingSince: 40_000 }))
      assert.deepStrictEqual(yield* scheduling.backlog(60_000), { due: 1, oldestDueAt: 50_000, scheduled: 1 })
      const read = Option.getOrThrow(yield* stores[3]!.get("old"))
      assert.strictEqual(read.refreshDueAt, 50_000)
      assert.strictEqual(read.failingSince, 40_000)
    }))

  it.scopedLive("a claim moves the due index entry only: the grant keeps its refreshDueAt, version and record", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "claim.db")
      const store = yield* SqliteTokenStore.make({ filename: file })
      yield* store.compareAndSet("k", undefined, sample({ refreshDueAt: 1_000 }))
      const raw = new Sqlite(file, { readonly: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => raw.close()))
      const row = () => raw.prepare("SELECT * FROM renew_grants WHERE key = 'k'").get() as Record<string, unknown>
      const before = row()
      assert.strictEqual(before["due_at"], 1_000)
      assert.deepStrictEqual(yield* store.scheduling!.claimDue({ now: 2_000, limit: 5, holdUntil: 9_000 }), [
        { key: "k", dueAt: 1_000 }
      ])
      const after = row()
      assert.strictEqual(after["due_at"], 9_000)
      const unchanged = (record: Record<string, unknown>) => {
        const { claimed_due_at: _claimed, due_at: _due, ...rest } = record
        return rest
      }
      assert.deepStrictEqual(unchanged(after), unchanged(before))
      assert.strictEqual(Option.getOrThrow(yield* store.get("k")).refreshDueAt, 1_000)
    }))

  it.scopedLive("listGrants: every grant's metadata, a page at a time, in key order, never a token, never written", () =>
    Effect.gen(function*() {
      const file = Path.join(tempDir(), "listed.db")
      const plain = yield* SqliteTokenStore.make({ filename: file })
      const sealed = yield* SqliteTokenStore.make({ filename: file, encryption: { keys: { k1: Redacted.make(KEY_A) }, activeKeyId: "k1" } })
      yield* plain.compareAndSet("a", undefined, sample({ scope: "openid", refreshTokenExpiresAt: 5 }))
      yield* plain.compareAndSet("b", undefined, sample({ reauthRequired: "invalid_grant" }))
      yield* sealed.compareAndSet("c", undefined, sample({ refreshStartedAt: 3 }))
      yield* plain.compareAndSet("d", undefined, sample())
      yield* plain.compareAndSet("e", undefined, sample())
      const pages = yield* plain.withLock("c", () =>
        Effect.gen(function*() {
          const pages: Array<SqliteTokenStore.GrantPage> = []
          let after: string | undefined
          do {
            const page = yield* SqliteTokenStore.listGrants(file, { after, limit: 2 })
            pages.push(page)
            after = page.next
          } while (after !== undefined)
          return pages
        }))
      assert.deepStrictEqual(pages.map((page) => page.grants.map((g) => g.key)), [["a", "b"], ["c", "d"], ["e"]])
      const grants = pages.flatMap((page) => page.grants)
      assert.deepStrictEqual(grants[0], {
        key: "a",
        version: 1,
        tokenType: "Bearer",
        issuedAt: 1,
        expiresAt: 2,
        scope: "openid",
        refreshTokenExpiresAt: 5,
        refreshStartedAt: undefined,
        reauthRequired: undefined,
        keyId: undefined,
        leaseExpiresAt: undefined
      })
      assert.strictEqual(grants[1]!.reauthRequired, "invalid_grant")
      assert.strictEqual(grants[2]!.keyId, "k1")
      assert.strictEqual(grants[2]!.refreshStartedAt, 3)
      assert.isAbove(grants[2]!.leaseExpiresAt!, Date.now(), "the lease held while listing")
      assert.notInclude(JSON.stringify(pages), "secret_value")
      // Reading changes nothing on disk.
      const bytes = () => [file, `${file}-wal`].map((f) => (Fs.existsSync(f) ? Fs.readFileSync(f).toString("base64") : ""))
      const before = bytes()
      yield* SqliteTokenStore.listGrants(file)
      assert.deepStrictEqual(bytes(), before)
    }))

  it.scopedLive("listGrants refuses a missing file (without creating it), a file that is not a Renew store, and a corrupt one", () =>
    Effect.gen(function*() {
      const missing = Path.join(tempDir(), "missing.db")
      assert.match((yield* Effect.flip(SqliteTokenStore.listGrants(missing))).message, /does not exist/)
      assert.isFalse(Fs.existsSync(missing))
      const other = Path.join(tempDir(), "other.db")
      const raw = new Sqlite(other)
      raw.prepare("CREATE TABLE t (x INTEGER)").run()
      raw.close()
      assert.match((yield* Effect.flip(SqliteTokenStore.listGrants(other))).message, /not a Renew store/)
      const corrupt = Path.join(tempDir(), "corrupt.db")
      Fs.writeFileSync(corrupt, "garbage ".repeat(1000))
      assert.match((yield* Effect.flip(SqliteTokenStore.listGrants(corrupt))).message, /not a SQLite database or is corrupt/)
    }))

  it.scopedLive("an unwritable location is a StoreError", () =>
    Effect.gen(function*() {
      // A path below a regular file can never be created, even by root.
      const blocker = Path.join(tempDir(), "a-file")
      Fs.writeFileSync(blocker, "")
      const error = yield* Effect.flip(SqliteTokenStore.make({ filename: Path.join(blocker, "grants.db") }))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /cannot open|not a directory|ENOTDIR/i)
    }))
})
