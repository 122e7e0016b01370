/**
 * Plain Node code (no Effect): what a service needs from a library around a request handler — logs routed to its own
 * logger, a bounded wait per request, events, and a grant's state for a status page.
 *
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... \
 *   REFRESH_TOKEN=... npx tsx examples/node-service.ts
 */
import { TokenManager } from "@renew/core"

export const run = async (
  env: Record<string, string | undefined>,
  options: { readonly log?: (record: TokenManager.LogRecord) => void } = {}
) => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: env.TOKEN_URL!,
    clientId: env.CLIENT_ID!,
    clientSecret: env.CLIENT_SECRET,
    // "warn" (the default: warnings and errors as JSON lines on stderr), "debug" ... "error", false, a function,
    // or your logger: pino(), a winston logger, console.
    logger: options.log ?? "warn",
    // No call waits longer than this unless it says otherwise.
    deadlineMs: 10_000
  })
  const reported: Array<string> = []
  tokens
    .on("refreshed", ({ key, trigger }) => void reported.push(`refreshed ${key} (${trigger})`))
    .on("failure", ({ key, errorTag, servedStale }) => void reported.push(`failure ${key} ${errorTag} ${servedStale}`))
    .on("reauthRequired", ({ key, reason }) => void reported.push(`reauthRequired ${key} (${reason})`)) // email them
    .on("alert", ({ state, message }) => void reported.push(`alert ${state}: ${message}`)) // page someone
  try {
    await tokens.setGrant("user-42", { refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })
    // In a request handler: stop waiting when the client hangs up (req.on("close", () => hangUp.abort())) or after
    // 2 s; the refresh goes on for the other callers either way.
    const hangUp = new AbortController()
    const accessToken = await tokens.getAccessToken("user-42", { signal: hangUp.signal, deadlineMs: 2_000 }).catch(
      (error: { _tag?: string }) => {
        if (error._tag === "Timeout" || error._tag === "Aborted") return undefined // answer 503, try again later
        throw error
      }
    )
    // For a status page: state, expiry, scope — never a token.
    const info = await tokens.getGrantInfo("user-42")
    return { accessToken, state: info?.state, reported }
  } finally {
    await tokens.dispose()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.env).then((result) => console.log(result.accessToken ? "got an access token" : "no token", result.state))
}
