/**
 * Okta (custom or org authorization servers).
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const ROTATION = "https://developer.okta.com/docs/guides/refresh-tokens/refresh-token-rotation/"
const EXPIRATION = "https://support.okta.com/help/s/article/refresh-token-expiration-behavior?language=en_US"

/** @since 0.3.0 */
export const okta = make({
  name: "okta",
  title: "Okta",
  tokenUrl: { value: "https://{domain}/oauth2/{authorizationServerId}/v1/token", source: ROTATION },
  introspectionUrl: { value: "https://{domain}/oauth2/{authorizationServerId}/v1/introspect", source: EXPIRATION },
  params: {
    domain: { description: "the Okta domain, e.g. example.okta.com" },
    authorizationServerId: { description: "the custom authorization server id", default: "default" }
  },
  rotation: {
    value: "optional",
    source: ROTATION,
    note: "rotation with reuse detection (the default for SPAs); a configurable grace period keeps the previous token valid"
  },
  refreshTokenLifetime: {
    source: EXPIRATION,
    note: "org server: 90 days, no idle expiry; custom server: per access policy, with an optional idle expiry"
  },
  notes: [
    {
      value: "the rotation grace period (leeway) defaults to 30 seconds",
      source: "https://github.com/okta/okta-sdk-dotnet/blob/master/docs/OpenIdConnectApplicationSettingsRefreshToken.md"
    }
  ]
})
