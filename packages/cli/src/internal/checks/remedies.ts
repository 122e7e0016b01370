/**
 * Remedies by cause. They live here, not in Doctor.ts, because the checks need them and Doctor.ts imports the
 * checks; Doctor.ts publishes `remedyFor`.
 *
 * @internal
 */
import type { RefreshError } from "@renew/core"

/** Remedies shared by several checks, so each cause reads the same wherever it is found. @internal */
export const Remedies = {
  reauthorize:
    "The user must authorize again (run your authorization-code flow) and the new grant must be stored; no retry can revive this refresh token. If this keeps happening, check the server's refresh-token lifetime / idle timeout, and that only one process (or one shared store) refreshes this grant: with rotation, a refresh token is single-use.",
  clientCredentials:
    "Check --client-id (is this client registered on this server? an unknown client id gets the same answer as a wrong secret) and the client secret (rotated? copied with a trailing newline?), and the auth method (--auth-method client_secret_basic or client_secret_post, as registered for the client). The user's grants are untouched: fix the credentials, not the grants.",
  scope:
    "Request the granted scope or a subset of it (--scope, or the `scope` option of your TokenEndpoint), or leave scope out so the server keeps the granted one. A wider scope needs a new authorization by the user that asks for it."
} as const

/** The remedy for a refresh failure, by its tag (published as `Doctor.remedyFor`). @internal */
export const remedyFor = (error: RefreshError.RefreshError | RefreshError.ConfigurationError): string => {
  switch (error._tag) {
    case "InvalidGrant":
      return Remedies.reauthorize
    case "InvalidClient":
      return Remedies.clientCredentials
    case "UnauthorizedClient":
      return "Enable the refresh_token grant type for this client on the authorization server (and issue refresh tokens to it, e.g. with the offline_access scope)."
    case "InvalidScope":
      return Remedies.scope
    case "InvalidRequest":
    case "UnsupportedGrantType":
      return "A configuration or server problem: check the token endpoint URL and the client's auth method; the server's description says what it did not accept."
    case "RateLimited":
      return "The server is throttling this client: Renew waits for Retry-After. Look for refresh loops (many processes without a shared store, tokens refreshed on every call) and reduce refresh traffic."
    case "ServerError":
      return "The authorization server (or a proxy in front of it) is failing. Renew retries 5xx with backoff and serves still-valid tokens meanwhile; if it persists, check the server's status and logs."
    case "NetworkError":
      return "Check DNS, routing, firewalls and TLS to the token endpoint host (the dns, tcp and tls checks above narrow it down)."
    case "Timeout":
      return "The server did not answer in time: check its health, or raise the per-attempt timeout (--timeout here, `timeout` in TokenEndpoint options)."
    case "MalformedResponse":
      return "The server answered 2xx without a valid token response: check the token endpoint URL (a login page or proxy answers HTML) and the server's logs."
    case "NoRefreshToken":
      return "Authorize again asking for offline access (e.g. the offline_access scope, or access_type=offline on Google) so the server issues a refresh token."
    case "GrantNotFound":
      return "Check --key and --store; `renew inspect --store <file>` lists the stored keys."
    case "StoreError":
    case "LockTimeout":
    case "StaleWrite":
      return "A storage problem, not an authorization one: see the message; `renew inspect --store <file>` shows the grant's state."
    case "EngineClosed":
      return "The engine was shut down while the command ran; run it again."
    case "ConfigurationError":
      return "Fix the option named above."
  }
}
