/**
 * Google (OAuth 2.0 for Google APIs).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const LIBRARY = "https://github.com/googleapis/google-auth-library-nodejs/blob/main/src/auth/oauth2client.ts"
// Google's own "Refresh token expiration" list (developers.google.com/identity/protocols/oauth2), as quoted here.
const EXPIRATION = "https://qiita.com/croquette0212/items/8da7ccaa09abf89d4f51"

/** @since 0.3.0 */
export const google = make({
  name: "google",
  title: "Google",
  tokenUrl: { value: "https://oauth2.googleapis.com/token", source: LIBRARY },
  revocationUrl: { value: "https://oauth2.googleapis.com/revoke", source: LIBRARY },
  rotation: { value: "undocumented", source: "" },
  refreshTokenLifetime: {
    idleSeconds: 180 * 24 * 3600,
    source: EXPIRATION,
    note: "stops working after six months unused; also when the user revokes access or changes a password (Gmail scopes), or past the per-client/per-user token limits"
  },
  grantRules: [
    {
      error: "invalid_grant",
      descriptionIncludes: "Token has been expired or revoked",
      remedy:
        "Google does not say which: the user revoked access, the token went unused for six months, the password changed (Gmail scopes), too many refresh tokens were issued for this user and client, or the app is in testing mode (7-day tokens). The user must authorize again.",
      source: "https://github.com/dolfim/django-gmailapi-backend/issues/9"
    }
  ],
  notes: [
    {
      value: "apps in testing mode get refresh tokens that die after about 7 days",
      source: "https://github.com/levz0r/gmail-tester/issues/73"
    }
  ]
})
