/**
 * How every error of the family quotes the server and says what to do.
 *
 * @internal
 */
import * as Schema from "effect/Schema"

/** What the authorization server said, when it said anything (RFC 6749 §5.2). */
export const ServerAnswer = {
  /** HTTP status of the token endpoint's answer. */
  status: Schema.optional(Schema.Number),
  /** RFC 6749 §5.2 `error`. */
  oauthError: Schema.optional(Schema.String),
  /** RFC 6749 §5.2 `error_description`. */
  errorDescription: Schema.optional(Schema.String),
  /** RFC 6749 §5.2 `error_uri`. */
  errorUri: Schema.optional(Schema.String)
}

export interface ServerAnswerFields {
  readonly status?: number | undefined
  readonly oauthError?: string | undefined
  readonly errorDescription?: string | undefined
  readonly errorUri?: string | undefined
}

const quoteServer = (self: ServerAnswerFields): string => {
  const parts: Array<string> = []
  if (self.status !== undefined) parts.push(`HTTP ${self.status}`)
  if (self.oauthError !== undefined) parts.push(self.oauthError)
  if (self.errorDescription !== undefined) parts.push(JSON.stringify(self.errorDescription))
  if (self.errorUri !== undefined) parts.push(`(see ${self.errorUri})`)
  return parts.length === 0 ? "" : ` Server answered: ${parts.join(" ")}.`
}

export const render = (what: string, self: ServerAnswerFields, remedy: string): string =>
  `${what}.${quoteServer(self)} ${remedy}`

export const seconds = (millis: number): string => `${Math.round(millis / 100) / 10}s`
