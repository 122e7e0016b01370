/**
 * Plain RFC 6749: no quirks beyond the standard. The profile to start from for a provider Renew has none for.
 *
 * @since 0.3.0
 */
import { make } from "../ProviderProfile.js"

const RFC6749 = "https://www.rfc-editor.org/rfc/rfc6749"

/** @since 0.3.0 */
export const generic = make({
  name: "generic",
  title: "Generic RFC 6749",
  tokenUrl: { value: "{tokenUrl}", source: `${RFC6749}#section-3.2` },
  params: { tokenUrl: { description: "the server's token endpoint URL" } },
  authMethod: {
    value: "client_secret_basic",
    source: `${RFC6749}#section-2.3.1`,
    note: "servers MUST support Basic; the body is optional"
  },
  rotation: {
    value: "optional",
    source: `${RFC6749}#section-6`,
    note: "the server MAY issue a new refresh token; the client then discards the old one"
  },
  accessTokenLifetime: {
    sentAsExpiresIn: true,
    source: `${RFC6749}#section-5.1`,
    note: "expires_in is RECOMMENDED; without it the server documents the default (Renew assumes 1 hour)"
  }
})
