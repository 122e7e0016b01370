/**
 * The Promise facade with a provider profile (Slack): Slack's dialect is read for you, so a refresh token Slack no
 * longer accepts ({"ok": false, "error": "invalid_refresh_token"} with HTTP 200) is an InvalidGrant with Slack's
 * remedy, not a broken answer.
 *
 *   CLIENT_ID=... CLIENT_SECRET=... REFRESH_TOKEN=xoxe-1-... npx tsx examples/provider-profile.ts
 *
 * TOKEN_URL overrides the profile's URL (the tests point it at a loopback server).
 */
import { ProviderProfile, Providers, RefreshError, TokenManager } from "@renew/core"

export const run = async (env: Record<string, string | undefined>) => {
  const tokens = TokenManager.createTokenManager({
    ...ProviderProfile.managerOptions(Providers.slack),
    ...(env.TOKEN_URL !== undefined ? { tokenEndpoint: env.TOKEN_URL } : {}),
    clientId: env.CLIENT_ID!,
    clientSecret: env.CLIENT_SECRET
  })
  try {
    await tokens.setGrant("team-T1", { accessToken: "", refreshToken: env.REFRESH_TOKEN, expiresIn: 0 })
    return { token: await tokens.getAccessToken("team-T1") }
  } catch (error) {
    if (error instanceof RefreshError.InvalidGrant) {
      // e.g. reason undefined, providerCode "invalid_refresh_token", and a message saying the app must be reinstalled
      return { reinstall: error.message, providerCode: error.providerCode }
    }
    throw error
  } finally {
    await tokens.dispose()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.env).then((result) => console.log(result.token !== undefined ? "got an access token" : result.reinstall))
}
