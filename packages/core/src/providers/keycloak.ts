/**
 * Keycloak (and the Red Hat build of Keycloak).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

// The refresh-token checks and the error descriptions they answer with.
const TOKEN_MANAGER =
  "https://github.com/keycloak/keycloak/blob/main/services/src/main/java/org/keycloak/protocol/oidc/TokenManager.java"
const TIMEOUTS = "https://wjw465150.gitbooks.io/keycloak-documentation/server_admin/topics/sessions/timeouts.html"

/** @since 0.3.0 */
export const keycloak = make({
  name: "keycloak",
  title: "Keycloak",
  tokenUrl: { value: "https://{host}/realms/{realm}/protocol/openid-connect/token", source: TOKEN_MANAGER },
  introspectionUrl: {
    value: "https://{host}/realms/{realm}/protocol/openid-connect/token/introspect",
    source: "https://github.com/iperdomo/keycloak-oauth2-instrospection/blob/master/test.sh"
  },
  params: {
    host: { description: "the Keycloak server's host (and port, and any path prefix such as /auth)" },
    realm: { description: "the realm name" }
  },
  rotation: {
    value: "optional",
    source: TIMEOUTS,
    note: "a new refresh token each time; one-time use only with the realm's Revoke Refresh Token switch"
  },
  refreshTokenLifetime: {
    member: "refresh_expires_in",
    source: TIMEOUTS,
    note: "bounded by the realm's SSO Session Idle and Max (offline tokens: Offline Session Idle)"
  },
  grantRules: [
    { error: "invalid_grant", descriptionIncludes: "Offline session not active", reason: "session_ended", source: TOKEN_MANAGER },
    { error: "invalid_grant", descriptionIncludes: "Offline user session not found", reason: "session_ended", source: TOKEN_MANAGER },
    { error: "invalid_grant", descriptionIncludes: "Client session not active", reason: "session_ended", source: TOKEN_MANAGER },
    { error: "invalid_grant", descriptionIncludes: "Session not active", reason: "session_ended", source: TOKEN_MANAGER },
    { error: "invalid_grant", descriptionIncludes: "User disabled", reason: "user_inactive", source: TOKEN_MANAGER },
    {
      error: "invalid_grant",
      descriptionIncludes: "Maximum allowed refresh token reuse exceeded",
      reason: "reused",
      source: TOKEN_MANAGER
    },
    {
      error: "invalid_grant",
      descriptionIncludes: "Stale token",
      reason: "revoked",
      remedy: "Keycloak refused an older refresh token: a newer one was already used (Revoke Refresh Token), or an administrator pushed a not-before revocation. The user must sign in again.",
      source: TOKEN_MANAGER
    },
    {
      error: "invalid_grant",
      descriptionIncludes: "Offline session invalid because offline access not granted anymore",
      reason: "consent_revoked",
      source: TOKEN_MANAGER
    }
  ]
})
