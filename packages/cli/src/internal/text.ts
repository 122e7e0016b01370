/**
 * Small text helpers: human durations and the last line of defence against printing a secret.
 *
 * @internal
 */
import * as Redacted from "effect/Redacted"

/** `42 ms`, `12 s`, `3m 20s`, `2h 5m`, `3d 4h`. @internal */
export const formatDuration = (millis: number): string => {
  const ms = Math.abs(millis)
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`
  const d = Math.floor(h / 24)
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`
}

/** `in 5m` for a future offset, `5m ago` for a past one. @internal */
export const formatIn = (millis: number): string =>
  millis >= 0 ? `in ${formatDuration(millis)}` : `${formatDuration(-millis)} ago`

/** @internal */
export const formatAgo = (millis: number): string => `${formatDuration(millis)} ago`

const WINDOW = 12

const base64 = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary)
}

/** The forms a secret can be echoed in: as is, form-, URL- (either hex case) and base64-encoded. */
const formsOf = (secret: string): ReadonlyArray<string> => {
  const forms = new Set([secret, new URLSearchParams({ v: secret }).toString().slice(2)])
  try {
    const uri = encodeURIComponent(secret)
    forms.add(uri).add(uri.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()))
  } catch {
    // A lone surrogate cannot be URL-encoded, nor sent so.
  }
  const b64 = base64(secret)
  forms.add(b64).add(b64.replace(/=+$/, "")).add(b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""))
  forms.delete("")
  return [...forms]
}

const escapeRegExp = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")

/**
 * Replaces every occurrence of a secret in any of its forms (as is, form-, URL- and base64-encoded), and of any
 * 12-character piece of one, with `<redacted>`. A form shorter than 8 characters is replaced only where it stands as
 * a whole token (not next to a letter, digit, `_` or `-`), so a tiny secret cannot erase a common letter. Output is
 * built so that no secret gets there; this only makes sure a mistake cannot leak one.
 *
 * @internal
 */
export const scrubSecrets = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  const forms = [...new Set(secrets.flatMap(formsOf))].sort((a, b) => b.length - a.length)
  for (const form of forms) {
    if (form.length < 8) {
      out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}_-])${escapeRegExp(form)}(?![\\p{L}\\p{N}_-])`, "gu"), "<redacted>")
      continue
    }
    out = out.split(form).join("<redacted>")
    if (form.length > WINDOW) {
      for (let i = 0; i + WINDOW <= form.length; i++) {
        const piece = form.slice(i, i + WINDOW)
        if (out.includes(piece)) out = out.split(piece).join("<redacted>")
      }
    }
  }
  return out
}

/** The values of the secrets that are present, for `scrubSecrets`. @internal */
export const secretValues = (...secrets: ReadonlyArray<Redacted.Redacted<string> | undefined>): Array<string> =>
  secrets.flatMap((secret) => secret === undefined ? [] : [Redacted.value(secret)])

/** Left-aligned columns separated by two spaces; the last column is not padded. @internal */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd())
    .join("\n")
}
