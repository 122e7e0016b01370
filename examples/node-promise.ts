/**
 * Plain Node code (no Effect) using the Promise facade.
 *
 *   TOKEN_URL=https://auth.example.com/oauth/token CLIENT_ID=my-app CLIENT_SECRET=... \
 *   REFRESH_TOKEN=... npx tsx examples/node-promise.ts
 */
import { TokenManager } from "@renew/core/promise"

export const run = async (env: Record<string, string | undefined>) => {
  const tokens = TokenManager.createTokenManager({
    tokenEndpoint: env.TOKEN_URL!,
    clientId: env.CLIENT_ID!,
    clientSecret: env.CLIENT_SECRET,
    skewSeconds: 60
  })
  try {
    await tokens.setGrant("user-42", { accessToken: "", refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })
    // Refreshed once, however many callers ask at the same time.
    const [a, b] = await Promise.all([tokens.getAccessToken("user-42"), tokens.getAccessToken("user-42")])
    return a === b ? a : undefined
  } catch (error) {
    // Rejections are the tagged errors themselves.
    const tag = (error as { _tag?: string })._tag
    if (tag === "InvalidGrant") console.error("The user must authorize again:", (error as Error).message)
    throw error
  } finally {
    await tokens.dispose()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.env).then((token) => console.log(token ? "got an access token" : "no token"), () => process.exit(1))
}
