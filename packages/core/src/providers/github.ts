/**
 * GitHub Apps' user access tokens (user-to-server tokens that expire).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const REFRESHING = "https://docs.github.com/en/developers/apps/refreshing-user-to-server-access-tokens"
const ERRORS =
  "https://docs.github.com/en/enterprise-server@3.19/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"

/** @since 0.3.0 */
export const github = make({
  name: "github",
  title: "GitHub",
  tokenUrl: { value: "https://github.com/login/oauth/access_token", source: REFRESHING },
  authMethod: { value: "client_secret_post", source: REFRESHING, note: "client_id and client_secret as parameters" },
  rotation: {
    value: "always",
    source: REFRESHING,
    note: "once used, the refresh token and the old user access token no longer work"
  },
  accessTokenLifetime: { seconds: 28800, sentAsExpiresIn: true, source: REFRESHING, note: "8 hours" },
  refreshTokenLifetime: {
    maxSeconds: 15811200,
    member: "refresh_token_expires_in",
    source: REFRESHING,
    note: "six months, stated in refresh_token_expires_in"
  },
  errorBody: { status200: true, source: "https://github.com/golang/oauth2/issues/274" },
  errorCodes: [
    { code: "bad_refresh_token", means: "InvalidGrant", source: "https://github.com/orgs/community/discussions/24745" },
    { code: "incorrect_client_credentials", means: "InvalidClient", source: ERRORS }
  ],
  grantRules: [
    {
      error: "bad_refresh_token",
      code: "bad_refresh_token",
      remedy: "The refresh token is wrong, already used, or past its six months: the user must authorize the GitHub App again.",
      source: "https://github.com/orgs/community/discussions/24745"
    }
  ]
})
