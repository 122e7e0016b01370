/**
 * Quoting server output without quoting secrets.
 *
 * The rules, for every text Renew quotes from a server (OAuth error fields, body excerpts, member names):
 *
 * - Every secret the request carried (the refresh token, the client secret, the Basic credential) is redacted in each
 *   form a server or proxy can echo it in: as sent, form-encoded (`+` for a space), URL-encoded (upper- or lower-case
 *   hex), JSON-escaped, HTML-escaped, and base64 / base64url (with or without padding).
 * - A form of 8 characters or more is redacted wherever it occurs. A shorter one (a 1 to 7 character secret) is
 *   redacted where it stands as a whole token, that is not next to a letter, a digit, `_` or `-`: a client secret
 *   `ab` is redacted in `client_secret=ab&` or `"ab"` but not inside `about`, so a tiny secret cannot erase every
 *   occurrence of a common letter.
 * - `Basic <credentials>` is redacted when the credentials decode to `id:secret`; a `Bearer` or `DPoP` value when it
 *   looks like a token (8 characters or more, not a plain lower-case word).
 * - In excerpts, also: the value of any member named like a secret (`*token`, `*secret`, `*password`, `*code`,
 *   `authorization`, `cookie`, `*api_key`, ...) and any run of 24 or more token characters.
 *
 * Every pattern is written so that no position of the text is scanned more than a bounded number of times: the cost
 * is linear in the length of the text (a 1 MiB body takes milliseconds).
 *
 * @internal
 */

const MAX_EXCERPT = 200

/** Stands for an elided value until the excerpt is final. */
const MARK = "\u0000"

/** Characters that glue a short secret to its neighbours: next to one of these it is part of another word. */
const WORD = "[\\p{L}\\p{N}_-]"

// Only syntax characters may be escaped in a unicode-mode pattern.
const escapeRegExp = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")

const lowerHex = (text: string): string => text.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase())

const base64 = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary)
}

const htmlEscape = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;")

/** Every form a secret can be echoed in (see the module comment). */
const formsOf = (secret: string): ReadonlyArray<string> => {
  const forms = new Set<string>([secret])
  const form = new URLSearchParams({ v: secret }).toString().slice(2)
  forms.add(form).add(lowerHex(form))
  try {
    const uri = encodeURIComponent(secret)
    forms.add(uri).add(lowerHex(uri))
  } catch {
    // A lone surrogate cannot be URL-encoded; it cannot have been sent URL-encoded either.
  }
  const json = JSON.stringify(secret).slice(1, -1)
  forms.add(json).add(json.replace(/\//g, "\\/"))
  forms.add(json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`))
  forms.add(htmlEscape(secret))
  const b64 = base64(secret)
  const b64url = b64.replace(/\+/g, "-").replace(/\//g, "_")
  forms.add(b64).add(b64.replace(/=+$/, "")).add(b64url).add(b64url.replace(/=+$/, ""))
  forms.delete("")
  return [...forms]
}

/**
 * Replaces every form of the given secrets (see the module comment) in a text. Built once per request.
 *
 * @internal
 */
export interface Redactor {
  readonly redact: (text: string, replacement?: string) => string
  /**
   * The longest prefix of `text` that is at least `length` long (or all of it) and ends where no form of a secret
   * straddles the cut, so redacting the prefix gives a prefix of redacting the whole text.
   */
  readonly safePrefix: (text: string, length: number) => string
}

/** @internal */
export const makeRedactor = (secrets: ReadonlyArray<string>): Redactor => {
  const all = [...new Set(secrets.filter((s) => s !== "").flatMap(formsOf))].sort((a, b) => b.length - a.length)
  const long = all.filter((form) => form.length >= 8)
  const short = all.filter((form) => form.length < 8)
  const shortPattern = short.length === 0
    ? undefined
    : new RegExp(`(?<!${WORD})(?:${short.map(escapeRegExp).join("|")})(?!${WORD})`, "gu")
  return {
    redact: (text, replacement = "<redacted>") => {
      let out = text
      // Longest first, so a secret that contains another one is replaced whole.
      for (const form of long) if (out.includes(form)) out = out.split(form).join(replacement)
      if (shortPattern !== undefined) out = out.replace(shortPattern, replacement)
      return out
    },
    safePrefix: (text, length) => {
      let cut = length
      if (cut >= text.length) return text
      // Move the cut past any occurrence that straddles it; each step moves forward, so this ends.
      for (let moved = true; moved && cut < text.length;) {
        moved = false
        for (const form of all) {
          // Only the few characters around the cut are searched, never the rest of the text.
          const from = Math.max(0, cut - form.length + 1)
          const at = text.slice(from, cut + form.length - 1).indexOf(form)
          if (at !== -1) {
            cut = from + at + form.length
            moved = true
          }
        }
      }
      return text.slice(0, cut)
    }
  }
}

const asRedactor = (secrets: Redactor | ReadonlyArray<string>): Redactor =>
  "redact" in secrets ? secrets : makeRedactor(secrets)

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

const looksLikeBasicCredentials = (value: string): boolean => {
  const standard = value.replace(/-/g, "+").replace(/_/g, "/")
  // atob throws on malformed input, and a throw per match would make a body full of "Basic x" slow.
  if (!BASE64.test(standard) || standard.replace(/=+$/, "").length % 4 === 1) return false
  const unpadded = standard.replace(/=+$/, "")
  try {
    return atob(unpadded.padEnd(unpadded.length + (4 - unpadded.length % 4) % 4, "=")).includes(":")
  } catch {
    return false
  }
}

// `Basic <base64>` / `Bearer <token>` anywhere (a proxy echoing the request's Authorization header).
const AUTH_SCHEME = /\b(Basic|Bearer|DPoP)(\s+)([A-Za-z0-9\-._~+/]+=*)/gi

const redactCredentials = (text: string, replacement: string): string =>
  text.replace(AUTH_SCHEME, (match: string, scheme: string, space: string, value: string) => {
    const secret = scheme.toLowerCase() === "basic"
      ? looksLikeBasicCredentials(value)
      : value.length >= 8 && !/^[a-z]+$/.test(value)
    return secret ? `${scheme}${space}${replacement}` : match
  })

/**
 * Redacts every known secret (any form, any length) and any `Basic`/`Bearer` credential in a short server string
 * (an `error_description`, an `error_uri`, a member name), and cuts it to `maxLength` characters. Only a prefix of a
 * long text is looked at, so the cost does not grow with the text.
 *
 * @internal
 */
export const scrub = (
  text: string,
  secrets: Redactor | ReadonlyArray<string>,
  maxLength = 500
): string => {
  const redactor = asRedactor(secrets)
  const prefix = redactor.safePrefix(text, maxLength * 4)
  const out = redactCredentials(redactor.redact(prefix), "<redacted>")
  return out.length > maxLength || prefix.length < text.length ? `${out.slice(0, maxLength)}…` : out
}

// Token-bearing members, wherever they appear: JSON (also truncated), single-quoted (a server printing a Python
// dict), form-encoded (GitHub answers form-encoded unless asked for JSON) and header dumps. The name is a whole run of
// word characters (the lookbehind keeps the engine from retrying inside a run, which made this quadratic) ending in a
// secret-like word, in any case or style (access_token, accessToken, ACCESS_TOKEN, session-token, client_secret),
// but not token_type. The value is quoted, or bare with an optional auth scheme (`authorization: Basic xyz`).
const TOKEN_MEMBER =
  /((["']?)(?<![\w-])[\w-]*(?:token|secret|assertion|password|passwd|code|authorization|cookie|credentials?|api[-_]?key)\2\s*[:=]\s*)(?:"(?:[^"\\]|\\.)*("?)|'(?:[^'\\]|\\.)*('?)|(?:(?:Basic|Bearer|Digest|DPoP|Negotiate)\s+)?[^\s&"'<>,;}\]]+)/gi
// Opaque runs (JWTs, random tokens, 32-character hex keys) that stand on their own in a non-JSON body.
const OPAQUE_RUN = /(?<![A-Za-z0-9_\-.~+/])[A-Za-z0-9_\-.~+/]{24,}={0,2}/g
// A lone `<` cannot make these scan to the end of the text: `[^<>]` stops at the next bracket.
const HAS_TAG = /<\/?[a-zA-Z][^<>]*>/
// Script and style content goes with its tags; an unclosed one takes the rest of the text with it, in one match.
const SCRIPT_OR_STYLE = /<(script|style)\b[^<>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi
const TAG = /<[^<>]*>/g

/** How much of a body an excerpt is made from: an excerpt is 200 characters, and a page's head rarely exceeds this. */
const EXCERPT_WINDOW = 16 * 1024

const isDelimiter = (code: number): boolean =>
  code <= 32 || code === 0x3c /* < */ || code === 0x3e /* > */ || code === 0x26 /* & */ || code === 0x22 /* " */ ||
  code === 0x27 /* ' */ || code === 0x2c /* , */ || code === 0x3b /* ; */

/**
 * A short, single-line excerpt of a body, safe to put in an error message: secrets and token members elided, long
 * opaque values elided, HTML tags stripped, at most 200 characters. Only the first 16 KiB of the body are looked at.
 *
 * @internal
 */
export const elide = (body: string, secrets: Redactor | ReadonlyArray<string>): string => {
  const redactor = asRedactor(secrets)
  const prefix = redactor.safePrefix(body, EXCERPT_WINDOW)
  // Elided values get a placeholder first: a literal "<redacted>" would itself be stripped as an HTML tag below.
  let text = redactCredentials(redactor.redact(prefix, MARK), MARK)
  const cut = prefix.length < body.length
  if (cut) {
    // The window may end inside a token nobody told us about: drop that last, partial word.
    let end = text.length
    while (end > 0 && !isDelimiter(text.charCodeAt(end - 1))) end--
    text = text.slice(0, end)
  }
  text = text
    .replace(
      TOKEN_MEMBER,
      (match: string, member: string, quote: string, dq: string | undefined, sq: string | undefined) => {
        // A bare "token:" is prose ("Invalid token: expired"), not a member.
        if (quote === "" && /^(?:token|assertion|code|password|secret)\s*:/i.test(member)) return match
        const open = match[member.length]
        if (open === "\"") return `${member}"${MARK}${dq ?? ""}`
        if (open === "'") return `${member}'${MARK}${sq ?? ""}`
        return `${member}${MARK}`
      }
    )
    .replace(OPAQUE_RUN, MARK)
  if (HAS_TAG.test(text)) text = text.replace(SCRIPT_OR_STYLE, " ").replace(TAG, " ")
  text = text.replace(/\s+/g, " ").trim().split(MARK).join("<redacted>")
  return text.length > MAX_EXCERPT || cut ? `${text.slice(0, MAX_EXCERPT)}…` : text
}
