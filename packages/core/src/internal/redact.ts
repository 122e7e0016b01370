/**
 * Quoting server output without quoting secrets.
 *
 * @internal
 */

const MAX_EXCERPT = 200

/**
 * Replaces every occurrence of a known secret with `<redacted>`.
 *
 * @internal
 */
export const scrub = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const secret of secrets) {
    // Very short values would redact ordinary words; real secrets are long.
    if (secret.length >= 8) out = out.split(secret).join("<redacted>")
  }
  return out
}

// Token-bearing JSON members, wherever they appear (also inside truncated JSON).
const TOKEN_MEMBER = /("(?:access_token|refresh_token|id_token|client_secret|token|assertion)"\s*:\s*)"(?:[^"\\]|\\.)*("?)/g
// Long opaque runs (JWTs, random tokens) that stand on their own in a non-JSON body.
const OPAQUE_RUN = /[A-Za-z0-9_\-.~+/]{40,}={0,2}/g

/**
 * A short, single-line excerpt of a body, safe to put in an error message: token members and long opaque values
 * elided, HTML tags stripped, at most 200 characters.
 *
 * @internal
 */
export const elide = (body: string, secrets: ReadonlyArray<string>): string => {
  let text = scrub(body, secrets)
    .replace(TOKEN_MEMBER, (_, member: string, close: string) => `${member}"<redacted>${close}`)
    .replace(OPAQUE_RUN, "<redacted>")
  if (/<\/?[a-zA-Z][^>]*>/.test(text)) {
    text = text.replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ")
  }
  text = text.replace(/\s+/g, " ").trim()
  return text.length > MAX_EXCERPT ? `${text.slice(0, MAX_EXCERPT)}…` : text
}
