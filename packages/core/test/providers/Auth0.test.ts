import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.auth0, {
  params: { domain: "example.us.auth0.com" },
  success: [
    { name: "rotation on: a new refresh token in the same family", step: { kind: "issue", expiresIn: 86400 }, rotates: true, lifetimeSeconds: 86400 },
    { name: "rotation off: no new refresh token", step: { kind: "issue", expiresIn: 86400, omitRefreshToken: true }, rotates: false }
  ],
  invalidGrant: [
    {
      name: "unknown or invalid refresh token",
      step: answer(403, { error: "invalid_grant", error_description: "Unknown or invalid refresh token." }),
      reason: undefined,
      remedy: "The user must authorize again"
    }
  ],
  errors: [{ name: "too many requests", step: answer(429, { error: "too_many_requests", error_description: "Global limit has been reached" }), tag: "RateLimited" }]
})
