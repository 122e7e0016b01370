/**
 * The package's version, for the OpenTelemetry instrumentation scope (`@renew/core` + version). A test keeps it equal
 * to package.json's: reading package.json at run time breaks once the package is bundled.
 *
 * @internal
 */
export const VERSION = "0.1.0"

/** @internal */
export const SCOPE_NAME = "@renew/core"
