/**
 * The authorization server: the fixture's real oidc-provider, with its state kept in the data directory, so that a
 * restarted demo finds the grant it issued before (a real authorization server has a database; the fixture keeps
 * everything in memory).
 *
 * What is kept (`<data-dir>/auth-server.json`, mode 0600): every record of the fixture's adapter store (grants,
 * refresh and access tokens with their `consumed` marks, sessions) and the two clients' secrets. Tokens are opaque
 * records looked up by id, not bound to the issuer's port, so the server may come back on another port.
 *
 * How: the fixture creates its `MemoryAdapterStore` inside `startAuthServer` and offers no way to hand it one or to
 * list its records, so this module wraps the store's `set`/`delete` (to mirror every record) and `get` (to load the
 * saved records into the new store before its first lookup). One authorization server per process: the demo's.
 * A small addition to the fixture (an injectable store with snapshot/restore, and initial client secrets) would make
 * this wrapper unnecessary.
 */
import {
  type AdapterPayload,
  type AuthServer,
  type FixtureClient,
  MemoryAdapterStore,
  startAuthServer
} from "@renew/auth-server-fixture"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"

type Entry = NonNullable<ReturnType<MemoryAdapterStore["get"]>>

interface SavedEntry {
  readonly key: string
  readonly model: string
  readonly id: string
  readonly payload: AdapterPayload
  /** epoch millis; null: no expiry */
  readonly expiresAt: number | null
}

interface SavedState {
  readonly version: 1
  readonly savedAt: number
  readonly clientSecrets: { readonly basic: string; readonly post: string }
  readonly entries: ReadonlyArray<SavedEntry>
}

// --- mirroring the fixture's adapter store ------------------------------------------------------------------------

const mirrors = new WeakMap<MemoryAdapterStore, Map<string, Entry>>()
let pendingRestore: ReadonlyArray<SavedEntry> | undefined
let onStoreChange: (() => void) | undefined
/** The store of this process's authorization server, once it has been used. */
let activeMirror: Map<string, Entry> | undefined

const installMirror = (() => {
  let installed = false
  return () => {
    if (installed) return
    installed = true
    const proto = MemoryAdapterStore.prototype
    const original = { get: proto.get, set: proto.set, delete: proto.delete, clear: proto.clear }
    const mirrorOf = (store: MemoryAdapterStore): Map<string, Entry> => {
      let mirror = mirrors.get(store)
      if (mirror !== undefined) return mirror
      mirror = new Map()
      mirrors.set(store, mirror)
      activeMirror = mirror
      // A new store: the fixture just created it. Load the saved records before anything reads it.
      const restore = pendingRestore
      pendingRestore = undefined
      const now = Date.now()
      for (const saved of restore ?? []) {
        const expiresAt = saved.expiresAt ?? Infinity
        if (expiresAt <= now) continue
        const entry: Entry = { model: saved.model, id: saved.id, payload: saved.payload, expiresAt }
        original.set.call(store, saved.key, entry)
        mirror.set(saved.key, entry)
      }
      return mirror
    }
    proto.get = function(this: MemoryAdapterStore, key: string, now?: number) {
      mirrorOf(this)
      return original.get.call(this, key, now)
    }
    proto.set = function(this: MemoryAdapterStore, key: string, entry: Entry) {
      const mirror = mirrorOf(this)
      original.set.call(this, key, entry)
      // The same object: `consume` marks it in place, and the mirror sees that too.
      mirror.set(key, entry)
      onStoreChange?.()
    }
    proto.delete = function(this: MemoryAdapterStore, key: string) {
      original.delete.call(this, key)
      mirrors.get(this)?.delete(key)
      onStoreChange?.()
    }
    proto.clear = function(this: MemoryAdapterStore) {
      original.clear.call(this)
      mirrors.get(this)?.clear()
      onStoreChange?.()
    }
  }
})()

const readState = (file: string): SavedState | undefined => {
  let text: string
  try {
    text = Fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
  try {
    const state = JSON.parse(text) as SavedState
    if (state.version !== 1 || !Array.isArray(state.entries) || typeof state.clientSecrets?.basic !== "string") {
      return undefined
    }
    return state
  } catch {
    return undefined
  }
}

const writeState = (file: string, state: SavedState): void => {
  const temporary = `${file}.${process.pid}.tmp`
  Fs.writeFileSync(temporary, JSON.stringify(state), { mode: 0o600 })
  Fs.renameSync(temporary, file)
}

// --- the server ---------------------------------------------------------------------------------------------------

export interface DemoAuthServer {
  readonly server: AuthServer
  /** Whether the state saved by a previous run was found and loaded. */
  readonly restored: boolean
  /** Why it was not, when it was not. */
  readonly freshReason: string | undefined
  readonly stateFile: string
  /** The demo client's credentials, as configured in the client service (client_secret_basic). */
  readonly client: FixtureClient
  /** The protected API's own credentials, for introspection (client_secret_post). */
  readonly apiClient: FixtureClient
  /** Chaos: the server gets a new secret for the demo client; the client keeps the old one. */
  readonly rotateSecret: () => void
  /** Gives the demo client its configured secret back. */
  readonly restoreSecret: () => void
  readonly secretRotated: () => boolean
  /** Writes the state file now. */
  readonly save: () => void
}

export const start = (options: {
  readonly dataDir: string
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlSeconds: number
}): Effect.Effect<DemoAuthServer, Error, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        installMirror()
        Fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
        const stateFile = Path.join(options.dataDir, "auth-server.json")
        const saved = readState(stateFile)
        pendingRestore = saved?.entries
        activeMirror = undefined
        const server = await startAuthServer({
          accessTokenTtlSeconds: options.accessTokenTtlSeconds,
          refreshTokenTtlSeconds: options.refreshTokenTtlSeconds,
          rotation: true
        })
        if (saved !== undefined) {
          server.setClientSecret("basic", saved.clientSecrets.basic)
          server.setClientSecret("post", saved.clientSecrets.post)
        }
        const secrets = { basic: server.clients.basic.clientSecret, post: server.clients.post.clientSecret }
        const client = server.clients.basic
        const apiClient = server.clients.post
        let rotated = false

        const save = () => {
          const entries: Array<SavedEntry> = []
          for (const [key, entry] of activeMirror ?? []) {
            entries.push({
              key,
              model: entry.model,
              id: entry.id,
              payload: entry.payload,
              expiresAt: Number.isFinite(entry.expiresAt) ? entry.expiresAt : null
            })
          }
          // Nothing was looked up yet: the saved records are still pending, keep them.
          const kept = activeMirror === undefined ? saved?.entries ?? [] : entries
          writeState(stateFile, { version: 1, savedAt: Date.now(), clientSecrets: secrets, entries: kept })
        }
        // Save shortly after changes (coalesced), and on shutdown.
        let timer: NodeJS.Timeout | undefined
        onStoreChange = () => {
          if (timer !== undefined) return
          timer = setTimeout(() => {
            timer = undefined
            try {
              save()
            } catch {
              // best effort; the final save on shutdown reports nothing either
            }
          }, 250)
          timer.unref()
        }
        const stop = () => {
          if (timer !== undefined) clearTimeout(timer)
          timer = undefined
          onStoreChange = undefined
        }
        save()

        const demo: DemoAuthServer = {
          server,
          restored: saved !== undefined,
          freshReason: saved === undefined
            ? Fs.existsSync(stateFile) ? `${stateFile} could not be read` : "no saved state in the data directory"
            : undefined,
          stateFile,
          client,
          apiClient,
          rotateSecret: () => {
            rotated = true
            server.setClientSecret("basic", Crypto.randomBytes(32).toString("base64url"))
          },
          restoreSecret: () => {
            rotated = false
            server.setClientSecret("basic", secrets.basic)
          },
          secretRotated: () => rotated,
          save
        }
        return { demo, stop }
      },
      catch: (cause) => new Error(`the authorization server did not start: ${cause instanceof Error ? cause.message : String(cause)}`)
    }),
    ({ demo, stop }) =>
      Effect.promise(async () => {
        stop()
        try {
          demo.save()
        } catch {
          // the data directory went away: nothing to keep
        }
        await demo.server.close()
      })
  ), ({ demo }) => demo)

/** A short, stable fingerprint of a token, safe to show: the first 16 hex digits of its SHA-256. */
export const fingerprint = (token: string): string => Crypto.createHash("sha256").update(token).digest("hex").slice(0, 16)
