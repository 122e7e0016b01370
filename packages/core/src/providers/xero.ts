/**
 * Xero.
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const FAQ = "https://developer.xero.com/faq/oauth2"

/** @since 0.3.0 */
export const xero = make({
  name: "xero",
  title: "Xero",
  tokenUrl: { value: "https://identity.xero.com/connect/token", source: "https://nango.dev/blog/xero-oauth-refresh-token-invalid-grant" },
  authMethod: {
    value: "client_secret_basic",
    source: "https://community.xero.com/developer/discussion/105714701/",
    note: "client id and secret in the Authorization header"
  },
  rotation: {
    value: "always",
    source: FAQ,
    reuseIntervalSeconds: 1800,
    note: "a new refresh token on each refresh; the previous one can be retried for 30 minutes"
  },
  accessTokenLifetime: { seconds: 1800, sentAsExpiresIn: true, source: FAQ, note: "30 minutes" },
  refreshTokenLifetime: { idleSeconds: 60 * 24 * 3600, source: FAQ, note: "unused refresh tokens expire after 60 days" },
  grantRules: [
    {
      error: "invalid_grant",
      remedy: "Xero refused the refresh token: it went unused for 60 days, an older token of a rotated set was used after the 30-minute grace, or the user disconnected the app. The user must authorize again.",
      source: FAQ
    }
  ]
})
