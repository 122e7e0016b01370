/**
 * Slack (OAuth v2 with token rotation turned on).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const METHOD = "https://docs.slack.dev/reference/methods/oauth.v2.access"
// The method's reference (errors, response examples) as published, mirrored as JSON.
const REFERENCE = "https://github.com/slack-ruby/slack-api-ref/blob/master/methods/oauth/oauth.v2.access.json"
const ROTATION = "https://docs.slack.dev/authentication/using-token-rotation"

/** @since 0.3.0 */
export const slack = make({
  name: "slack",
  title: "Slack",
  tokenUrl: { value: "https://slack.com/api/oauth.v2.access", source: METHOD },
  authMethod: {
    value: "client_secret_basic",
    source: METHOD,
    note: "Slack asks for HTTP Basic rather than client_secret in the body"
  },
  tokenTypes: { value: ["bot", "user", "Bearer"], source: REFERENCE, note: "token_type is bot or user" },
  rotation: {
    value: "always",
    source: ROTATION,
    note: "each refresh revokes the refresh token used and returns a new one"
  },
  accessTokenLifetime: { seconds: 43200, sentAsExpiresIn: true, source: ROTATION, note: "12 hours" },
  errorBody: { status200: true, okMember: "ok", source: REFERENCE },
  errorCodes: [
    { code: "invalid_refresh_token", means: "InvalidGrant", source: REFERENCE },
    { code: "invalid_client_id", means: "InvalidClient", source: REFERENCE },
    { code: "bad_client_secret", means: "InvalidClient", source: REFERENCE },
    { code: "invalid_grant_type", means: "UnsupportedGrantType", source: REFERENCE },
    { code: "ratelimited", means: "RateLimited", source: REFERENCE },
    { code: "internal_error", means: "ServerError", source: REFERENCE },
    { code: "fatal_error", means: "ServerError", source: REFERENCE },
    { code: "service_unavailable", means: "ServerError", source: REFERENCE }
  ],
  grantRules: [
    {
      error: "invalid_refresh_token",
      code: "invalid_refresh_token",
      remedy: "Slack no longer accepts this refresh token (used already, or the app was uninstalled): the app must be installed again.",
      source: REFERENCE
    }
  ]
})
