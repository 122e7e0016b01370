/**
 * Quoting server output without quoting secrets.
 *
 * @internal
 */

const MAX_EXCERPT = 200

/** Stands for an elided value until the excerpt is final. */
const MARK = "\u0000"

/**
 * Replaces every occurrence of a known secret with `<redacted>`.
 *
 * @internal
 */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => scrubWith(text, secrets, "<redacted>")

const scrubWith = (text: string, secrets: ReadonlyArray<string>, replacement: string): string => {
  let out = text
  for (const secret of secrets) {
    // Very short values would redact ordinary words; real secrets are long.
    if (secret.length >= 8) out = out.split(secret).join(replacement)
  }
  return out
}

// Token-bearing members, wherever they appear: JSON (also truncated), single-quoted (a server printing a Python
// dict), and form-encoded (GitHub answers form-encoded unless asked for JSON). The value is quoted or bare.
// Any member whose name ends in token, secret, assertion, password or code, in any case or style
// (access_token, accessToken, ACCESS_TOKEN, session-token, client_secret): but not token_type.
const TOKEN_MEMBER =
  /((["']?)\b[\w-]*(?:token|secret|assertion|password|code)\2\s*[:=]\s*)(?:"(?:[^"\\]|\\.)*("?)|'(?:[^'\\]|\\.)*('?)|[^\s&"'<>,;}\]]+)/gi
// Opaque runs (JWTs, random tokens, 32-character hex keys) that stand on their own in a non-JSON body.
const OPAQUE_RUN = /[A-Za-z0-9_\-.~+/]{24,}={0,2}/g

/**
 * A short, single-line excerpt of a body, safe to put in an error message: token members and long opaque values
 * elided, HTML tags stripped, at most 200 characters.
 *
 * @internal
 */
export const elide = (body: string, secrets: ReadonlyArray<string>): string => {
  // Elided values get a placeholder first: a literal "<redacted>" would itself be stripped as an HTML tag below.
  let text = scrubWith(body, secrets, MARK)
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
  if (/<\/?[a-zA-Z][^>]*>/.test(text)) {
    text = text.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ")
  }
  text = text.replace(/\s+/g, " ").trim().split(MARK).join("<redacted>")
  return text.length > MAX_EXCERPT ? `${text.slice(0, MAX_EXCERPT)}…` : text
}
