/**
 * Plain Node code (no Effect): the Promise facade keeps every grant fresh in the background and tells you when one
 * needs its user again.
 *
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... \
 *   REFRESH_TOKEN=... npx tsx examples/background-refresh.ts
 */
import { TokenManager } from "@renew/core"

export const run = async (env: Record<string, string | undefined>, options: { readonly waitMs?: number } = {}) => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: env.TOKEN_URL!,
    clientId: env.CLIENT_ID!,
    clientSecret: env.CLIENT_SECRET,
    // store: "./data/grants.db",        // shared by the processes of this machine; every one runs the scheduler
    background: { intervalSeconds: 1, maxPerSecond: 20, keepAliveSeconds: 30 * 24 * 3600 }
  })
  const reported: Array<string> = []
  tokens
    .on("reauthRequired", ({ key, reason, message }) => {
      reported.push(`reauthRequired ${key} (${reason})`)
      console.warn(`${key} must authorize again (${reason}): ${message}`) // e.g. email the user
    })
    .on("failing", ({ key, errorTag }) => void reported.push(`failing ${key} (${errorTag})`))
    .on("recovered", ({ key }) => void reported.push(`recovered ${key}`))
  const reauth = new Promise<void>((resolve) => tokens.once("reauthRequired", () => resolve()))
  try {
    // An access token that expires at once: the scheduler refreshes it while nobody asks.
    await tokens.setGrant("user-42", { accessToken: "expired", refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })
    await Promise.race([reauth, new Promise((resolve) => setTimeout(resolve, options.waitMs ?? 3_000))])
    const accessToken = await tokens.getAccessToken("user-42").catch(() => undefined)
    return { accessToken, reported }
  } finally {
    await tokens.dispose()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.env).then(
    ({ accessToken, reported }) => console.log(accessToken ? "got an access token" : "no token", reported),
    () => process.exit(1)
  )
}
