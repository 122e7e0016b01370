/**
 * Network probes below HTTP: DNS resolution, TCP connect and the TLS handshake, with Node's own modules so each
 * layer's failure is seen with its own error code (an HTTP client folds them all into "fetch failed").
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Dns from "node:dns"
import * as Net from "node:net"
import * as Tls from "node:tls"

/** @internal */
export type DnsResult =
  | { readonly _tag: "Literal"; readonly address: string }
  | { readonly _tag: "Resolved"; readonly addresses: ReadonlyArray<string>; readonly millis: number }
  | { readonly _tag: "Failed"; readonly code: string; readonly millis: number }

/** Hostname as `URL.hostname` gives it (`[::1]` for IPv6) → the bare address. */
const bare = (hostname: string): string => hostname.replace(/^\[(.*)\]$/, "$1")

/** @internal */
export const resolve = (hostname: string, timeoutMillis: number): Effect.Effect<DnsResult> => {
  const host = bare(hostname)
  if (Net.isIP(host) !== 0) return Effect.succeed({ _tag: "Literal", address: host })
  const started = Date.now()
  return Effect.async<DnsResult>((resume) => {
    Dns.lookup(host, { all: true, verbatim: true }, (error, addresses) => {
      const millis = Date.now() - started
      if (error !== null) resume(Effect.succeed({ _tag: "Failed", code: error.code ?? error.message, millis }))
      else if (addresses.length === 0) resume(Effect.succeed({ _tag: "Failed", code: "ENODATA", millis }))
      else resume(Effect.succeed({ _tag: "Resolved", addresses: addresses.map((a) => a.address), millis }))
    })
  }).pipe(
    Effect.timeoutTo({
      duration: timeoutMillis,
      onTimeout: (): DnsResult => ({ _tag: "Failed", code: "ETIMEOUT", millis: timeoutMillis }),
      onSuccess: (result): DnsResult => result
    })
  )
}

/** @internal */
export type TcpResult =
  | { readonly _tag: "Connected"; readonly address: string; readonly millis: number }
  | {
    readonly _tag: "Failed"
    /** Per address tried: its error code. */
    readonly attempts: ReadonlyArray<{ readonly address: string; readonly code: string }>
  }

const connectOnce = (address: string, port: number, timeoutMillis: number) =>
  Effect.async<{ readonly ok: true; readonly millis: number } | { readonly ok: false; readonly code: string }>(
    (resume) => {
      const started = Date.now()
      const socket = Net.connect({ host: address, port })
      const timer = setTimeout(() => {
        socket.destroy()
        resume(Effect.succeed({ ok: false, code: "ETIMEDOUT" }))
      }, timeoutMillis)
      socket.once("connect", () => {
        clearTimeout(timer)
        socket.destroy()
        resume(Effect.succeed({ ok: true, millis: Date.now() - started }))
      })
      socket.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        socket.destroy()
        resume(Effect.succeed({ ok: false, code: error.code ?? error.message }))
      })
      return Effect.sync(() => {
        clearTimeout(timer)
        socket.destroy()
      })
    }
  )

/** Tries each address in turn until one accepts a connection. @internal */
export const connect = (
  addresses: ReadonlyArray<string>,
  port: number,
  timeoutMillis: number
): Effect.Effect<TcpResult> =>
  Effect.gen(function*() {
    const attempts: Array<{ address: string; code: string }> = []
    for (const address of addresses) {
      const result = yield* connectOnce(address, port, timeoutMillis)
      if (result.ok) return { _tag: "Connected", address, millis: result.millis } as const
      attempts.push({ address, code: result.code })
    }
    return { _tag: "Failed", attempts } as const
  })

/** @internal */
export interface Certificate {
  readonly subject: string
  readonly issuer: string
  readonly validFrom: number
  readonly validTo: number
  readonly altNames: string | undefined
}

/** @internal */
export type TlsResult =
  | {
    readonly _tag: "Handshake"
    readonly protocol: string | null
    /** Whether Node trusts the chain and the name (what an HTTPS request would require). */
    readonly authorized: boolean
    /** Node's verification error code when not authorized (e.g. DEPTH_ZERO_SELF_SIGNED_CERT). */
    readonly authorizationError: string | undefined
    readonly certificate: Certificate | undefined
    readonly millis: number
  }
  | { readonly _tag: "Failed"; readonly code: string; readonly message: string }

const distinguishedName = (name: Record<string, unknown> | undefined): string => {
  if (name === undefined || name === null) return "(none)"
  const parts = ["CN", "O", "OU"].flatMap((field) => {
    const value = name[field]
    return value === undefined ? [] : [`${field}=${Array.isArray(value) ? value.join("+") : String(value)}`]
  })
  return parts.length === 0 ? "(none)" : parts.join(", ")
}

/**
 * A TLS handshake that does not abort on an untrusted certificate, so the certificate can still be described; the
 * verdict is in `authorized` / `authorizationError`, exactly as an HTTPS request would judge it.
 *
 * @internal
 */
export const handshake = (options: {
  readonly address: string
  readonly port: number
  /** The URL's hostname: SNI and the name the certificate must match. */
  readonly hostname: string
  readonly ca?: ReadonlyArray<string> | undefined
  readonly timeoutMillis: number
}): Effect.Effect<TlsResult> =>
  Effect.async<TlsResult>((resume) => {
    const started = Date.now()
    const host = bare(options.hostname)
    const socket = Tls.connect({
      host: options.address,
      port: options.port,
      // SNI must not be an IP address; the identity check then uses `host`, which is the literal itself.
      ...(Net.isIP(host) === 0 ? { servername: host } : {}),
      // The identity check must be against the URL's hostname even though we connect to a resolved address.
      checkServerIdentity: (_name, cert) => Tls.checkServerIdentity(host, cert),
      rejectUnauthorized: false,
      ...(options.ca !== undefined ? { ca: [...options.ca] } : {})
    })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed({ _tag: "Failed", code: "ETIMEDOUT", message: "no TLS handshake within the timeout" }))
    }, options.timeoutMillis)
    socket.once("secureConnect", () => {
      clearTimeout(timer)
      const peer = socket.getPeerCertificate()
      const certificate: Certificate | undefined = peer !== undefined && peer !== null && "valid_to" in peer &&
          typeof peer.valid_to === "string"
        ? {
          subject: distinguishedName(peer.subject as unknown as Record<string, unknown>),
          issuer: distinguishedName(peer.issuer as unknown as Record<string, unknown>),
          validFrom: Date.parse(peer.valid_from),
          validTo: Date.parse(peer.valid_to),
          altNames: peer.subjectaltname
        }
        : undefined
      const authorizationError = socket.authorizationError
      const result: TlsResult = {
        _tag: "Handshake",
        protocol: socket.getProtocol(),
        authorized: socket.authorized,
        authorizationError: authorizationError === undefined || authorizationError === null
          ? undefined
          : typeof authorizationError === "string"
          ? authorizationError
          : (authorizationError as { code?: string }).code ?? String(authorizationError),
        certificate,
        millis: Date.now() - started
      }
      socket.destroy()
      resume(Effect.succeed(result))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ _tag: "Failed", code: error.code ?? "ERR_TLS", message: error.message }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })
