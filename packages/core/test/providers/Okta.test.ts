import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.okta, {
  params: { domain: "example.okta.com" },
  success: [
    { name: "refresh token rotation on", step: { kind: "issue", expiresIn: 3600 }, rotates: true, lifetimeSeconds: 3600 },
    { name: "rotation off: the refresh token is kept", step: { kind: "issue", expiresIn: 3600, omitRefreshToken: true }, rotates: false }
  ],
  invalidGrant: [
    {
      name: "invalid or expired refresh token (no provider-specific reason)",
      step: answer(400, { error: "invalid_grant", error_description: "The refresh token is invalid or expired." }),
      reason: undefined,
      remedy: "The user must authorize again"
    }
  ],
  errors: [{ name: "client authentication failed", step: answer(401, { error: "invalid_client", error_description: "Client authentication failed." }), tag: "InvalidClient" }]
})
