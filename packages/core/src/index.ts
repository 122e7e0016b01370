/**
 * @since 0.1.0
 */
export * as BearerClient from "./BearerClient.js"
export * as FailureRateMonitor from "./FailureRateMonitor.js"
export * as OpenTelemetry from "./OpenTelemetry.js"
export * as ProviderProfile from "./ProviderProfile.js"
export * as Providers from "./Providers.js"
export * as RefreshError from "./RefreshError.js"
export * as RefreshEvents from "./RefreshEvents.js"
export * as Refresher from "./Refresher.js"
export * as RefreshScheduler from "./RefreshScheduler.js"
export * as RetryPolicy from "./RetryPolicy.js"
export * as Telemetry from "./Telemetry.js"
export * as Token from "./Token.js"
export * as TokenEndpoint from "./TokenEndpoint.js"
export * as TokenManager from "./TokenManager.js"
export * as TokenStore from "./TokenStore.js"
