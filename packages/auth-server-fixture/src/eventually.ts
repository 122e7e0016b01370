/**
 * Waiting for a condition instead of sleeping for a guessed time: how a test stays green on a loaded machine. The
 * deadline is generous (it only bounds a test that would otherwise hang); nothing may be asserted about how long
 * the wait took. Here because the tests of this server wait for its state (`untilPast(server.expiryOf(token))`);
 * any test may use them.
 */

export interface EventuallyOptions {
  /** default 20 000: far beyond any quiet-machine wait, still inside vitest's 30 s test timeout */
  readonly timeoutMs?: number
  /** default 25 */
  readonly intervalMs?: number
}

/**
 * Resolves with the first truthy value `probe` returns (a thrown error counts as "not yet"); rejects after
 * `timeoutMs` saying what was awaited and the last error seen.
 */
export const eventually = async <A>(
  what: string,
  probe: () => A | undefined | null | false | Promise<A | undefined | null | false>,
  options: EventuallyOptions = {}
): Promise<A> => {
  const timeoutMs = options.timeoutMs ?? 20_000
  const intervalMs = options.intervalMs ?? 25
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== null && value !== false) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? "" : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Resolves once the wall clock has passed `epochMillis` (a server's recorded expiry, say). */
export const untilPast = (epochMillis: number): Promise<void> =>
  eventually(`the clock to pass ${new Date(epochMillis).toISOString()}`, () => Date.now() > epochMillis, {
    timeoutMs: Math.max(0, epochMillis - Date.now()) + 20_000
  }).then(() => undefined)
