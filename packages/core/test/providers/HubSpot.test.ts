import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.hubspot, {
  success: [
    { name: "a 30-minute token", step: { kind: "issue", expiresIn: 1800, extra: { token_type: "bearer" } }, rotates: true, lifetimeSeconds: 1800 },
    { name: "the refresh token is kept when none comes back", step: { kind: "issue", expiresIn: 1800, omitRefreshToken: true }, rotates: false }
  ],
  invalidGrant: [
    {
      name: "status BAD_REFRESH_TOKEN (no error member)",
      step: answer(400, { status: "BAD_REFRESH_TOKEN", message: "missing or invalid refresh token" }),
      reason: "revoked",
      providerCode: "BAD_REFRESH_TOKEN",
      remedy: "install the app again"
    }
  ],
  errors: [{ name: "a 500", step: answer(500, { status: "error", message: "internal error" }), tag: "ServerError" }]
})
