/**
 * Canary check for engine tests against the scripted endpoint: every error a caller saw is rendered the ways a user would see it (String, message,
 * util.inspect, JSON), and none may contain the client secret or any token the scripted server knows.
 */
import { inspect } from "node:util"
import type { ScriptedTokenEndpoint } from "./ScriptedTokenEndpoint.js"

export interface SeenErrors {
  readonly add: (error: unknown) => void
  /** Asserts that no error seen holds the client secret or any refresh or access token of `endpoint`. */
  readonly assertNoSecrets: (endpoint: ScriptedTokenEndpoint, extraSecrets?: ReadonlyArray<string>) => void
  readonly count: () => number
}

const renderings = (error: unknown): ReadonlyArray<string> => {
  const out = [String(error), inspect(error, { depth: 10 })]
  if (typeof error === "object" && error !== null) {
    if ("message" in error) out.push(String(error.message))
    try {
      out.push(JSON.stringify(error))
    } catch {
      // A circular structure is not our concern here: inspect covered it.
    }
  }
  return out
}

/** Collects errors; `clientSecret` is the secret the engine under test was given. */
export const seenErrors = (clientSecret: string): SeenErrors => {
  const errors: Array<unknown> = []
  return {
    add: (error) => void errors.push(error),
    count: () => errors.length,
    assertNoSecrets: (endpoint, extraSecrets = []) => {
      const secrets = [
        clientSecret,
        ...endpoint.knownRefreshTokens,
        ...endpoint.issuedTokens.map((t) => t.accessToken),
        ...extraSecrets
      ]
      for (const error of errors) {
        for (const text of renderings(error)) {
          const leaked = secrets.filter((secret) => text.includes(secret))
          // The failure message shows where, with the secrets themselves blanked out.
          const shown = leaked.reduce((t, secret) => t.split(secret).join("<SECRET>"), text).slice(0, 300)
          if (leaked.length > 0) throw new Error(`a secret leaked into an error rendering: ${shown}`)
        }
      }
    }
  }
}
