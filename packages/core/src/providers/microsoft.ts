/**
 * Microsoft Entra ID (the Microsoft identity platform, v2.0 endpoints).
 *
 * @since 0.3.0
 */
import type { GrantRule } from "../ProviderProfile.js"
import { make } from "../ProviderProfile.js"

const CODES = "https://github.com/MicrosoftDocs/entra-docs/blob/main/docs/identity-platform/reference-error-codes.md"
const REFRESH_TOKENS = "https://learn.microsoft.com/en-nz/entra/identity-platform/refresh-tokens"

// AADSTS codes travel at the start of error_description ("AADSTS700082: The refresh token has expired ...").
const aadsts = (code: string, rule: Omit<GrantRule, "descriptionIncludes" | "code" | "source">): GrantRule => ({
  descriptionIncludes: `AADSTS${code}:`,
  code: `AADSTS${code}`,
  source: CODES,
  ...rule
})

/** @since 0.3.0 */
export const microsoft = make({
  name: "microsoft",
  title: "Microsoft Entra ID",
  tokenUrl: {
    value: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    source: "https://nango.dev/blog/microsoft-oauth-refresh-token-invalid-grant"
  },
  params: {
    tenant: {
      description: "the directory (tenant) id or domain, or organizations, consumers, common",
      default: "common"
    }
  },
  rotation: {
    value: "always",
    source: REFRESH_TOKENS,
    note: "a new refresh token on every use, but the old one is not revoked"
  },
  refreshTokenLifetime: {
    idleSeconds: 90 * 24 * 3600,
    source: "https://learn.microsoft.com/en-us/answers/a/710568",
    note: "90 days (24 hours, not extendable, for single-page apps); AADSTS700082 after 90 days inactive"
  },
  errorCodes: [
    // OpenID Connect's code, sent by Entra when the user must sign in again interactively.
    { code: "interaction_required", means: "InvalidGrant", source: CODES },
    { code: "invalid_resource", means: "InvalidRequest", source: CODES }
  ],
  grantRules: [
    aadsts("700082", { reason: "idle_timeout" }),
    aadsts("70008", { reason: "idle_timeout" }),
    aadsts("700084", {
      reason: "expired",
      remedy: "Refresh tokens of single-page apps live 24 hours and cannot be extended: the user must sign in again."
    }),
    aadsts("50173", {
      reason: "revoked",
      remedy: "The user or an administrator revoked this user's tokens (often after a password reset): the user must sign in again."
    }),
    aadsts("50132", { reason: "password_changed" }),
    aadsts("50133", { reason: "password_changed" }),
    aadsts("50055", {
      reason: "password_changed",
      remedy: "The user's password expired: the user must reset it, then sign in again."
    }),
    aadsts("50144", {
      reason: "password_changed",
      remedy: "The user's Active Directory password expired: it must be reset, then the user signs in again."
    }),
    aadsts("65001", { reason: "consent_revoked" }),
    aadsts("70043", {
      reason: "session_ended",
      remedy: "A Conditional Access sign-in frequency policy ended the session: the user must sign in again."
    }),
    aadsts("50076", { reason: "interaction_required" }),
    aadsts("50079", { reason: "interaction_required" }),
    aadsts("50078", { reason: "interaction_required" }),
    aadsts("53003", {
      reason: "interaction_required",
      remedy: "A Conditional Access policy blocks token issuance: the user (or an administrator) must meet the policy, then the user signs in again."
    }),
    aadsts("50057", { reason: "user_inactive" }),
    aadsts("50053", {
      reason: "user_inactive",
      remedy: "The account is locked (too many failed sign-ins, or a sign-in from a malicious IP address): it must be unlocked, then the user signs in again."
    })
  ]
})
