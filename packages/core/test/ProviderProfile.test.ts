/**
 * Applying a provider profile: URL templates, the endpoint options it produces, the Promise facade, and the catalogue.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { ProviderProfile, Providers, RefreshError, TokenEndpoint, TokenManager } from "@renew/core"
import { startScriptedTokenEndpoint } from "@renew/scripted-endpoint-fixture"
import { Duration, Effect, Either, Redacted } from "effect"
import { withReason } from "../src/internal/failurePolicy.js"
import { CLIENT_ID, CLIENT_SECRET } from "./support/harness.js"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

describe("ProviderProfile", () => {
  it("fills URL templates from the client config, then from the profile's defaults", () => {
    assert.strictEqual(
      ProviderProfile.resolveUrl(Providers.microsoft, Providers.microsoft.tokenUrl.value, { tenant: "contoso.onmicrosoft.com" }),
      "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert.strictEqual(
      ProviderProfile.resolveUrl(Providers.microsoft, Providers.microsoft.tokenUrl.value),
      "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    )
    assert.strictEqual(
      ProviderProfile.resolveUrl(Providers.keycloak, Providers.keycloak.tokenUrl.value, { host: "sso.example.com:8443/auth", realm: "acme" }),
      "https://sso.example.com:8443/auth/realms/acme/protocol/openid-connect/token"
    )
  })

  it("refuses a missing parameter, or a value that would move the URL elsewhere, naming what it needs", () => {
    const missing = ProviderProfile.resolveUrl(Providers.okta, Providers.okta.tokenUrl.value)
    assert.instanceOf(missing, RefreshError.ConfigurationError)
    assert.include((missing as RefreshError.ConfigurationError).message, "domain (the Okta domain")
    const moved = ProviderProfile.resolveUrl(Providers.okta, Providers.okta.tokenUrl.value, { domain: "evil.example@okta.com" })
    assert.instanceOf(moved, RefreshError.ConfigurationError)
  })

  it.effect("endpoint options carry the profile; introspection only when asked for", () =>
    Effect.gen(function*() {
      const config = { clientId: "c", clientSecret: Redacted.make("s"), params: { domain: "example.okta.com" } }
      const plain = yield* ProviderProfile.endpointOptions(Providers.okta, config)
      assert.strictEqual(plain.url, "https://example.okta.com/oauth2/default/v1/token")
      assert.isUndefined(plain.introspectionUrl)
      assert.strictEqual(plain.profile, Providers.okta)
      const introspecting = yield* ProviderProfile.endpointOptions(Providers.okta, { ...config, introspect: true })
      assert.strictEqual(introspecting.introspectionUrl, "https://example.okta.com/oauth2/default/v1/introspect")
      const failed = yield* Effect.either(ProviderProfile.endpointOptions(Providers.okta, { clientId: "c" }))
      assert.isTrue(Either.isLeft(failed) && failed.left._tag === "ConfigurationError")
    }))

  it("selects profiles by name; every shipped profile is valid and named uniquely", () => {
    assert.strictEqual(Providers.byName("slack"), Providers.slack)
    assert.isUndefined(Providers.byName("nope"))
    assert.isAtLeast(Providers.all.length, 13)
    assert.strictEqual(new Set(Providers.all.map((p) => p.name)).size, Providers.all.length)
    for (const profile of Providers.all) assert.deepStrictEqual(ProviderProfile.problems(profile), [], profile.name)
  })

  it("finds an unsourced fact and an undeclared template parameter", () => {
    const bad = ProviderProfile.make({
      name: "Bad Name",
      title: "Bad",
      tokenUrl: { value: "https://{host}/token", source: "docs somewhere" },
      rotation: { value: "always", source: "" }
    })
    const found = ProviderProfile.problems(bad)
    assert.isTrue(found.some((p) => p.includes("name")))
    assert.isTrue(found.some((p) => p.includes("tokenUrl: source")))
    assert.isTrue(found.some((p) => p.includes("rotation")))
    assert.isTrue(found.some((p) => p.includes("{host}")))
  })

  it("a reason refined later (introspection, a lost rotation) keeps what the provider said", () => {
    const google = new RefreshError.InvalidGrant({
      status: 400,
      oauthError: "invalid_grant",
      provider: "Google",
      providerCode: "x",
      remedy: "Google's remedy."
    })
    const revoked = withReason(google, "revoked")
    assert.strictEqual(revoked.reason, "revoked")
    assert.strictEqual(revoked.provider, "Google")
    assert.strictEqual(revoked.providerCode, "x")
    assert.include(revoked.message, "Google's remedy.")
    // A lost rotation is Renew's cause, not the provider's: its remedy is not the provider's.
    const lost = withReason(google, "rotation_lost", "timeout")
    assert.isUndefined(lost.remedy)
    assert.include(lost.message, "timed out after it was sent")
  })

  it("keep-alive comes from the documented idle expiry", () => {
    assert.strictEqual(Duration.toSeconds(ProviderProfile.keepAlive(Providers.xero)!), 30 * 24 * 3600)
    assert.isUndefined(ProviderProfile.keepAlive(Providers.github))
  })
})

describe("ProviderProfile with the Promise facade", () => {
  const setup = async (options: Partial<TokenManager.TokenManagerOptions>) => {
    const endpoint = await startScriptedTokenEndpoint({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET })
    const tokens = TokenManager.createTokenManager({
      ...ProviderProfile.managerOptions(Providers.slack),
      tokenEndpoint: endpoint.url,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      ...options
    })
    cleanups.push(() => tokens.dispose(), () => endpoint.close())
    return { endpoint, tokens }
  }

  it("managerOptions resolves the token URL and carries the profile", () => {
    const options = ProviderProfile.managerOptions(Providers.microsoft, { params: { tenant: "organizations" } })
    assert.strictEqual(options.tokenEndpoint, "https://login.microsoftonline.com/organizations/oauth2/v2.0/token")
    assert.strictEqual(options.profile, Providers.microsoft)
    assert.throws(() => ProviderProfile.managerOptions(Providers.keycloak), /realm/)
  })

  it("reads the provider's dialect: Slack's ok:false in a 200 is a typed InvalidGrant with Slack's remedy", async () => {
    const { endpoint, tokens } = await setup({})
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    endpoint.script({ kind: "respond", status: 200, body: { ok: false, error: "invalid_refresh_token" } })
    const error = await tokens.getAccessToken("u1").then(() => undefined, (e: unknown) => e)
    assert.instanceOf(error, RefreshError.InvalidGrant)
    assert.strictEqual((error as RefreshError.InvalidGrant).providerCode, "invalid_refresh_token")
    assert.include((error as RefreshError.InvalidGrant).message, "installed again")
  })

  it("accepts Slack's token_type bot, and sends Basic client authentication", async () => {
    const { endpoint, tokens } = await setup({})
    await tokens.setGrant("u1", { accessToken: "at_old", refreshToken: endpoint.mintRefreshToken(), expiresIn: 0 })
    endpoint.script({ kind: "issue", extra: { ok: true, token_type: "bot" } })
    assert.strictEqual(await tokens.getAccessToken("u1"), endpoint.lastIssued()!.accessToken)
    assert.match(String(endpoint.requests.at(-1)!.headers.authorization), /^Basic /)
  })

  it.effect("the profile's documented lifetime is the endpoint's; an explicit one wins", () =>
    Effect.gen(function*() {
      const make = (extra: Partial<TokenEndpoint.TokenEndpointOptions>) =>
        Effect.flatMap(
          ProviderProfile.endpointOptions(Providers.slack, { clientId: "c", clientSecret: Redacted.make("s"), ...extra }),
          TokenEndpoint.make
        ).pipe(Effect.provide(FetchHttpClient.layer))
      assert.strictEqual((yield* make({})).defaultLifetimeMillis, 43_200_000)
      assert.strictEqual((yield* make({ defaultLifetime: "60 seconds" })).defaultLifetimeMillis, 60_000)
      assert.strictEqual((yield* make({})).authMethod, "client_secret_basic")
      const github = yield* Effect.flatMap(
        ProviderProfile.endpointOptions(Providers.github, { clientId: "c", clientSecret: Redacted.make("s") }),
        TokenEndpoint.make
      ).pipe(Effect.provide(FetchHttpClient.layer))
      assert.strictEqual(github.authMethod, "client_secret_post", "the profile's documented auth method")
    }))
})
