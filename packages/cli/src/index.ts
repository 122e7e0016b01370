/**
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
export * as Doctor from "./Doctor.js"
export * as Inspect from "./Inspect.js"
