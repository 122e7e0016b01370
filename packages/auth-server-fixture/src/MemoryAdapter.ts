/**
 * An unbounded, Map-based implementation of oidc-provider's adapter interface.
 *
 * oidc-provider's built-in memory adapter is an LRU capped at 1,000 entries, so a test that mints many
 * grants silently loses tokens (they then fail with `invalid_grant`, "refresh token not found"). This one
 * never evicts live entries; it only drops entries whose `expiresIn` has passed (lazily on access, plus a
 * periodic sweep so a long-running demo does not grow forever).
 *
 * Semantics follow the built-in adapter: entries live for `expiresIn + clockTolerance` seconds, `Session`
 * records are indexed by `uid`, records with a `userCode` by that code, and token records that carry a
 * `grantId` are indexed by grant so `revokeByGrantId` removes all of them.
 */

/** A stored oidc-provider model payload (plain JSON data). */
export type AdapterPayload = Record<string, unknown>

interface Entry {
  readonly model: string
  readonly id: string
  readonly payload: AdapterPayload
  /** epoch milliseconds; `Infinity` when the record was stored without `expiresIn` */
  readonly expiresAt: number
}

/** Models whose records can be revoked by grant id (the same list oidc-provider's memory adapter uses). */
const GRANTABLE: ReadonlySet<string> = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "BackchannelAuthenticationRequest",
  "PreAuthorizedCode"
])

const SWEEP_EVERY_UPSERTS = 500

const stringField = (payload: AdapterPayload, field: string): string | undefined => {
  const value = payload[field]
  return typeof value === "string" && value.length > 0 ? value : undefined
}

/** The storage shared by every model's adapter of one provider instance. */
export class MemoryAdapterStore {
  readonly #entries = new Map<string, Entry>()
  readonly #grants = new Map<string, Set<string>>()
  readonly #sessionUids = new Map<string, string>()
  readonly #userCodes = new Map<string, string>()
  #upsertsSinceSweep = 0

  /** Number of stored records (expired records not yet swept are included). */
  get size(): number {
    return this.#entries.size
  }

  clear(): void {
    this.#entries.clear()
    this.#grants.clear()
    this.#sessionUids.clear()
    this.#userCodes.clear()
  }

  /** Drops every expired record now. */
  sweep(now: number = Date.now()): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.delete(key)
    }
  }

  get(key: string, now: number = Date.now()): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.delete(key)
      return undefined
    }
    return entry
  }

  set(key: string, entry: Entry): void {
    if (this.#entries.has(key)) this.delete(key)
    this.#entries.set(key, entry)
    const { model, id, payload } = entry
    const uid = stringField(payload, "uid")
    if (model === "Session" && uid !== undefined) this.#sessionUids.set(uid, id)
    const userCode = stringField(payload, "userCode")
    if (userCode !== undefined) this.#userCodes.set(userCode, id)
    const grantId = stringField(payload, "grantId")
    if (grantId !== undefined && GRANTABLE.has(model)) {
      let members = this.#grants.get(grantId)
      if (members === undefined) {
        members = new Set()
        this.#grants.set(grantId, members)
      }
      members.add(key)
    }
    if (++this.#upsertsSinceSweep >= SWEEP_EVERY_UPSERTS) {
      this.#upsertsSinceSweep = 0
      this.sweep()
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    const { id, payload } = entry
    const uid = stringField(payload, "uid")
    if (uid !== undefined && this.#sessionUids.get(uid) === id) this.#sessionUids.delete(uid)
    const userCode = stringField(payload, "userCode")
    if (userCode !== undefined && this.#userCodes.get(userCode) === id) this.#userCodes.delete(userCode)
    const grantId = stringField(payload, "grantId")
    if (grantId !== undefined) {
      const members = this.#grants.get(grantId)
      if (members !== undefined) {
        members.delete(key)
        if (members.size === 0) this.#grants.delete(grantId)
      }
    }
  }

  idForSessionUid(uid: string): string | undefined {
    return this.#sessionUids.get(uid)
  }

  idForUserCode(userCode: string): string | undefined {
    return this.#userCodes.get(userCode)
  }

  deleteGrant(grantId: string): void {
    const members = this.#grants.get(grantId)
    if (members === undefined) return
    for (const key of [...members]) this.delete(key)
    this.#grants.delete(grantId)
  }
}

/**
 * One adapter instance per oidc-provider model name ("AccessToken", "RefreshToken", "Session", ...), all
 * sharing one {@link MemoryAdapterStore}. Payloads are copied on the way in and out, like a real store.
 */
export class UnboundedMemoryAdapter {
  readonly model: string
  readonly store: MemoryAdapterStore
  readonly #clockToleranceSeconds: number

  constructor(model: string, store: MemoryAdapterStore = new MemoryAdapterStore(), clockToleranceSeconds = 0) {
    this.model = model
    this.store = store
    this.#clockToleranceSeconds = clockToleranceSeconds
  }

  #key(id: string): string {
    return `${this.model}:${id}`
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const expiresAt =
      typeof expiresIn === "number" ? Date.now() + (expiresIn + this.#clockToleranceSeconds) * 1000 : Infinity
    this.store.set(this.#key(id), { model: this.model, id, payload: structuredClone(payload), expiresAt })
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const entry = this.store.get(this.#key(id))
    return entry === undefined ? undefined : structuredClone(entry.payload)
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.store.idForSessionUid(uid)
    return id === undefined ? undefined : this.find(id)
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.store.idForUserCode(userCode)
    return id === undefined ? undefined : this.find(id)
  }

  async consume(id: string): Promise<void> {
    const entry = this.store.get(this.#key(id))
    if (entry !== undefined) entry.payload["consumed"] = Math.floor(Date.now() / 1000)
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.#key(id))
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.deleteGrant(grantId)
  }
}
