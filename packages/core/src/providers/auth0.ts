/**
 * Auth0.
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const EXPIRATION = "https://Auth0.com/docs/secure/tokens/refresh-tokens/configure-refresh-token-expiration"
const USE = "https://Auth0.com/docs/secure/tokens/refresh-tokens/use-refresh-tokens"
const CONFIG = "https://auth0.github.io/node-auth0/interfaces/management.Management.ClientRefreshTokenConfiguration.html"

/** @since 0.3.0 */
export const auth0 = make({
  name: "auth0",
  title: "Auth0",
  tokenUrl: { value: "https://{domain}/oauth/token", source: USE },
  authMethod: { value: "client_secret_basic", source: USE },
  params: { domain: { description: "the tenant domain, e.g. example.us.auth0.com, or a custom domain" } },
  rotation: {
    value: "optional",
    source: CONFIG,
    note: "rotation with reuse detection; a reuse interval (leeway, default 0 s) accepts the previous token"
  },
  refreshTokenLifetime: {
    source: EXPIRATION,
    note: "maximum and idle lifetimes are settings of the application"
  }
})
