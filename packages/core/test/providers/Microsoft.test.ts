import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

const aadsts = (error: string, code: string, text: string) =>
  answer(400, { error, error_description: `AADSTS${code}: ${text}\r\nTrace ID: 0000\r\nCorrelation ID: 0000`, error_codes: [Number(code)] })

describeProvider(Providers.microsoft, {
  params: { tenant: "contoso.onmicrosoft.com" },
  success: [
    { name: "rotation: a new refresh token on every use", step: { kind: "issue", expiresIn: 3600 }, rotates: true, lifetimeSeconds: 3600 }
  ],
  invalidGrant: [
    {
      name: "AADSTS700082: expired after 90 days of inactivity",
      step: aadsts("invalid_grant", "700082", "The refresh token has expired due to inactivity. The token was issued on 2018-10-19T17:26:59Z and was inactive for 90.00:00:00."),
      reason: "idle_timeout",
      providerCode: "AADSTS700082",
      remedy: "keep-alive"
    },
    {
      name: "AADSTS50173: the grant was revoked",
      step: aadsts("invalid_grant", "50173", "The provided grant has expired due to it being revoked, and a fresh auth token is needed."),
      reason: "revoked",
      providerCode: "AADSTS50173",
      remedy: "often after a password reset"
    },
    {
      name: "AADSTS50132: password changed",
      step: aadsts("invalid_grant", "50132", "The session is not valid due to password expiration or recent password change."),
      reason: "password_changed",
      providerCode: "AADSTS50132",
      remedy: "with the new password"
    },
    {
      name: "AADSTS65001: consent missing",
      step: aadsts("invalid_grant", "65001", "The user or administrator has not consented to use the application."),
      reason: "consent_revoked",
      providerCode: "AADSTS65001",
      remedy: "must grant this client consent again"
    },
    {
      name: "AADSTS700084: a single-page app's 24-hour token",
      step: aadsts("invalid_grant", "700084", "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00."),
      reason: "expired",
      providerCode: "AADSTS700084",
      remedy: "cannot be extended"
    },
    {
      name: "interaction_required (AADSTS50076, multi-factor), a code outside RFC 6749",
      step: aadsts("interaction_required", "50076", "Due to a configuration change made by your administrator, you must use multi-factor authentication."),
      reason: "interaction_required",
      providerCode: "AADSTS50076",
      remedy: "authorization flow interactively"
    },
    {
      name: "AADSTS50057: user disabled",
      step: aadsts("invalid_grant", "50057", "The user account is disabled."),
      reason: "user_inactive",
      providerCode: "AADSTS50057",
      remedy: "re-enable"
    },
    {
      name: "an AADSTS code the profile does not know: no reason is guessed",
      step: aadsts("invalid_grant", "9999999", "Something new."),
      reason: undefined,
      remedy: "The user must authorize again"
    }
  ],
  errors: [
    { name: "AADSTS7000215: invalid client secret", step: answer(401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." }), tag: "InvalidClient" },
    { name: "temporarily_unavailable", step: answer(503, { error: "temporarily_unavailable", error_description: "AADSTS90006: The service is temporarily unavailable." }), tag: "ServerError" }
  ]
})
