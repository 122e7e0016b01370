import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.atlassian, {
  success: [{ name: "rotating refresh tokens", step: { kind: "issue", expiresIn: 3600, extra: { token_type: "bearer" } }, rotates: true, lifetimeSeconds: 3600 }],
  invalidGrant: [
    {
      name: "Unknown or invalid refresh token, with HTTP 403",
      step: answer(403, { error: "invalid_grant", error_description: "Unknown or invalid refresh token." }),
      reason: undefined,
      remedy: "rotated away, or the user revoked the app"
    }
  ],
  errors: [{ name: "a 403 without an OAuth error (a gateway)", step: { kind: "respond", status: 403, body: "<html>Forbidden</html>" }, tag: "ServerError" }]
})
