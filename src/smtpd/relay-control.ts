/**
 * Relay control: who may send where. A client inside trusted_networks may relay to any domain;
 * everybody else only to the internal domains (Postfix: permit_mynetworks,
 * reject_unauth_destination, allow_untrusted_routing = no).
 *
 * Domain matching is exact and case-insensitive, on the ASCII (A-label) form: a subdomain of an
 * internal domain is NOT internal unless it is listed itself. This is Postfix's relay_domains
 * behaviour with parent_domain_matches_subdomains unset; matching subdomains implicitly would
 * turn every forgotten DNS name below an internal domain into an open relay path.
 */
import { canonicalDomain, parseAddress } from '../core/index.js';
import ipaddr from 'ipaddr.js';

type Network = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A list of CIDR networks (trusted_networks), matched against client IPs. */
export class NetworkList {
  private readonly networks: Network[];

  /** Throws on a string that is not an IP address or CIDR network. */
  constructor(cidrs: readonly string[]) {
    this.networks = cidrs.map(parseNetwork);
  }

  /** True when `ip` lies in one of the networks. IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
  contains(ip: string): boolean {
    if (!ipaddr.isValid(ip)) return false;
    // process() turns ::ffff:10.1.2.3 into 10.1.2.3, as a dual-stack listener reports IPv4 peers.
    const addr = ipaddr.process(ip);
    return this.networks.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
  }
}

function parseNetwork(spec: string): Network {
  const s = spec.trim();
  let net: Network;
  try {
    if (s.includes('/')) net = ipaddr.parseCIDR(s);
    else {
      const a = ipaddr.parse(s);
      net = [a, a.kind() === 'ipv4' ? 32 : 128];
    }
  } catch {
    throw new Error(`trusted_networks: ${JSON.stringify(spec)} is not an IP address or CIDR network`);
  }
  const [addr, bits] = net;
  // "::ffff:10.0.0.0/104" means 10.0.0.0/8; clients are matched in their IPv4 form.
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return net;
}

/** The canonical (A-label, lower-case) form of a domain, or null: see core/address.ts. */
export const asciiDomain = canonicalDomain;

export interface RecipientPolicy {
  /** The client is in trusted_networks. */
  trusted: boolean;
  /** Internal domains, in canonicalDomain() form. */
  internalDomains: ReadonlySet<string>;
  /** Where the domain-less "postmaster" recipient goes (RFC 5321 4.5.1). */
  postmasterDomain: string;
}

export type RecipientVerdict =
  | { ok: true; address: string; original?: string }
  | {
      ok: false;
      /**
       * relay: external domain; routing: %, ! or @ in the local part; literal: [ip] domain;
       * syntax: not local@domain; utf8: non-ASCII without SMTPUTF8; canonical: no canonical form
       * (invisible characters, an invalid IDN, a malformed local part — `detail` says which).
       */
      reason: 'relay' | 'routing' | 'literal' | 'syntax' | 'utf8' | 'canonical';
      detail?: string;
    };

/**
 * Decide on one RCPT TO address as path.ts parsed it: exactly one "@" (it refuses more with
 * 501), a source route ("@a,@b:") already stripped (RFC 5321 says to ignore it; what remains is
 * what we judge), the domain as the client wrote it (A-label or, with SMTPUTF8, Unicode).
 *
 * The address is canonicalised first (core/address.ts) and every decision is taken on that one
 * form, which is also the one stored: an address that reaches an internal domain only after
 * Unicode mapping is internal in every later stage too, and one with no canonical form (a soft
 * hyphen in the domain, a fake A-label) is refused here rather than read two ways later.
 *
 * Untrusted clients must not name routes the gateway would follow on their behalf: the old
 * percent hack (user%remote@ours), UUCP bang paths (remote!user@ours) and quoted local parts
 * that hide an "@" ("user@remote"@ours) are refused even when the final domain is internal,
 * and so are address literals (user@[192.0.2.1]), which name a host, not one of our domains.
 */
export function checkRecipient(address: string, policy: RecipientPolicy, smtputf8: boolean): RecipientVerdict {
  if (address.toLowerCase() === 'postmaster') {
    // The one address that must be accepted without a domain; it means our postmaster.
    return { ok: true, address: `postmaster@${policy.postmasterDomain}` };
  }
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return { ok: false, reason: 'syntax' };
  const local = address.slice(0, at);
  if (address[at + 1] === '[') {
    if (!policy.trusted) return { ok: false, reason: 'literal' };
    return { ok: true, address };
  }
  if (!policy.trusted && /[%!@]/.test(local)) return { ok: false, reason: 'routing' };
  const c = parseAddress(address, { utf8: smtputf8 });
  if (!c.ok) return c.problem === 'utf8' ? { ok: false, reason: 'utf8' } : { ok: false, reason: 'canonical', detail: c.detail };
  if (!policy.trusted && !policy.internalDomains.has(c.domain)) return { ok: false, reason: 'relay' };
  // The original is kept for display only where it says more than letter case.
  return c.address.toLowerCase() === address.toLowerCase() ? { ok: true, address: c.address } : { ok: true, address: c.address, original: address };
}
