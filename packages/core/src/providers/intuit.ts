/**
 * Intuit QuickBooks Online.
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const TOKENS = "https://blogs.intuit.com/2024/06/03/oauth-token-management-done-the-right-way/"

/** @since 0.3.0 */
export const intuit = make({
  name: "intuit",
  title: "Intuit QuickBooks",
  tokenUrl: {
    value: "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    source: "https://www.useparagon.com/integration-error-solutions/quickbooks-invalid-grant-error"
  },
  authMethod: {
    value: "client_secret_basic",
    source: "https://www.useparagon.com/integration-error-solutions/quickbooks-invalid-grant-error"
  },
  rotation: {
    value: "always",
    source: "https://blog.csdn.net/chenpei_pei/article/details/124256298",
    note: "the refresh token value changes about every 24 hours (Intuit's FAQ): always keep the latest"
  },
  accessTokenLifetime: { seconds: 3600, sentAsExpiresIn: true, source: TOKENS, note: "one hour" },
  refreshTokenLifetime: {
    idleSeconds: 100 * 24 * 3600,
    maxSeconds: 5 * 365 * 24 * 3600,
    source: "https://blogs.a.intuit.com/2025/11/12/important-changes-to-refresh-token-policy",
    note: "100 days rolling (extended on each use); at most five years from the grant"
  },
  grantRules: [
    {
      error: "invalid_grant",
      remedy: "Intuit refused the refresh token: it went unused for 100 days, reached its five-year limit, or the user disconnected the app. The user must connect the app again.",
      source: "https://www.useparagon.com/integration-error-solutions/quickbooks-invalid-grant-error"
    }
  ]
})
