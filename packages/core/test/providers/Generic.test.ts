import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.generic, {
  params: { tokenUrl: "https://as.example.com/token" },
  success: [
    { name: "rotation", step: { kind: "issue", expiresIn: 600 }, rotates: true, lifetimeSeconds: 600 },
    { name: "no rotation, no expires_in: the engine's 1-hour default", step: { kind: "issue", expiresIn: null, omitRefreshToken: true }, rotates: false, lifetimeSeconds: 3600 }
  ],
  invalidGrant: [
    { name: "invalid_grant", step: answer(400, { error: "invalid_grant", error_description: "grant request is invalid" }), reason: undefined, remedy: "The user must authorize again" }
  ],
  errors: [
    { name: "invalid_scope", step: answer(400, { error: "invalid_scope" }), tag: "InvalidScope" },
    { name: "unsupported_grant_type", step: answer(400, { error: "unsupported_grant_type" }), tag: "UnsupportedGrantType" }
  ]
})
