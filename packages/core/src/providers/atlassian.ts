/**
 * Atlassian (OAuth 2.0 3LO apps for Jira, Confluence, ...).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const REFRESH = "https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens"

/** @since 0.3.0 */
export const atlassian = make({
  name: "atlassian",
  title: "Atlassian",
  tokenUrl: { value: "https://auth.atlassian.com/oauth/token", source: "https://nango.dev/blog/jira-oauth-refresh-token-invalid-grant" },
  authMethod: { value: "client_secret_post", source: REFRESH, note: "client_id and client_secret in the body" },
  rotation: { value: "always", source: REFRESH, note: "rotating refresh tokens: a new, limited-life one on each use" },
  grantRules: [
    {
      error: "invalid_grant",
      descriptionIncludes: "Unknown or invalid refresh token",
      remedy: "Atlassian no longer knows this refresh token: it expired unused, was rotated away, or the user revoked the app. The user must authorize again.",
      source: "https://nango.dev/blog/jira-oauth-refresh-token-invalid-grant"
    }
  ],
  notes: [
    {
      value: "the invalid_grant answer often comes with HTTP 403",
      source: "https://nango.dev/blog/jira-oauth-refresh-token-invalid-grant"
    }
  ]
})
