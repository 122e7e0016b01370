/**
 * Salesforce (connected apps and external client apps).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const REFRESH =
  "https://developer.salesforce.com/docs/atlas.ja-jp.214.0.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm"
const HELP = "https://help.salesforce.com/apex/HTViewHelpDoc?id=remoteaccess_oauth_refresh_token_flow.htm&language=en_US"
const ERRORS = "https://salesforcedictionary.com/errors/invalid-oauth-grant"

/** @since 0.3.0 */
export const salesforce = make({
  name: "salesforce",
  title: "Salesforce",
  tokenUrl: { value: "https://{instance}/services/oauth2/token", source: REFRESH },
  introspectionUrl: {
    value: "https://{instance}/services/oauth2/introspect",
    source: "https://nango.dev/blog/salesforce-get-access-token-expires-at"
  },
  params: {
    instance: {
      description: "login.salesforce.com, test.salesforce.com for sandboxes, or the org's My Domain host",
      default: "login.salesforce.com"
    }
  },
  rotation: {
    value: "optional",
    source: HELP,
    note: "off unless refresh token rotation is enabled on the app; then the previous token is invalidated"
  },
  accessTokenLifetime: {
    sentAsExpiresIn: false,
    source: "https://nango.dev/blog/salesforce-get-access-token-expires-at",
    note: "no expires_in: the app's session timeout decides; set defaultLifetime to it"
  },
  grantRules: [
    {
      error: "invalid_grant",
      descriptionIncludes: "expired access/refresh token",
      reason: "expired",
      remedy: "The refresh token expired under the app's refresh token policy, or an administrator revoked it: the user must authorize again.",
      source: ERRORS
    },
    { error: "invalid_grant", descriptionIncludes: "user hasn't approved this consumer", reason: "consent_revoked", source: ERRORS },
    { error: "invalid_grant", descriptionIncludes: "user is locked", reason: "user_inactive", source: ERRORS }
  ],
  notes: [
    {
      value: "at most 5 grants per user per connected app: a sixth revokes the oldest",
      source: "https://help.merge.dev/en/articles/9077062-debugging-salesforce-accounts-with-invalid_grant-errors"
    }
  ]
})
