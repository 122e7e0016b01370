import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.github, {
  success: [
    {
      name: "rotation, 8-hour token, the refresh token's 6 months from refresh_token_expires_in",
      step: { kind: "issue", expiresIn: 28800, extra: { token_type: "bearer", refresh_token_expires_in: 15811200 } },
      rotates: true,
      lifetimeSeconds: 28800,
      refreshLifetimeSeconds: 15811200
    }
  ],
  invalidGrant: [
    {
      name: "bad_refresh_token in a 200 body",
      step: answer(200, { error: "bad_refresh_token", error_description: "The refresh token passed is incorrect or expired." }),
      reason: undefined,
      providerCode: "bad_refresh_token",
      remedy: "authorize the GitHub App again"
    }
  ],
  errors: [
    {
      name: "incorrect_client_credentials in a 200 body",
      step: answer(200, { error: "incorrect_client_credentials", error_description: "The client_id and/or client_secret passed are incorrect." }),
      tag: "InvalidClient"
    }
  ]
})
