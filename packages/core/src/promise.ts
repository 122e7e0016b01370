/**
 * The Promise facade as its own entry point, for Node code that does not use Effect: `createTokenManager` and the
 * error classes its promises reject with. Published as one self-contained file (Effect inlined, built by
 * `scripts/bundle.mjs`) so that importing it costs about as much as importing google-auth-library, instead of loading
 * Effect's hundreds of modules one by one. An application that is written with Effect, or that passes Effect values to
 * the manager (a store `Layer`, a retry `Schedule`), imports `TokenManager` from `@renew/core` instead, so that the
 * engine and the application share one copy of Effect.
 *
 * @since 0.1.0
 */
export * from "./TokenManager.js"
/**
 * The error classes of this entry point's copy of the engine (`error instanceof RefreshError.InvalidGrant`); `_tag`
 * works with either copy.
 *
 * @since 0.1.0
 */
export * as RefreshError from "./RefreshError.js"
