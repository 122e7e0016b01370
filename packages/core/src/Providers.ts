/**
 * The provider profiles Renew ships, selected by name. Each lives in its own data file under `providers/`, with a
 * public source next to every fact; adding a provider is one data file (plus its test).
 *
 * @since 0.3.0
 */
import type { ProviderProfile } from "./ProviderProfile.js"
import { atlassian } from "./providers/atlassian.js"
import { auth0 } from "./providers/auth0.js"
import { generic } from "./providers/generic.js"
import { github } from "./providers/github.js"
import { google } from "./providers/google.js"
import { hubspot } from "./providers/hubspot.js"
import { intuit } from "./providers/intuit.js"
import { keycloak } from "./providers/keycloak.js"
import { microsoft } from "./providers/microsoft.js"
import { okta } from "./providers/okta.js"
import { salesforce } from "./providers/salesforce.js"
import { slack } from "./providers/slack.js"
import { xero } from "./providers/xero.js"

export {
  /** @since 0.3.0 */
  atlassian,
  /** @since 0.3.0 */
  auth0,
  /** @since 0.3.0 */
  generic,
  /** @since 0.3.0 */
  github,
  /** @since 0.3.0 */
  google,
  /** @since 0.3.0 */
  hubspot,
  /** @since 0.3.0 */
  intuit,
  /** @since 0.3.0 */
  keycloak,
  /** @since 0.3.0 */
  microsoft,
  /** @since 0.3.0 */
  okta,
  /** @since 0.3.0 */
  salesforce,
  /** @since 0.3.0 */
  slack,
  /** @since 0.3.0 */
  xero
}

/**
 * Every shipped profile, in the README table's order.
 *
 * @since 0.3.0
 * @category profiles
 */
export const all: ReadonlyArray<ProviderProfile> = [
  google,
  microsoft,
  github,
  salesforce,
  slack,
  okta,
  auth0,
  keycloak,
  atlassian,
  hubspot,
  xero,
  intuit,
  generic
]

/**
 * The shipped profile named `name` (`"google"`, `"microsoft"`, ...), if there is one.
 *
 * @since 0.3.0
 * @category profiles
 */
export const byName = (name: string): ProviderProfile | undefined => all.find((profile) => profile.name === name)
