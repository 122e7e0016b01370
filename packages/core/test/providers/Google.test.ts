import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.google, {
  success: [
    { name: "a new access token, the refresh token kept", step: { kind: "issue", omitRefreshToken: true, expiresIn: 3599 }, rotates: false, lifetimeSeconds: 3599 },
    { name: "a new refresh token is stored when one comes", step: { kind: "issue" }, rotates: true }
  ],
  invalidGrant: [
    {
      name: "expired or revoked (Google does not say which)",
      step: answer(400, { error: "invalid_grant", error_description: "Token has been expired or revoked." }),
      reason: undefined,
      remedy: "the app is in testing mode (7-day tokens)"
    }
  ],
  errors: [{ name: "wrong client secret", step: answer(401, { error: "invalid_client", error_description: "Unauthorized" }), tag: "InvalidClient" }]
})
