/**
 * discovery: the issuer's metadata, when --issuer is given. It establishes the endpoints the later checks talk to
 * (the flags win, the metadata fills in), even when it fails: a metadata problem need not stop the token endpoint
 * checks once an endpoint is known.
 *
 * @internal
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { TokenEndpoint } from "@renew/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { type Discovery, discover } from "../discovery.js"
import { describeTls, isProbed, probeHost, type ProbeContext, type Target, targetOf } from "./network.js"
import { fail, Findings, type Outcome, skip, type Verdict } from "./verdict.js"

/** The endpoints the later checks use, and the metadata requests (clock-skew reads their Date header). @internal */
export interface Endpoints {
  readonly tokenEndpointUrl: string | undefined
  readonly introspectionUrl: string | undefined
  readonly discovery: Discovery | undefined
}

/** @internal */
export interface DiscoveryContext extends ProbeContext {
  readonly issuer: string | undefined
  /** --token-endpoint and --introspection-endpoint, which take precedence over the metadata. */
  readonly tokenEndpoint: string | undefined
  readonly introspectionEndpoint: string | undefined
  readonly clientId: string
  readonly authMethod: TokenEndpoint.AuthMethod
  /** Whether `authMethod` was chosen by default rather than by --auth-method. */
  readonly authMethodIsDefault: boolean
  /** The hosts the network checks probed already. */
  readonly probed: ReadonlyArray<Target>
}

/** The endpoints when the metadata was not read: the flags alone. @internal */
export const fromFlags = (context: Pick<DiscoveryContext, "tokenEndpoint" | "introspectionEndpoint">): Endpoints => ({
  tokenEndpointUrl: context.tokenEndpoint,
  introspectionUrl: context.introspectionEndpoint,
  discovery: undefined
})

const normalise = (s: string) => s.replace(/\/+$/, "")

/** @internal */
export const check = (
  context: DiscoveryContext
): Effect.Effect<Outcome<Endpoints>, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    if (context.issuer === undefined) {
      return {
        verdict: skip(
          "no --issuer: the server's metadata was not checked",
          "Pass --issuer to check that the server supports the refresh_token grant and your auth method."
        ),
        found: fromFlags(context)
      }
    }
    const discovery = yield* discover(context.issuer, context.timeoutMillis)
    let tokenEndpointUrl = context.tokenEndpoint
    let introspectionUrl = context.introspectionEndpoint
    const outcome = (verdict: Verdict): Outcome<Endpoints> => ({
      verdict,
      found: { tokenEndpointUrl, introspectionUrl, discovery }
    })
    if (discovery.found === undefined) {
      return outcome(fail(
        `no authorization server metadata: ${discovery.attempts.map((a) => `${a.url} → ${a.outcome}`).join("; ")}`,
        "Check --issuer: it is the server's issuer identifier (the `iss` of its tokens, e.g. https://auth.example.com/realms/main), without /.well-known. Or pass --token-endpoint (and --introspection-endpoint) directly."
      ))
    }
    const { metadata, url } = discovery.found
    const findings = new Findings()
    findings.notes.push(`metadata from ${url}`)
    if (metadata.issuer !== undefined && normalise(metadata.issuer) !== normalise(context.issuer)) {
      findings.warnings.push({
        note: `the metadata's issuer is ${metadata.issuer}, not ${context.issuer}`,
        remedy: "Use the issuer exactly as the metadata states it (scheme, host, port and path): RFC 8414 clients must reject a mismatch."
      })
    }
    if (metadata.tokenEndpoint === undefined) {
      findings.failures.push({
        note: "the metadata has no token_endpoint",
        remedy: "Pass --token-endpoint; the server's metadata does not say where it is."
      })
    } else {
      findings.notes.push(`token_endpoint ${metadata.tokenEndpoint}`)
      if (context.tokenEndpoint !== undefined && context.tokenEndpoint !== metadata.tokenEndpoint) {
        findings.warnings.push({
          note: `--token-endpoint ${context.tokenEndpoint} differs from the metadata's token_endpoint`,
          remedy: `Use the token_endpoint the server advertises (${metadata.tokenEndpoint}) unless you know why not.`
        })
      }
      const valid = TokenEndpoint.validateOptions({ url: metadata.tokenEndpoint, clientId: context.clientId })
      if (Either.isLeft(valid)) {
        findings.failures.push({
          note: `the advertised token_endpoint is unusable: ${valid.left.detail}`,
          remedy: "The server advertises a token endpoint Renew refuses (plain http on a non-loopback host?): fix the server's issuer/base URL configuration."
        })
      } else {
        tokenEndpointUrl ??= metadata.tokenEndpoint
      }
    }
    if (metadata.grantTypesSupported === undefined) {
      findings.notes.push("grant_types_supported not advertised")
    } else if (metadata.grantTypesSupported.includes("refresh_token")) {
      findings.notes.push("refresh_token is in grant_types_supported")
    } else {
      // Metadata is advisory: the token-endpoint probe says what the server really does.
      findings.warnings.push({
        note: `refresh_token is not in grant_types_supported [${metadata.grantTypesSupported.join(", ")}]`,
        remedy: "The server does not advertise the refresh_token grant: enable it on the authorization server (and for this client)."
      })
    }
    const { authMethod } = context
    const methods = metadata.authMethodsSupported
    if (methods === undefined) {
      findings.notes.push("token_endpoint_auth_methods_supported not advertised (default client_secret_basic)")
      if (authMethod !== "client_secret_basic") {
        findings.warnings.push({
          note: `${authMethod} is not advertised (only the default client_secret_basic is implied)`,
          remedy: "If client authentication fails, try --auth-method client_secret_basic."
        })
      }
    } else if (methods.includes(authMethod)) {
      findings.notes.push(`${authMethod} is in token_endpoint_auth_methods_supported`)
    } else {
      findings.warnings.push({
        note: `${authMethod}${context.authMethodIsDefault ? " (the default)" : ""} is not in token_endpoint_auth_methods_supported [${
          methods.join(", ")
        }]`,
        remedy: `Use an auth method the server supports: --auth-method ${
          methods.find((m) => m === "client_secret_basic" || m === "client_secret_post" || m === "none") ?? methods[0]
        } (and register the client with it).`
      })
    }
    if (metadata.introspectionEndpoint !== undefined) {
      findings.notes.push(`introspection_endpoint ${metadata.introspectionEndpoint}`)
      introspectionUrl ??= metadata.introspectionEndpoint
    }
    // A token endpoint on a host the network checks did not see gets the same probes here.
    const target = tokenEndpointUrl !== undefined ? targetOf(tokenEndpointUrl) : undefined
    if (target !== undefined && !isProbed(context.probed, target)) {
      const probe = yield* probeHost(target, context)
      if (probe.failed !== undefined) {
        findings.failures.push({ note: `token endpoint host: ${probe.evidence}`, remedy: probe.remedy })
      } else if (probe.tls !== undefined) {
        const verdict = describeTls(target, probe.tls, Date.now())
        if (verdict.status === "FAIL") findings.failures.push({ note: verdict.evidence, remedy: verdict.remedy ?? "" })
        else findings.notes.push(`token endpoint host reachable (${verdict.evidence})`)
      } else {
        findings.notes.push(`token endpoint host reachable (${probe.tcpEvidence})`)
      }
    }
    return outcome(findings.verdict())
  })
