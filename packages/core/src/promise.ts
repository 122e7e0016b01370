/**
 * The Promise facade as its own entry point, for Node code that does not use Effect: the same `TokenManager` and
 * `RefreshError` modules as `@renew/core`'s. Published as one self-contained file (Effect inlined, built by
 * `scripts/bundle.mjs`), so that importing it costs about as much as importing google-auth-library, instead of loading
 * Effect's hundreds of modules one by one. An application written with Effect, or one that passes Effect values to the
 * manager (a store `Layer`, a retry `Schedule`), imports from `@renew/core` instead, so that the engine and the
 * application share one copy of Effect.
 *
 * @since 0.1.0
 */

/**
 * `createTokenManager` and its options and events.
 *
 * @since 0.1.0
 */
export * as TokenManager from "./TokenManager.js"

/**
 * The error classes of this entry point's copy of the engine, for `error instanceof RefreshError.InvalidGrant`
 * (`error._tag === "InvalidGrant"` works with either copy).
 *
 * @since 0.1.0
 */
export * as RefreshError from "./RefreshError.js"
