import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

const refused = (description: string) => answer(400, { error: "invalid_grant", error_description: description })

describeProvider(Providers.keycloak, {
  params: { host: "sso.example.com", realm: "acme" },
  success: [
    {
      name: "a new refresh token, its lifetime in refresh_expires_in",
      step: { kind: "issue", expiresIn: 300, extra: { refresh_expires_in: 1800, token_type: "bearer" } },
      rotates: true,
      lifetimeSeconds: 300,
      refreshLifetimeSeconds: 1800
    }
  ],
  invalidGrant: [
    { name: "Session not active", step: refused("Session not active"), reason: "session_ended", remedy: "sign in to the provider" },
    { name: "Offline session not active", step: refused("Offline session not active"), reason: "session_ended", remedy: "sign in to the provider" },
    { name: "User disabled", step: refused("User disabled"), reason: "user_inactive", remedy: "re-enable" },
    { name: "Stale token", step: refused("Stale token"), reason: "revoked", remedy: "not-before revocation" },
    {
      name: "Maximum allowed refresh token reuse exceeded",
      step: refused("Maximum allowed refresh token reuse exceeded"),
      reason: "reused",
      remedy: "every process shares one store"
    }
  ],
  errors: [{ name: "Invalid client credentials", step: answer(401, { error: "unauthorized_client", error_description: "Invalid client or Invalid client credentials" }), tag: "UnauthorizedClient" }]
})
