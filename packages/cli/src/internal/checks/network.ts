/**
 * dns, tcp, tls: each host given on the command line is probed once, layer by layer, before any verdict; the three
 * checks are verdicts over those probes, so a failure is reported at the lowest layer that failed. Discovery reuses
 * the probe for a token endpoint host it learns from the metadata.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Probes from "../probes.js"
import { fail, pass, skip, type Verdict, warn } from "./verdict.js"

/** A certificate expiring sooner than this WARNs (published as `Doctor.certificateWarnDays`). @internal */
export const certificateWarnDays = 14

/** @internal */
export interface Target {
  readonly url: URL
  readonly port: number
}

/** @internal */
export const targetOf = (raw: string): Target => {
  const url = new URL(raw)
  return { url, port: url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80 }
}

/** Whether `target`'s host and port are among `targets` (then it was probed already). @internal */
export const isProbed = (targets: ReadonlyArray<Target>, target: Target): boolean =>
  targets.some((t) => t.url.hostname === target.url.hostname && t.port === target.port)

/** What the probes need from config. @internal */
export interface ProbeContext {
  readonly timeoutMillis: number
  readonly extraCa: ReadonlyArray<string> | undefined
}

/** One host's probe, down to the first layer that failed. @internal */
export type HostProbe =
  | { readonly failed: "dns"; readonly evidence: string; readonly remedy: string }
  | { readonly failed: "tcp"; readonly dnsEvidence: string; readonly evidence: string; readonly remedy: string }
  | {
    readonly failed: undefined
    readonly dnsEvidence: string
    readonly tcpEvidence: string
    /** `undefined` for plain http. */
    readonly tls: Probes.TlsResult | undefined
  }

/** @internal */
export interface ProbedHost {
  readonly target: Target
  readonly probe: HostProbe
}

const dnsRemedy = (host: string, code: string): string =>
  code === "ENOTFOUND" || code === "ENODATA"
    ? `The name ${host} does not exist in DNS. Check the URL for typos, and that this machine uses the DNS that knows it (VPN, split-horizon DNS, /etc/resolv.conf, /etc/hosts); \`getent hosts ${host}\` must print an address.`
    : `The DNS resolver did not answer for ${host} (${code}): check that this machine can reach its DNS server (/etc/resolv.conf), then try again.`

const tcpRemedy = (target: Target, code: string): string =>
  code === "ECONNREFUSED"
    ? `Nothing accepts connections on ${target.url.hostname}:${target.port}. Check the port in the URL and that the authorization server is running and listening on that address; a firewall may also reject the connection.`
    : code === "ETIMEDOUT"
    ? `Connections to ${target.url.hostname}:${target.port} get no answer: a firewall or security group is dropping them, or the host is down. If you need a proxy to reach it, note that Node does not use HTTPS_PROXY by itself.`
    : `Check routing and firewalls between this machine and ${target.url.hostname}:${target.port} (${code}).`

const tlsRemedy = (code: string, hostname: string): string => {
  switch (code) {
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
      return "The server's certificate is self-signed or signed by a CA that Node does not trust. Serve a certificate from a trusted CA, or make Node trust your private CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem for your service (--ca-file for renew). Do not set NODE_TLS_REJECT_UNAUTHORIZED=0: it disables the check that keeps tokens from being sent to an impostor."
    case "CERT_HAS_EXPIRED":
      return "The server's certificate has expired: it must be renewed on the server. If it looks valid from elsewhere, check this machine's clock."
    case "CERT_NOT_YET_VALID":
      return "The certificate is not valid yet: this machine's clock is probably behind. Synchronise it (NTP)."
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `The certificate does not cover ${hostname}. Use the host name the certificate is issued for in the URL, or fix the certificate's subjectAltName.`
    default:
      return `The TLS handshake with ${hostname} failed (${code}). If the port serves plain http, use an http:// URL (loopback only) or the server's https port; otherwise check the server's TLS configuration.`
  }
}

/** Resolves, connects and (for https) handshakes, stopping at the first layer that fails. @internal */
export const probeHost = (target: Target, context: ProbeContext): Effect.Effect<HostProbe> =>
  Effect.gen(function*() {
    const host = target.url.hostname
    const dns = yield* Probes.resolve(host, context.timeoutMillis)
    if (dns._tag === "Failed") {
      return { failed: "dns", evidence: `${host} did not resolve: ${dns.code}`, remedy: dnsRemedy(host, dns.code) }
    }
    const addresses = dns._tag === "Literal" ? [dns.address] : dns.addresses
    const dnsEvidence = dns._tag === "Literal"
      ? `${host} is an IP address (no lookup needed)`
      : `${host} → ${addresses.join(", ")} (${dns.millis} ms)`
    const tcp = yield* Probes.connect(addresses, target.port, context.timeoutMillis)
    if (tcp._tag === "Failed") {
      const code = tcp.attempts[0]?.code ?? "ECONNREFUSED"
      return {
        failed: "tcp",
        dnsEvidence,
        evidence: `cannot connect to ${host}:${target.port}: ${tcp.attempts.map((a) => `${a.address} ${a.code}`).join(", ")}`,
        remedy: tcpRemedy(target, code)
      }
    }
    const tcpEvidence = `connected to ${tcp.address}:${target.port} (${tcp.millis} ms)`
    if (target.url.protocol !== "https:") {
      return { failed: undefined, dnsEvidence, tcpEvidence, tls: undefined }
    }
    const tls = yield* Probes.handshake({
      address: tcp.address,
      port: target.port,
      hostname: host,
      ca: context.extraCa,
      timeoutMillis: context.timeoutMillis
    })
    return { failed: undefined, dnsEvidence, tcpEvidence, tls }
  })

/** The TLS verdict on one host: a failed handshake, an untrusted or soon-expiring certificate. @internal */
export const describeTls = (target: Target, tls: Probes.TlsResult, now: number): Verdict => {
  const host = target.url.hostname
  if (tls._tag === "Failed") {
    return fail(
      `TLS handshake with ${host}:${target.port} failed: ${tls.code} (${tls.message})`,
      tlsRemedy(tls.code, host)
    )
  }
  const cert = tls.certificate
  const certText = cert === undefined
    ? "no certificate details"
    : `certificate ${cert.subject}, issued by ${cert.issuer}, valid until ${new Date(cert.validTo).toISOString()} (${
      Math.floor((cert.validTo - now) / 86_400_000)
    } days left)`
  if (!tls.authorized) {
    const code = tls.authorizationError ?? "UNTRUSTED_CERTIFICATE"
    return fail(
      `${host}:${target.port} presented a certificate Node does not accept: ${code}; ${certText}`,
      tlsRemedy(code, host)
    )
  }
  if (cert !== undefined && cert.validTo - now < certificateWarnDays * 86_400_000) {
    return warn(
      `${tls.protocol ?? "TLS"} with ${host}:${target.port}; ${certText}`,
      `Renew the server certificate before ${new Date(cert.validTo).toISOString()}: once it expires every refresh fails with CERT_HAS_EXPIRED.`
    )
  }
  return pass(`${tls.protocol ?? "TLS"} with ${host}:${target.port} in ${tls.millis} ms; ${certText}`)
}

/** What the dns check needs: the URLs given on the command line, and how to probe. @internal */
export interface DnsContext extends ProbeContext {
  readonly urls: ReadonlyArray<string | undefined>
}

/**
 * Probes every host given on the command line (once per host and port), then judges DNS. The probes are its
 * findings: tcp and tls judge them too, and discovery skips the hosts already probed.
 *
 * @internal
 */
export const dns = (context: DnsContext) =>
  Effect.gen(function*() {
    const targets: Array<Target> = []
    for (const raw of context.urls) {
      if (raw === undefined) continue
      const target = targetOf(raw)
      if (!isProbed(targets, target)) targets.push(target)
    }
    const hosts: Array<ProbedHost> = []
    for (const target of targets) hosts.push({ target, probe: yield* probeHost(target, context) })
    return { verdict: layerVerdict(hosts, "dns", (probe) => "dnsEvidence" in probe ? probe.dnsEvidence : ""), found: hosts }
  })

/** @internal */
export const tcp = (hosts: ReadonlyArray<ProbedHost>): Verdict =>
  layerVerdict(hosts, "tcp", (probe) => "tcpEvidence" in probe ? probe.tcpEvidence : "")

/** FAIL with every host that failed at `layer`; else PASS with what each host showed there. */
const layerVerdict = (
  hosts: ReadonlyArray<ProbedHost>,
  layer: "dns" | "tcp",
  passed: (probe: HostProbe) => string
): Verdict => {
  const failed = hosts.flatMap(({ probe }) => probe.failed === layer ? [probe] : [])
  if (failed.length > 0) {
    return fail(failed.map((p) => p.evidence).join("; "), failed.map((p) => p.remedy).join(" "))
  }
  return pass(hosts.map(({ probe }) => passed(probe)).join("; "))
}

/** The worst TLS verdict over the https hosts; SKIP when every host is plain http. @internal */
export const tls = (hosts: ReadonlyArray<ProbedHost>): Verdict => {
  const now = Date.now()
  const withTls = hosts.flatMap(({ probe, target }) =>
    probe.failed === undefined && probe.tls !== undefined ? [{ target, tls: probe.tls }] : []
  )
  if (withTls.length === 0) {
    return skip(
      `${hosts.map((h) => `${h.target.url.hostname}:${h.target.port}`).join(", ")} is plain http on loopback: no TLS to check`
    )
  }
  const verdicts = withTls.map(({ target, tls }) => describeTls(target, tls, now))
  const worst = verdicts.find((v) => v.status === "FAIL") ?? verdicts.find((v) => v.status === "WARN")
  const evidence = verdicts.map((v) => v.evidence).join("; ")
  if (worst !== undefined) {
    return {
      status: worst.status,
      evidence,
      remedy: verdicts.flatMap((v) => v.remedy === null ? [] : [v.remedy]).join(" ")
    }
  }
  return pass(evidence)
}
