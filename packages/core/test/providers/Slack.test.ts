import { Providers } from "@renew/core"
import { answer, describeProvider } from "../support/providerCases.js"

describeProvider(Providers.slack, {
  success: [
    {
      name: "ok: true, token_type bot, 12-hour token, rotated",
      step: { kind: "issue", expiresIn: 43200, extra: { ok: true, token_type: "bot", app_id: "A0KRD7HC3" } },
      rotates: true,
      lifetimeSeconds: 43200
    },
    {
      name: "no expires_in: the documented 12 hours are assumed",
      step: { kind: "issue", expiresIn: null, extra: { ok: true, token_type: "bot" } },
      rotates: true,
      lifetimeSeconds: 43200
    },
    { name: "a user token (token_type user)", step: { kind: "issue", expiresIn: 43200, extra: { ok: true, token_type: "user" } }, rotates: true }
  ],
  invalidGrant: [
    {
      name: "ok: false, invalid_refresh_token in a 200 body",
      step: answer(200, { ok: false, error: "invalid_refresh_token" }),
      reason: undefined,
      providerCode: "invalid_refresh_token",
      remedy: "the app must be installed again"
    }
  ],
  errors: [
    { name: "ok: false, invalid_client_id", step: answer(200, { ok: false, error: "invalid_client_id" }), tag: "InvalidClient" },
    { name: "ok: false, bad_client_secret", step: answer(200, { ok: false, error: "bad_client_secret" }), tag: "InvalidClient" },
    { name: "ok: false, ratelimited", step: answer(200, { ok: false, error: "ratelimited" }), tag: "RateLimited" },
    { name: "ok: false, internal_error", step: answer(200, { ok: false, error: "internal_error" }), tag: "ServerError" },
    { name: "ok: false with a code the profile does not list: the server's refusal", step: answer(200, { ok: false, error: "team_added_to_org" }), tag: "InvalidRequest" }
  ]
})
