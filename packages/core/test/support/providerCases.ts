/**
 * One provider's profile, exercised end to end: a Refresher whose token endpoint is built from the profile
 * (`ProviderProfile.layer`) talks to a scripted loopback endpoint that answers as the provider documents. Each
 * provider's test file is a list of cases: refreshes that succeed (with or without rotation), refusals that must come
 * out as `InvalidGrant` with a reason, a provider code and a remedy, and other errors with their `_tag`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { type ProviderProfile as Profile, ProviderProfile, Refresher, type RefreshError, TokenStore } from "@renew/core"
import type { ScriptedTokenEndpoint, Step } from "@renew/scripted-endpoint-fixture"
import { Effect, Layer, Option, Redacted } from "effect"
import { seenErrors } from "./canary.js"
import { CLIENT_ID, CLIENT_SECRET, scriptedEndpoint } from "./harness.js"

const KEY = "user-1"

/** A canned answer of the scripted endpoint: `status` and a JSON `body`. */
export const answer = (status: number, body: object): Step => ({ kind: "respond", status, body })

export interface SuccessCase {
  readonly name: string
  /** The scripted answer; default: a normal token response (a new refresh token). */
  readonly step: Step
  /** Whether the stored refresh token must be the new one (`true`) or the one presented (`false`). */
  readonly rotates: boolean
  /** Lifetime the stored access token must have, seconds (from `expires_in` or the profile). */
  readonly lifetimeSeconds?: number | undefined
  /** Lifetime the stored refresh token must have, seconds (from the profile's refresh-token member). */
  readonly refreshLifetimeSeconds?: number | undefined
}

export interface InvalidGrantCase {
  readonly name: string
  readonly step: Step
  readonly reason: RefreshError.InvalidGrantReason | undefined
  readonly providerCode?: string | undefined
  /** A part of the message that only the provider's (or the reason's) remedy has. */
  readonly remedy: string
}

export interface ErrorCase {
  readonly name: string
  readonly step: Step
  readonly tag: RefreshError.RefreshError["_tag"]
}

export interface ProviderCases {
  readonly params?: Readonly<Record<string, string>> | undefined
  readonly success: ReadonlyArray<SuccessCase>
  readonly invalidGrant?: ReadonlyArray<InvalidGrantCase> | undefined
  readonly errors?: ReadonlyArray<ErrorCase> | undefined
}

const engine = (profile: Profile.ProviderProfile, url: string) =>
  Refresher.layer({ retry: { maxAttempts: 1 } }).pipe(
    Layer.provide(
      ProviderProfile.layer(profile, { clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET), url })
    ),
    Layer.provide(NodeHttpClient.layerUndici),
    Layer.provideMerge(TokenStore.layerMemory),
    Layer.orDie
  )

/** Runs `use` against a grant whose access token is due, with `step` as the provider's next answer. */
const withGrant = <A>(
  profile: Profile.ProviderProfile,
  step: Step,
  use: (seeded: string, endpoint: ScriptedTokenEndpoint) => Effect.Effect<A, unknown, Refresher.Refresher | TokenStore.TokenStore>
) =>
  Effect.gen(function*() {
    // The profile's own client authentication is what the scripted endpoint checks.
    const endpoint = yield* scriptedEndpoint()
    const seeded = endpoint.mintRefreshToken()
    endpoint.script(step)
    return yield* Effect.gen(function*() {
      const refresher = yield* Refresher.Refresher
      yield* refresher.setGrant(KEY, { accessToken: "at_initial_expired", refreshToken: seeded, expiresIn: 0 })
      return yield* use(seeded, endpoint)
    }).pipe(Effect.provide(engine(profile, endpoint.url)), Effect.orDie)
  })

const stored = Effect.flatMap(TokenStore.TokenStore, (store) => store.get(KEY)).pipe(Effect.map(Option.getOrThrow))

/** The profile's cases as one `describe` block. */
export const describeProvider = (profile: Profile.ProviderProfile, cases: ProviderCases) =>
  describe(`${profile.title} profile`, () => {
    it("is a valid profile: every source an https URL, every template parameter declared", () => {
      assert.deepStrictEqual(ProviderProfile.problems(profile), [])
      // The token URL resolves with the documented parameters (or the profile's defaults).
      const url = ProviderProfile.resolveUrl(profile, profile.tokenUrl.value, cases.params)
      assert.isString(url)
      assert.match(url as string, /^https:\/\/[^{}]+$/)
    })

    for (const c of cases.success) {
      it.scoped(`refresh succeeds: ${c.name}`, () =>
        withGrant(profile, c.step, (seeded) =>
          Effect.gen(function*() {
            const refresher = yield* Refresher.Refresher
            const before = yield* refresher.getAccessToken(KEY)
            const grant = yield* stored
            assert.strictEqual(Redacted.value(before), Redacted.value(grant.accessToken!))
            const refreshToken = Redacted.value(grant.refreshToken!)
            if (c.rotates) assert.notStrictEqual(refreshToken, seeded, "the rotated refresh token is stored")
            else assert.strictEqual(refreshToken, seeded, "without a new refresh token the presented one is kept")
            if (c.lifetimeSeconds !== undefined) {
              const lifetime = (grant.expiresAt - grant.issuedAt) / 1000
              assert.isTrue(
                lifetime <= c.lifetimeSeconds && lifetime >= c.lifetimeSeconds - 2,
                `access token lifetime ${lifetime}s, expected about ${c.lifetimeSeconds}s`
              )
            }
            if (c.refreshLifetimeSeconds !== undefined) {
              assert.isDefined(grant.refreshTokenExpiresAt, "the refresh token's lifetime is read from the answer")
              const lifetime = (grant.refreshTokenExpiresAt! - grant.issuedAt) / 1000
              assert.isTrue(
                Math.abs(lifetime - c.refreshLifetimeSeconds) <= 2,
                `refresh token lifetime ${lifetime}s, expected ${c.refreshLifetimeSeconds}s`
              )
            }
          }).pipe(Effect.orDie)))
    }

    for (const c of cases.invalidGrant ?? []) {
      it.scoped(`invalid grant: ${c.name}`, () =>
        Effect.gen(function*() {
          const seen = seenErrors()
          const error = yield* withGrant(profile, c.step, (_, endpoint) =>
            Effect.gen(function*() {
              const refresher = yield* Refresher.Refresher
              const failed: RefreshError.RefreshError = yield* Effect.flip(refresher.getAccessToken(KEY))
              const grant = yield* stored
              seen.add(failed)
              seen.assertNoSecrets(endpoint)
              return { failed, grant }
            }))
          assert.strictEqual(error.failed._tag, "InvalidGrant", error.failed.message)
          if (error.failed._tag !== "InvalidGrant") return
          assert.strictEqual(error.failed.reason, c.reason)
          assert.strictEqual(error.failed.providerCode, c.providerCode)
          assert.strictEqual(error.failed.provider, profile.title)
          assert.include(error.failed.message, c.remedy)
          assert.include(error.failed.message, "needing re-authorization")
          assert.strictEqual(error.grant.reauthRequired, c.reason ?? "invalid_grant", "the grant is marked with the reason")
        }))
    }

    for (const c of cases.errors ?? []) {
      it.scoped(`error: ${c.name} is ${c.tag}`, () =>
        Effect.gen(function*() {
          const seen = seenErrors()
          const failed = yield* withGrant(profile, c.step, (_, endpoint) =>
            Effect.flip(Effect.flatMap(Refresher.Refresher, (refresher) => refresher.getAccessToken(KEY))).pipe(
              Effect.map((error): RefreshError.RefreshError => error),
              Effect.tap((error) => Effect.sync(() => (seen.add(error), seen.assertNoSecrets(endpoint))))
            ))
          assert.strictEqual(failed._tag, c.tag, failed.message)
        }))
    }
  })
