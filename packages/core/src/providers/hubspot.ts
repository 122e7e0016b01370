/**
 * HubSpot (public apps, OAuth v1 token endpoint).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const BAD_REFRESH_TOKEN = "https://www.nango.dev/blog/hubspot-oauth-bad-refresh-token"

/** @since 0.3.0 */
export const hubspot = make({
  name: "hubspot",
  title: "HubSpot",
  tokenUrl: { value: "https://api.hubapi.com/oauth/v1/token", source: "https://developers.hubspot.com/beta-docs/reference/api/app-management/oauth" },
  authMethod: {
    value: "client_secret_post",
    source: "https://developers.hubspot.com/beta-docs/reference/api/app-management/oauth",
    note: "client_id and client_secret in the form body"
  },
  rotation: { value: "undocumented", source: "" },
  accessTokenLifetime: {
    seconds: 1800,
    sentAsExpiresIn: true,
    source: "https://developers.hubspot.com/changelog/upcoming-expiration-of-oauth-access-tokens-is-changing",
    note: "30 minutes"
  },
  errorBody: {
    status200: false,
    errorMember: "status",
    descriptionMember: "message",
    source: BAD_REFRESH_TOKEN
  },
  errorCodes: [{ code: "BAD_REFRESH_TOKEN", means: "InvalidGrant", source: BAD_REFRESH_TOKEN }],
  grantRules: [
    {
      error: "BAD_REFRESH_TOKEN",
      code: "BAD_REFRESH_TOKEN",
      reason: "revoked",
      remedy: "HubSpot refuses this refresh token, most often because the app was uninstalled or its access revoked: the user must install the app again.",
      source: "https://integrate.hubspot.com/t/what-to-do-when-you-suddenly-get-bad-refresh-token-when-trying-to-refresh-an-access-token/5490"
    }
  ]
})
