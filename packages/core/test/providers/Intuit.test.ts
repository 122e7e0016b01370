import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.intuit, {
  success: [
    {
      name: "one-hour token; the refresh token value changes",
      step: { kind: "issue", expiresIn: 3600, extra: { token_type: "bearer", x_refresh_token_expires_in: 8726400 } },
      rotates: true,
      lifetimeSeconds: 3600
    },
    { name: "the same refresh token again (within 24 hours)", step: { kind: "issue", expiresIn: 3600, omitRefreshToken: true }, rotates: false }
  ],
  invalidGrant: [
    {
      name: "invalid_grant",
      step: answer(400, { error: "invalid_grant", error_description: "Token invalid" }),
      reason: undefined,
      remedy: "connect the app again"
    }
  ],
  errors: [{ name: "invalid_client", step: answer(401, { error: "invalid_client" }), tag: "InvalidClient" }]
})
