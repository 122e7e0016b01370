import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.xero, {
  success: [
    { name: "rotation: a new refresh token, 30-minute access token", step: { kind: "issue", expiresIn: 1800 }, rotates: true, lifetimeSeconds: 1800 }
  ],
  invalidGrant: [
    {
      name: "invalid_grant without a description",
      step: answer(400, { error: "invalid_grant" }),
      reason: undefined,
      remedy: "unused for 60 days"
    }
  ],
  errors: [{ name: "invalid_client", step: answer(400, { error: "invalid_client" }), tag: "InvalidClient" }]
})
