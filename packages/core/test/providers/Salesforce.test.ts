import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.salesforce, {
  success: [
    {
      name: "no expires_in, no new refresh token (rotation off): the engine's default lifetime",
      step: { kind: "issue", expiresIn: null, omitRefreshToken: true, extra: { instance_url: "https://example.my.salesforce.com", issued_at: "1278448384422", signature: "x" } },
      rotates: false,
      lifetimeSeconds: 3600
    },
    { name: "refresh token rotation enabled on the app", step: { kind: "issue", expiresIn: null }, rotates: true }
  ],
  invalidGrant: [
    {
      name: "expired access/refresh token",
      step: answer(400, { error: "invalid_grant", error_description: "expired access/refresh token" }),
      reason: "expired",
      remedy: "refresh token policy"
    },
    {
      name: "user hasn't approved this consumer",
      step: answer(400, { error: "invalid_grant", error_description: "user hasn't approved this consumer" }),
      reason: "consent_revoked",
      remedy: "must grant this client consent again"
    },
    {
      name: "user is locked",
      step: answer(400, { error: "invalid_grant", error_description: "user is locked" }),
      reason: "user_inactive",
      remedy: "re-enable"
    }
  ],
  errors: [{ name: "invalid client credentials", step: answer(400, { error: "invalid_client", error_description: "invalid client credentials" }), tag: "InvalidClient" }]
})
