/**
 * A provider profile's dialect, as the classifier applies it: where errors are in a body, what non-RFC error codes
 * mean, and which codes or descriptions tell why a refresh token was refused.
 *
 * @internal
 */
import type { GrantRule, ProviderProfile } from "../ProviderProfile.js"
import * as Errors from "../RefreshError.js"

/** The first of the profile's rules that matches this `InvalidGrant`. @internal */
export const grantRuleFor = (profile: ProviderProfile, error: Errors.InvalidGrant): GrantRule | undefined =>
  profile.grantRules?.find((rule) =>
    (rule.error === undefined || rule.error === error.oauthError) &&
    (rule.descriptionIncludes === undefined ||
      (error.errorDescription !== undefined && error.errorDescription.includes(rule.descriptionIncludes)))
  )

/**
 * An `InvalidGrant` as the provider explains it: its reason, its code and its remedy when a rule matches, and the
 * provider's title either way.
 *
 * @internal
 */
export const explainGrant = (profile: ProviderProfile | undefined, error: Errors.InvalidGrant): Errors.InvalidGrant => {
  if (profile === undefined) return error
  const rule = grantRuleFor(profile, error)
  return new Errors.InvalidGrant({
    ...(error.status !== undefined ? { status: error.status } : {}),
    ...(error.oauthError !== undefined ? { oauthError: error.oauthError } : {}),
    ...(error.errorDescription !== undefined ? { errorDescription: error.errorDescription } : {}),
    ...(error.errorUri !== undefined ? { errorUri: error.errorUri } : {}),
    provider: profile.title,
    ...(rule?.reason !== undefined ? { reason: rule.reason } : {}),
    ...(rule?.code !== undefined ? { providerCode: rule.code } : {}),
    ...(rule?.remedy !== undefined ? { remedy: rule.remedy } : {})
  })
}

/** The family a provider's own error code stands for, if its profile lists it. @internal */
export const familyOf = (profile: ProviderProfile | undefined, code: string) =>
  profile?.errorCodes?.find((entry) => entry.code === code)?.means
