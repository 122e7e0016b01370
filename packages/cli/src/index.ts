/**
 * @since 0.1.0
 */

/**
 * The `renew` command tree: `doctor`, `token`, `inspect`. `run(argv)` parses and runs one command line and returns
 * the process exit code, so it can run in-process (tests capture the `Console`) as well as from `main.ts`.
 *
 * Exit codes:
 * - `renew doctor`: 0 every check PASS or SKIP; 1 some WARN, no FAIL; 2 some FAIL.
 * - `renew token`: 0 the access token was printed; 1 it could not be obtained (the reason is on stderr).
 * - `renew inspect`: 0 listed; 1 the store could not be read.
 * - any command: 64 the command line is invalid (usage is printed on stderr).
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * `renew doctor`: why does refreshing fail? A fixed sequence of checks, from "is the URL sane" down to "does a real
 * refresh work", each PASS / WARN / FAIL / SKIP with the evidence it saw and the remedy for what it found. A check
 * that cannot run because an earlier one failed is SKIP, "blocked by <check>".
 *
 * Nothing here prints a secret: client secrets and tokens stay `Redacted`, the refresh token is shown only as its
 * `Telemetry.hashKey`, and every evidence and remedy string is scrubbed of the known secret values before it leaves.
 *
 * @since 0.1.0
 */
export * as Doctor from "./Doctor.js"

/**
 * `renew inspect`: what a `@renew/store-sqlite` file holds, grant by grant — key, version, expiries, status (active,
 * needs re-auth and why, refresh in flight) and scope. Reads the file read-only and never touches the token columns.
 *
 * @since 0.1.0
 */
export * as Inspect from "./Inspect.js"
