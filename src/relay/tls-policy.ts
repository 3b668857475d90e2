/**
 * The TLS of each MX host of a recipient domain under the route's level: Postfix's
 * smtp_tls_security_level, with DANE (RFC 7672) and MTA-STS (RFC 8461) decided from DNS and the
 * domain's policy. It only decides; the SMTP session does what it says and judges the
 * certificate (tls-peer.ts). Every "cannot" is a deferral of that host with a reason, never a
 * weaker level: only the cases the RFCs name fall back to `may` (dane without DNSSEC or without
 * TLSA records; sts without a policy or in testing mode).
 */
import type { TlsLevel } from '../config/types.js';
import { dnsFailed, dnsOutcome, tlsPolicyFailed, type Diagnostic } from './diagnostic.js';
import type { StsPolicies } from './mta-sts-cache.js';
import { mxAllowed } from './mta-sts.js';
import type { DnsResolver } from './mx.js';
import { usableTlsa, type PeerCheck } from './tls-peer.js';
import { isIP } from 'node:net';

/** One host's TLS: what the session does, and which published policy asked for it (for reports). */
export interface HostTls {
  tls: 'none' | 'may' | 'encrypt';
  peer?: PeerCheck;
  policy?: 'dane' | 'sts';
}

/** `report`: what the policy in testing mode would have refused (delivered anyway, reported). */
export type HostDecision =
  | { kind: 'use'; use: HostTls; report?: string }
  | { kind: 'skip'; why: Diagnostic; policy: 'dane' | 'sts'; result: string };

/** The decision of a whole domain; `host` is asked per MX host in the plan's order. */
export type DomainTls =
  | { kind: 'hosts'; host: (mxHost: string) => Promise<HostDecision>; policy?: string }
  | { kind: 'deferred'; why: Diagnostic };

export interface TlsPolicyContext {
  resolver: DnsResolver;
  sts: StsPolicies;
}

const fixed = (use: HostTls) => ({ kind: 'hosts' as const, host: async (): Promise<HostDecision> => ({ kind: 'use', use }) });

/**
 * The TLS of a domain's MX hosts. `tlsOptional`: the message's `TLS-Required: No` (RFC 8689 §5)
 * sets the domain's own policies (dane, sts) aside; the levels an admin chose (verify, encrypt)
 * still apply.
 */
export async function domainTls(level: TlsLevel, domain: string, ctx: TlsPolicyContext, tlsOptional = false): Promise<DomainTls> {
  if ((level === 'dane' || level === 'sts') && tlsOptional) return fixed({ tls: 'may' });
  switch (level) {
    case 'none':
    case 'may':
    case 'encrypt':
      return fixed({ tls: level });
    case 'verify':
      return { kind: 'hosts', host: async (h) => ({ kind: 'use', use: { tls: 'encrypt', peer: { kind: 'pkix', name: h, as: 'verified' } } }) };
    case 'dane':
      return daneTls(domain, ctx.resolver);
    case 'sts':
      return stsTls(domain, ctx.sts);
  }
}

/**
 * RFC 7672 §2.2: DANE applies only where the MX RRset is validated (else `may`, as Postfix's dane
 * level); per host, validated usable TLSA records are checked, validated records none of which is
 * usable still demand encryption, no records or unvalidated ones mean `may`, and a lookup that
 * fails defers the host (an attacker could cause the failure to strip DANE).
 */
async function daneTls(domain: string, resolver: DnsResolver): Promise<DomainTls> {
  if (!resolver.resolveMxSecure || !resolver.resolveTlsa) return fixed({ tls: 'may' });
  let secure: boolean;
  try {
    secure = (await resolver.resolveMxSecure(domain)).secure === true;
  } catch (err) {
    const code = errorCode(err);
    // No such domain: the MX plan says so in its own words; here it only means "no DANE".
    if (code === 'ENOTFOUND' || code === 'ENODATA') return fixed({ tls: 'may' });
    return { kind: 'deferred', why: dnsFailed(domain, 'MX', dnsOutcome(code)) };
  }
  if (!secure) return fixed({ tls: 'may' });
  const tlsa = resolver.resolveTlsa.bind(resolver);
  return {
    kind: 'hosts',
    policy: 'dane',
    host: async (host) => {
      if (isIP(host) !== 0) return { kind: 'use', use: { tls: 'may' } }; // an address has no TLSA name
      const name = `_25._tcp.${host}`;
      let answer;
      try {
        answer = await tlsa(name);
      } catch {
        return { kind: 'skip', why: tlsPolicyFailed(`TLSA lookup error for ${host}:25`), policy: 'dane', result: 'tlsa-invalid' };
      }
      const records = Array.isArray(answer?.records) ? answer.records : [];
      if (!answer?.secure || records.length === 0) return { kind: 'use', use: { tls: 'may' } };
      if (usableTlsa(records).length === 0) return { kind: 'use', use: { tls: 'encrypt', policy: 'dane' } };
      return { kind: 'use', use: { tls: 'encrypt', peer: { kind: 'dane', records, name: host }, policy: 'dane' } };
    },
  };
}

/**
 * RFC 8461 §4–5: with a policy in enforce mode only MX hosts it names are used, each with a
 * certificate valid for its name; testing mode delivers as `may` and reports what enforce would
 * have refused; no policy (or mode none) is `may`.
 */
async function stsTls(domain: string, sts: StsPolicies): Promise<DomainTls> {
  const found = await sts.lookup(domain);
  if (found.kind === 'none' || found.policy.mode === 'none') return fixed({ tls: 'may' });
  const { policy } = found;
  const testing = policy.mode === 'testing';
  return {
    kind: 'hosts',
    policy: `sts ${policy.mode} id=${found.id}`,
    host: async (host) => {
      if (!mxAllowed(host, policy.mx)) {
        const why = tlsPolicyFailed(`MX host ${host} does not match the MTA-STS policy of ${domain}`);
        if (testing) return { kind: 'use', use: { tls: 'may', policy: 'sts' }, report: why.text };
        return { kind: 'skip', why, policy: 'sts', result: 'validation-failure' };
      }
      const peer: PeerCheck = { kind: 'pkix', name: host, as: 'sts', ...(testing ? { reportOnly: true } : {}) };
      return { kind: 'use', use: { tls: testing ? 'may' : 'encrypt', peer, policy: 'sts' } };
    },
  };
}

function errorCode(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code.replace(/[^A-Za-z0-9_]/g, '').slice(0, 32) || 'EUNKNOWN' : 'EUNKNOWN';
}
