/**
 * AES-256-GCM for token values at rest, shared by the SQLite, Redis and PostgreSQL stores. What a value is bound to
 * (its grant, field, version and key id: see `GrantRecord`) is authenticated data, so a ciphertext moved to another
 * grant, field or version fails to decrypt instead of yielding a wrong token. Every stored value carries the id of the
 * key that sealed it, so keys can be rotated.
 *
 * @since 0.1.0
 */
import { RefreshError } from "@renew/core"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Crypto from "node:crypto"

/**
 * @since 0.1.0
 * @category models
 */
export interface Encryption {
  /** Keys by id: 32 random bytes, base64-encoded (`openssl rand -base64 32`). */
  readonly keys: Readonly<Record<string, Redacted.Redacted<string>>>
  /** The key new writes use. Values written with another listed key stay readable: that is key rotation. */
  readonly activeKeyId: string
  /**
   * Migration only. Also read grants whose tokens are stored in plaintext (written before encryption was turned on)
   * or sealed without their version (written by an earlier @renew store); each is sealed properly on its next write.
   * Default false: such a grant is refused with a `StoreError`, because anyone able to write to the store could
   * otherwise plant a token or restore an old one. Turn it off again once every grant has been refreshed.
   */
  readonly allowLegacyRows?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Cipher {
  readonly activeKeyId: string
  /** See `Encryption.allowLegacyRows`. */
  readonly allowLegacyRows: boolean
  readonly encrypt: (plain: string, aad: string) => string
  /** `undefined` when the key is unknown or the value does not authenticate. */
  readonly decrypt: (sealed: string, aad: string, keyId: string) => string | undefined
}

/**
 * The cipher for `encryption` (`undefined`: none configured), or the `ConfigurationError` of a malformed key or an
 * unknown active key id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCipher = (
  encryption: Encryption | undefined
): Either.Either<Cipher | undefined, RefreshError.ConfigurationError> => {
  if (encryption === undefined) return Either.right(undefined)
  const keys = new Map<string, Buffer>()
  for (const [id, value] of Object.entries(encryption.keys)) {
    if (id === "") {
      return Either.left(new RefreshError.ConfigurationError({ option: "encryption.keys", detail: "a key id must not be empty" }))
    }
    const key = Buffer.from(Redacted.value(value), "base64")
    if (key.length !== 32) {
      return Either.left(
        new RefreshError.ConfigurationError({
          option: `encryption.keys.${id}`,
          detail: "must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
        })
      )
    }
    keys.set(id, key)
  }
  if (!keys.has(encryption.activeKeyId)) {
    return Either.left(
      new RefreshError.ConfigurationError({
        option: "encryption.activeKeyId",
        detail: `no key with id ${JSON.stringify(encryption.activeKeyId)} in encryption.keys`
      })
    )
  }
  return Either.right({
    activeKeyId: encryption.activeKeyId,
    allowLegacyRows: encryption.allowLegacyRows === true,
    encrypt: (plain, aad) => {
      const iv = Crypto.randomBytes(12)
      const cipher = Crypto.createCipheriv("aes-256-gcm", keys.get(encryption.activeKeyId)!, iv)
      cipher.setAAD(Buffer.from(aad))
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64")
    },
    decrypt: (sealed, aad, keyId) => {
      const key = keys.get(keyId)
      if (key === undefined) return undefined
      const raw = Buffer.from(sealed, "base64")
      if (raw.length < 28) return undefined
      const decipher = Crypto.createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12))
      decipher.setAAD(Buffer.from(aad))
      decipher.setAuthTag(raw.subarray(12, 28))
      try {
        return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8")
      } catch {
        return undefined
      }
    }
  })
}

/**
 * The message for a value that cannot be opened.
 *
 * @since 0.1.0
 * @category errors
 */
export const undecryptable = (keyId: string | undefined, cipher: Cipher | undefined): string =>
  keyId !== undefined && cipher === undefined
    ? `the grant is encrypted (key id ${keyId}) but no encryption keys are configured. Configure encryption.keys with that key`
    : `cannot decrypt the grant with key id ${keyId}: wrong key, the key is no longer in encryption.keys, or the stored value was altered or copied from another grant or version. Add the key back (keep old keys listed after a rotation); if the key is right, delete the grant and authorize again`
