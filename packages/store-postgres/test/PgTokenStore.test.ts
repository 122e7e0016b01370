/**
 * PgTokenStore against the machine's PostgreSQL (DATABASE_URL): the shared conformance suite, lease safety with real
 * separate processes (SIGSTOP / SIGKILL), migrations and refusals (newer schema, synchronous_commit=off), no
 * transaction or session state held across a refresh, and connection drops (pg_terminate_backend).
 *
 * Every run works in its own schema (dropped at the end). Under CI=true an unreachable PostgreSQL fails the file;
 * otherwise the tests are skipped with a message saying how to enable them (@renew/store-testkit/Services).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Refresher, Token, TokenStore } from "@renew/core"
import { PgTokenStore } from "@renew/store-postgres"
import { Engine, LeaseSuite, SchedulerSuite, SchedulingSuite, SealingSuite, Services, TokenStoreSuite } from "@renew/store-testkit"
import { Context, Deferred, Effect, Fiber, Layer, Option, Redacted, Schedule } from "effect"

const { engine, scriptedEndpoint, seedExpired } = Engine

const postgres = await Services.postgres()
Services.skipNotice(postgres)

/** This run's schema; dropped at the end. */
const SCHEMA = `renew_test_${process.pid}_${Date.now().toString(36)}`
let counter = 0
const key = (label: string) => `${label}:${counter++}`
const APP = `renew-test-${process.pid}`

const open = (options: Partial<PgTokenStore.PgTokenStoreOptions> = {}) =>
  PgTokenStore.make({
    url: Redacted.make(Services.DATABASE_URL),
    schema: SCHEMA,
    maxConnections: 3,
    applicationName: APP,
    ...options
  })

/** A plain SqlClient for looking at (and tampering with) what the store wrote. */
const admin = Effect.map(
  Layer.build(PgClient.layer({ url: Redacted.make(Services.DATABASE_URL), maxConnections: 2, applicationName: "renew-test-admin" })),
  (context) => Context.get(context, SqlClient.SqlClient)
)

const grant = (accessToken: string) =>
  new Token.Grant({
    accessToken: Redacted.make(accessToken),
    refreshToken: Redacted.make("rt_pg_secret_value"),
    tokenType: "Bearer",
    issuedAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    version: 0
  })

const dropSchema = (schema: string) =>
  Effect.ignore(Effect.scoped(Effect.flatMap(admin, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))))

/** Polls a store that is coming back, for up to 20 s: generous, a loaded machine reconnects slowly. */
const untilBack = { times: 400, schedule: Schedule.spaced("50 millis") }

if (postgres.available) {
  TokenStoreSuite.suite("postgres", {
    open: open({ leaseTtl: "30 seconds" }),
    durability: "durable",
    lease: { ttlMillis: 30_000, renewEveryMillis: 10_000, waitMillis: 60_000 }
  })

  LeaseSuite.suite("postgres", {
    open: ({ lockWaitMillis, ttlMillis }) =>
      open({ leaseTtl: ttlMillis, ...(lockWaitMillis !== undefined ? { lockWaitTimeout: lockWaitMillis } : {}) }),
    expireLease: (k) =>
      Effect.flatMap(admin, (sql) =>
        sql`UPDATE ${sql(`${SCHEMA}.renew_leases`)} SET expires_at = clock_timestamp() - interval '1 millisecond'
            WHERE key = ${k}`),
    leaseOwner: (k) =>
      Effect.flatMap(admin, (sql) =>
        Effect.map(
          sql<{ owner: string }>`SELECT owner FROM ${sql(`${SCHEMA}.renew_leases`)} WHERE key = ${k}`,
          (rows) => rows[0]?.owner
        ))
  })

  SealingSuite.suite("postgres", {
    open: (encryption) => open(encryption !== undefined ? { encryption } : {}),
    readRecord: (k) =>
      Effect.flatMap(admin, (sql) =>
        Effect.map(
          sql<Record<string, unknown>>`SELECT * FROM ${sql(`${SCHEMA}.renew_grants`)} WHERE key = ${k}`,
          (rows) =>
            Object.fromEntries(
              Object.entries(rows[0] ?? {}).map(([field, value]) => [field, value === null ? null : String(value)])
            )
        )),
    writeRecord: (k, fields) =>
      Effect.flatMap(admin, (sql) => sql`UPDATE ${sql(`${SCHEMA}.renew_grants`)} SET ${sql.update(fields)} WHERE key = ${k}`)
  })

  // The due index is global to a schema: each scheduling test gets a schema of its own (dropped after it), and each
  // client it opens is a pool of its own.
  let schedulingSchemas = 0
  SchedulingSuite.suite("postgres", {
    backend: Effect.gen(function*() {
      const schema = `${SCHEMA}_sched${schedulingSchemas++}`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      // Eight claimers, each its own client: few connections each, within the server's default limit of 100.
      return open({ schema, maxConnections: 3 })
    })
  })

  SchedulerSuite.suite("postgres", {
    backend: Effect.gen(function*() {
      const schema = `${SCHEMA}_sched${schedulingSchemas++}`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      // Eight replicas at once: few connections each, within the server's default limit of 100.
      return open({ schema, maxConnections: 4 })
    })
  })

  afterAll(() => Effect.runPromise(dropSchema(SCHEMA)))
}

describe.runIf(postgres.available)("PgTokenStore: leases and encryption", () => {
  it.scopedLive("while a body holds the lock, no transaction is open and no advisory lock is held (works behind transaction pooling)", () =>
    Effect.gen(function*() {
      const store = yield* open({ applicationName: `${APP}-pooling` })
      const sql = yield* admin
      yield* store.withLock(key("pooling"), () => Effect.gen(function*() {
        yield* Effect.sleep("100 millis")
        const sessions = yield* sql<{ state: string | null; xact: boolean }>`
          SELECT state, xact_start IS NOT NULL AS xact FROM pg_stat_activity WHERE application_name = ${`${APP}-pooling`}`
        assert.isAbove(sessions.length, 0)
        assert.isTrue(sessions.every((s) => !s.xact && s.state === "idle"), JSON.stringify(sessions))
        const advisory = yield* sql`
          SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND a.application_name = ${`${APP}-pooling`}`
        assert.strictEqual(advisory.length, 0)
      }))
    }))

  it.scopedLive("a claim commits at once (SC-3, SC-4): no transaction or advisory lock is left, and the grant's version and write are untouched", () =>
    Effect.gen(function*() {
      const schema = `${SCHEMA}_claim`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      const app = `${APP}-claim`
      const store = yield* open({ schema, applicationName: app })
      const sql = yield* admin
      yield* store.compareAndSet("k", undefined, new Token.Grant({ ...grant("at_claim"), refreshDueAt: 1_000 }))
      const row = () =>
        Effect.map(
          sql<{ version: string; write_id: string; due_at: string; refresh_due_at: string }>`
            SELECT version, write_id, due_at, refresh_due_at FROM ${sql(`${schema}.renew_grants`)} WHERE key = 'k'`,
          (rows) => rows[0]!
        )
      const before = yield* row()
      assert.deepStrictEqual(yield* store.scheduling!.claimDue({ now: 2_000, limit: 10, holdUntil: 9_000 }), [
        { key: "k", dueAt: 1_000 }
      ])
      const after = yield* row()
      assert.deepStrictEqual(after, { ...before, due_at: "9000" })
      assert.strictEqual(Option.getOrThrow(yield* store.get("k")).refreshDueAt, 1_000)
      const sessions = yield* sql<{ xact: boolean }>`
        SELECT xact_start IS NOT NULL AS xact FROM pg_stat_activity WHERE application_name = ${app}`
      assert.isAbove(sessions.length, 0)
      assert.isTrue(sessions.every((session) => !session.xact), JSON.stringify(sessions))
      const advisory = yield* sql`
        SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND a.application_name = ${app}`
      assert.strictEqual(advisory.length, 0)
    }))

  it.scopedLive("encrypts the token columns at rest; a wrong key is a StoreError that says what to do", () =>
    Effect.gen(function*() {
      const store = yield* open({ encryption: { keys: { k1: Redacted.make(Buffer.alloc(32, 3).toString("base64")) }, activeKeyId: "k1" } })
      const sql = yield* admin
      const k = key("encrypted")
      yield* store.compareAndSet(k, undefined, grant("at_plaintext_canary"))
      const [row] = yield* sql`SELECT * FROM ${sql(`${SCHEMA}.renew_grants`)} WHERE key = ${k}`
      assert.notInclude(JSON.stringify(row), "at_plaintext_canary")
      assert.notInclude(JSON.stringify(row), "rt_pg_secret_value")
      assert.strictEqual(Redacted.value(Option.getOrThrow(yield* store.get(k)).accessToken!), "at_plaintext_canary")
      const wrong = yield* open({ encryption: { keys: { k1: Redacted.make(Buffer.alloc(32, 4).toString("base64")) }, activeKeyId: "k1" } })
      assert.match((yield* Effect.flip(wrong.get(k))).message, /cannot decrypt the grant with key id k1/)
    }))
})

describe.runIf(postgres.available)("PgTokenStore: migrations and refusals", () => {
  it.scopedLive("replicas starting together migrate once; the schema version is recorded", () =>
    Effect.gen(function*() {
      const schema = `${SCHEMA}_m`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      const stores = yield* Effect.all(Array.from({ length: 4 }, () => open({ schema })), { concurrency: "unbounded" })
      assert.strictEqual(stores.length, 4)
      const sql = yield* admin
      const versions = yield* sql<{ version: number }>`SELECT version FROM ${sql(`${schema}.renew_schema_version`)} ORDER BY version`
      assert.deepStrictEqual(
        versions.map((v) => v.version),
        Array.from({ length: PgTokenStore.SCHEMA_VERSION }, (_, i) => i + 1)
      )
    }))

  it.scopedLive("tables of schema version 1 are migrated: grants stay readable and join the due index with their next write", () =>
    Effect.gen(function*() {
      const schema = `${SCHEMA}_v1`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      const sql = yield* admin
      // The tables as @renew/store-postgres 0.1.0 created them, holding one grant.
      yield* sql.unsafe(`CREATE SCHEMA ${schema}`)
      yield* sql.unsafe(`CREATE TABLE ${schema}.renew_schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      yield* sql.unsafe(`INSERT INTO ${schema}.renew_schema_version (version) VALUES (1)`)
      yield* sql.unsafe(`CREATE TABLE ${schema}.renew_grants (key TEXT PRIMARY KEY, version BIGINT NOT NULL, access_token TEXT,
        refresh_token TEXT, token_type TEXT NOT NULL, issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, scope TEXT,
        refresh_token_expires_at BIGINT, refresh_started_at BIGINT, reauth_required TEXT, key_id TEXT, write_id TEXT,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      yield* sql.unsafe(`CREATE UNLOGGED TABLE ${schema}.renew_leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)`)
      yield* sql.unsafe(`INSERT INTO ${schema}.renew_grants (key, version, access_token, refresh_token, token_type, issued_at,
        expires_at) VALUES ('old', 3, 'at_old', 'rt_old', 'Bearer', 1000, 61000)`)
      const [a, b] = yield* Effect.all([open({ schema }), open({ schema })], { concurrency: "unbounded" })
      const versions = yield* sql<{ version: number }>`SELECT version FROM ${sql(`${schema}.renew_schema_version`)} ORDER BY version`
      assert.deepStrictEqual(versions.map((v) => v.version), [1, 2])
      const old = Option.getOrThrow(yield* b.get("old"))
      assert.strictEqual(old.version, 3)
      assert.strictEqual(Redacted.value(old.refreshToken!), "rt_old")
      assert.isUndefined(old.refreshDueAt)
      assert.strictEqual((yield* a.scheduling!.backlog(0)).scheduled, 0)
      yield* a.compareAndSet("old", 3, new Token.Grant({ ...old, refreshDueAt: 50_000, failingSince: 40_000 }))
      assert.deepStrictEqual(yield* b.scheduling!.backlog(60_000), { due: 1, oldestDueAt: 50_000, scheduled: 1 })
      const read = Option.getOrThrow(yield* b.get("old"))
      assert.strictEqual(read.refreshDueAt, 50_000)
      assert.strictEqual(read.failingSince, 40_000)
    }))

  it.scopedLive("a newer schema is refused and left alone", () =>
    Effect.gen(function*() {
      const schema = `${SCHEMA}_n`
      yield* Effect.addFinalizer(() => dropSchema(schema))
      yield* open({ schema })
      const sql = yield* admin
      yield* sql.unsafe(`INSERT INTO ${schema}.renew_schema_version (version) VALUES (99)`)
      const error = yield* Effect.flip(open({ schema }))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /schema version 99, newer than.*Upgrade @renew\/store-postgres; nothing was changed/)
    }))

  it.scopedLive("synchronous_commit=off is refused unless allowAsyncCommit (DU-2)", () =>
    Effect.gen(function*() {
      const url = new URL(Services.DATABASE_URL)
      url.searchParams.set("options", "-c synchronous_commit=off")
      const refused = yield* Effect.flip(open({ url: Redacted.make(url.toString()) }))
      assert.strictEqual(refused._tag, "StoreError")
      assert.match(refused.message, /synchronous_commit is off.*allowAsyncCommit: true/)
      const allowed = yield* open({ url: Redacted.make(url.toString()), allowAsyncCommit: true })
      assert.strictEqual(allowed.durability, "best-effort")
    }))

  it.scopedLive("bad options are a ConfigurationError; an unreachable database a StoreError without the password", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Effect.flip(open({ schema: "Robert'); DROP TABLE" })))._tag, "ConfigurationError")
      assert.strictEqual((yield* Effect.flip(open({ leaseTtl: "300 millis", queryTimeout: "1 second" })))._tag, "ConfigurationError")
      const port = yield* Effect.promise(() => Services.freePort())
      const started = Date.now()
      const error = yield* Effect.flip(
        open({ url: Redacted.make(`postgres://postgres:hunter2-canary@127.0.0.1:${port}/test`), connectTimeout: "1 second" })
      )
      assert.isBelow(Date.now() - started, 3000)
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /refused the connection.*DATABASE_URL/)
      assert.notInclude(error.message, "hunter2-canary")
    }))
})

describe.runIf(postgres.available)("PgTokenStore: connection drops", () => {
  it.scopedLive("a backend terminated mid-statement is a StoreError; the next call recovers; fresh cached tokens are still served", () =>
    Effect.gen(function*() {
      const app = `${APP}-drop`
      const store = yield* open({ applicationName: app, maxConnections: 2 })
      const sql = yield* admin
      const endpoint = yield* scriptedEndpoint()
      yield* Effect.gen(function*() {
        const refresher = yield* Refresher.Refresher
        const k = key("drop")
        yield* seedExpired(endpoint, k)
        const fresh = yield* refresher.getAccessToken(k)
        const current = Option.getOrThrow(yield* store.get(k))
        // A second session locks the row, so the store's compare-and-set blocks in its backend ...
        const locked = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT 1 FROM ${sql(`${SCHEMA}.renew_grants`)} WHERE key = ${k} FOR UPDATE`
          yield* Deferred.succeed(locked, undefined)
          yield* Effect.never
        })))
        yield* Deferred.await(locked)
        const write = yield* Effect.fork(Effect.flip(store.compareAndSet(k, current.version, grant("at_during_drop"))))
        // ... and is terminated from the outside (a failover, an operator, an idle-session killer).
        yield* Effect.retry(
          Effect.flatMap(
            sql<{ n: number }>`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
                             WHERE application_name = ${app} AND wait_event_type = 'Lock'`,
            (rows) => (rows[0]!.n > 0 ? Effect.void : Effect.fail("not blocked yet"))
          ),
          { times: 1000, schedule: Schedule.spaced("20 millis") }
        )
        const error = yield* Fiber.join(write)
        yield* Fiber.interrupt(holder)
        assert.strictEqual(error._tag, "StoreError")
        assert.match(error.message, /terminated the connection.*opens a new one/)
        // Served from memory meanwhile.
        assert.strictEqual(Redacted.value(yield* refresher.getAccessToken(k)), Redacted.value(fresh))
        // Every session of the store is killed; the pool replaces them on the next calls.
        yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ${app}`
        const read = Option.getOrThrow(yield* Effect.retry(store.get(k), untilBack))
        assert.strictEqual(read.version, current.version, "the interrupted write was not applied")
        const written = yield* store.compareAndSet(k, read.version, new Token.Grant({ ...read, accessToken: Redacted.make("at_after_drop") }))
        assert.strictEqual(written.version, current.version + 1)
        const forced = yield* refresher.refresh(k)
        assert.strictEqual(Redacted.value(forced.accessToken!), endpoint.lastIssued()!.accessToken)
      }).pipe(
        Effect.provide(engine(endpoint, {
          store: Layer.succeed(TokenStore.TokenStore, store),
          refresher: { forcedRefreshCooldown: 0 }
        }))
      )
    }), { timeout: 30_000 })
})
