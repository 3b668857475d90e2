/**
 * relay.mx: the next hops for the `mx` route — RFC 5321 §5.1 (MX order, implicit MX, loop
 * prevention), RFC 7505 (null MX) and §4.1.3 address literals. It only plans: the relay connects to
 * the returned addresses in order. DNS sits behind `DnsResolver` so tests give a fake zone, and
 * every DNS answer is untrusted input: names are re-validated, addresses re-parsed, and reply lines
 * built from them are stripped of anything that could break an SMTP/DSN line.
 */
import { Resolver } from 'node:dns/promises';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { outcomeDiagnostic } from '../core/index.js';
import { dnsFailed, dnsOutcome, dnsText, type Diagnostic } from './diagnostic.js';
import { SecureDns, type SecureAnswer } from './dns-secure.js';
import type { TlsaRecord } from './tls-peer.js';

/**
 * DNS as the relay needs it. The system's (systemResolver) or a fake zone in tests. Errors carry
 * Node's dns error codes (err.code: 'ENODATA', 'ENOTFOUND', 'ESERVFAIL', 'ETIMEOUT',
 * 'ECONNREFUSED', 'EREFUSED', ...). The optional questions serve the TLS levels: without them
 * `sts` finds no policy and `dane` no validated answer, so both act as `may`.
 */
export interface DnsResolver {
  resolveMx(domain: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(host: string): Promise<string[]>;
  resolve6(host: string): Promise<string[]>;
  /** TXT records, each as its strings (MTA-STS's _mta-sts.<domain>). */
  resolveTxt?(name: string): Promise<string[][]>;
  /** TLSA records and the resolver's AD bit; NXDOMAIN/NODATA are no records, failures throw. */
  resolveTlsa?(name: string): Promise<SecureAnswer<TlsaRecord>>;
  /** The MX RRset and its AD bit (DANE applies only when it is validated, RFC 7672 §2.2.1). */
  resolveMxSecure?(domain: string): Promise<SecureAnswer<{ exchange: string; priority: number }>>;
}

export interface MxHostAddress {
  host: string;
  address: string;
  preference: number;
}

/** Why there is no host to try, worded as Postfix words it, with the enhanced status code. */
export type MxPlan =
  | { kind: 'hosts'; targets: MxHostAddress[] } // in the order to try
  | { kind: 'failed'; reply: string; dsn: string } // permanent: bounce ("Domain … does not accept mail (nullMX)", 5.1.10)
  | { kind: 'deferred'; reply: string; dsn: string }; // temporary: retry later ("Host or domain name not found. …", 4.4.3)

export interface MxOptions {
  /** Our own host names (config.hostname …), lower-case: an MX pointing at us must not be used (loop). */
  self: readonly string[];
  /** True for an address that is this gateway (own-addresses.ts): an MX resolving to it is a loop too. */
  isOwnAddress?: (address: string) => boolean;
  /** At most this many addresses in the plan (Postfix's smtp_mx_address_limit: 5). */
  maxAddresses?: number;
  /** Look up AAAA as well as A (default true); IPv4 addresses are tried first within each host. */
  ipv6?: boolean;
  /** For deterministic tests: random in [0,1) used to shuffle MX hosts of equal preference. */
  random?: () => number;
}

const DEFAULT_MAX_ADDRESSES = 5;
/** A hostile zone can publish hundreds of MX records; we never need more than a few to find 5 addresses. */
const MAX_MX_HOSTS = 16;
const MAX_NAME_LENGTH = 253;
/** Letters, digits, hyphen (RFC 1123); underscore tolerated because it occurs in real MX names. */
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The system resolver with sane time-outs (c-ares' defaults can keep a delivery waiting for a
 * minute), and the wire client of dns-secure.ts for the answers that need the AD bit.
 */
export function systemResolver(): DnsResolver {
  const r = new Resolver({ timeout: 5000, tries: 2 });
  const secure = new SecureDns();
  return {
    resolveMx: (d) => r.resolveMx(d),
    resolve4: (h) => r.resolve4(h),
    resolve6: (h) => r.resolve6(h),
    resolveTxt: (n) => r.resolveTxt(n),
    resolveTlsa: (n) => secure.resolveTlsa(n),
    resolveMxSecure: (d) => secure.resolveMxSecure(d),
  };
}

export async function planMx(domain: string, resolver: DnsResolver, opts: MxOptions): Promise<MxPlan> {
  const raw = typeof domain === 'string' ? domain : '';
  if (raw.startsWith('[')) return planLiteral(raw, opts.isOwnAddress);

  const name = normalizeName(raw);
  if (name === undefined) return failed(outcomeDiagnostic('bounced_bad_domain', { what: 'domain name', domain: raw || '(empty domain)' }));

  let records: { exchange: string; priority: number }[];
  try {
    records = await call(() => resolver.resolveMx(name));
  } catch (err) {
    const code = errorCode(err);
    // A domain that does not exist is a bad address (5.1.2), not a routing problem.
    if (code === 'ENOTFOUND') return failed(dnsFailed(name, 'MX', 'not_found', 'bounced_no_domain'));
    if (code !== 'ENODATA') return deferred(dnsFailed(name, 'MX', dnsOutcome(code)));
    records = [];
  }
  const valid = (Array.isArray(records) ? records : []).filter(
    (r) => r !== null && typeof r === 'object' && typeof r.exchange === 'string' && Number.isFinite(r.priority),
  );

  // Node returns "" for the root name; "." is accepted too in case another resolver keeps it.
  const isNull = (r: { exchange: string }): boolean => r.exchange === '' || r.exchange === '.';
  if (valid.length > 0 && valid.every(isNull)) {
    return failed(outcomeDiagnostic('bounced_null_mx', { domain: name }));
  }
  // A null MX beside real ones is a misconfiguration (RFC 7505 §3); the real ones still work.
  const implicit = valid.length === 0;
  const mxs: MxHost[] = implicit
    ? [{ host: name, literal: undefined, invalid: false, preference: 0 }]
    : valid.filter((r) => !isNull(r)).map((r) => toMxHost(r.exchange, r.priority));

  const ordered = dedupeHosts(orderByPreference(mxs, opts.random ?? Math.random));
  const usable = dropSelfAndWorse(ordered, opts.self);
  if (usable.length === 0) return failed(outcomeDiagnostic('bounced_mail_loop', { domain: name }));

  const ipv6 = opts.ipv6 ?? true;
  const looked = dropOwnAddressAndWorse(await Promise.all(usable.slice(0, MAX_MX_HOSTS).map((h) => lookupHost(h, resolver, ipv6))), opts.isOwnAddress);
  if (looked.length === 0) return failed(outcomeDiagnostic('bounced_mail_loop', { domain: name }));

  const limit = addressLimit(opts.maxAddresses);
  const seen = new Set<string>();
  const targets: MxHostAddress[] = [];
  for (const h of looked) {
    for (const address of h.addresses) {
      if (targets.length >= limit) break;
      if (seen.has(address)) continue; // two MX names on one server: one attempt is enough
      seen.add(address);
      targets.push({ host: h.host, address, preference: h.preference });
    }
  }
  if (targets.length > 0) return { kind: 'hosts', targets };

  const temp = looked.find((h) => h.tempError !== undefined);
  // A retry may find an address when any lookup merely failed, so that wins over "no address".
  if (temp) return deferred(dnsFailed(temp.host, 'A', dnsOutcome(temp.tempError!)));
  const first = looked[0]!;
  if (implicit) return failed(dnsFailed(name, 'A', first.nxdomain ? 'not_found' : 'no_data', 'bounced_no_domain'));
  // Postfix too treats "MX host has no address" as temporary: the MX says the domain wants mail.
  const named = usable.find((h) => !h.invalid);
  if (!named) return deferred(dnsText('deferred_mx_no_address', name, 'MX', 'Malformed or unexpected name server reply'));
  const answer = looked.find((h) => h.host === named.host) ?? first;
  return deferred(dnsFailed(named.host, 'A', answer.nxdomain ? 'not_found' : 'no_data', 'deferred_mx_no_address'));
}

interface MxHost {
  host: string;
  /** Set when the exchange is an IP address rather than a name (misconfigured, but common). */
  literal: string | undefined;
  /** The exchange is not a host name: it stays in the list (it counts as "no address"), unresolved. */
  invalid: boolean;
  preference: number;
}

interface LookedUp {
  host: string;
  preference: number;
  addresses: string[];
  /** The first temporary error, when no address was found; undefined means "no such records". */
  tempError?: string;
  /** No address because the name does not exist (NXDOMAIN), rather than has no A/AAAA record. */
  nxdomain?: boolean;
}

function planLiteral(raw: string, isOwnAddress: MxOptions['isOwnAddress']): MxPlan {
  const address = parseAddressLiteral(raw);
  if (address === undefined) return failed(outcomeDiagnostic('bounced_bad_domain', { what: 'address literal', domain: raw }));
  // Postfix delivers user@[its own address] locally; we have no local delivery, so it is a loop.
  if (isOwnAddress?.(address)) return failed(outcomeDiagnostic('bounced_mail_loop', { domain: line(raw) }));
  // An explicit literal bypasses DNS (RFC 5321 §4.1.3), and also the ipv6 option: it is the only way in.
  return { kind: 'hosts', targets: [{ host: raw, address, preference: 0 }] };
}

/** "[192.0.2.1]" or "[IPv6:2001:db8::1]" → the address; anything else (general literals too) → undefined. */
function parseAddressLiteral(raw: string): string | undefined {
  if (!raw.startsWith('[') || !raw.endsWith(']')) return undefined;
  const inner = raw.slice(1, -1);
  if (/^ipv6:/i.test(inner)) {
    const v6 = inner.slice(5);
    return isIPv6(v6) ? v6.toLowerCase() : undefined;
  }
  return isIPv4(inner) ? inner : undefined;
}

/**
 * Lower-case, no trailing root dot, IDN as A-labels, and syntactically a host name — or undefined.
 * Pure-ASCII names skip domainToASCII on purpose: WHATWG host parsing turns "0x7f.1" into
 * "127.0.0.1", and a DNS name must never silently become an address.
 */
function normalizeName(raw: string): string | undefined {
  let name = raw.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (/[^\x00-\x7f]/.test(name)) name = domainToASCII(name);
  if (name === '' || name.length > MAX_NAME_LENGTH) return undefined;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // An all-numeric last label is an IPv4 address in disguise (no TLD is numeric): not a domain.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) return undefined;
  return name;
}

function toMxHost(exchange: string, priority: number): MxHost {
  const bare = exchange.endsWith('.') ? exchange.slice(0, -1) : exchange;
  const inner = bare.startsWith('[') && bare.endsWith(']') ? bare.slice(1, -1) : bare;
  if (isIP(inner) !== 0) {
    const literal = inner.toLowerCase();
    return { host: literal, literal, invalid: false, preference: priority };
  }
  const host = normalizeName(exchange);
  // Never echo a hostile name: it could end up in a reply line, a log or a TLS server name.
  if (host === undefined) return { host: '(invalid MX name)', literal: undefined, invalid: true, preference: priority };
  return { host, literal: undefined, invalid: false, preference: priority };
}

/** Preference ascending; equal preferences shuffled (RFC 5321 §5.1 SHOULD, to spread load). */
function orderByPreference(hosts: MxHost[], random: () => number): MxHost[] {
  const sorted = [...hosts].sort((a, b) => a.preference - b.preference);
  for (let start = 0; start < sorted.length; ) {
    let end = start + 1;
    while (end < sorted.length && sorted[end]?.preference === sorted[start]?.preference) end++;
    for (let i = end - 1; i > start; i--) {
      const j = start + pick(random, i - start + 1);
      [sorted[i], sorted[j]] = [sorted[j] as MxHost, sorted[i] as MxHost];
    }
    start = end;
  }
  return sorted;
}

/** An index in [0, n), whatever the injected random returns. */
function pick(random: () => number, n: number): number {
  const r = random();
  const i = Number.isFinite(r) ? Math.floor(r * n) : 0;
  return Math.min(Math.max(i, 0), n - 1);
}

function dedupeHosts(hosts: MxHost[]): MxHost[] {
  const seen = new Set<string>();
  // Invalid names are never merged: each is its own (address-less) MX.
  return hosts.filter((h) => h.invalid || (seen.has(h.host) ? false : (seen.add(h.host), true)));
}

/** RFC 5321 §5.1: drop our own name and every MX at least as far down the list, or mail ping-pongs. */
function dropSelfAndWorse(hosts: MxHost[], self: readonly string[]): MxHost[] {
  const mine = new Set(self.map((s) => normalizeName(s) ?? s.toLowerCase()));
  const ours = hosts.filter((h) => h.literal === undefined && !h.invalid && mine.has(h.host));
  if (ours.length === 0) return hosts;
  const cutoff = Math.min(...ours.map((h) => h.preference));
  return hosts.filter((h) => h.preference < cutoff);
}

/**
 * The same rule by address (Postfix's smtp_addr.c does it after the lookups): an MX whose name is
 * not ours may still resolve to one of our addresses. Within one MX host a single own address is
 * enough: trying its other addresses would reach a host that lists us at the same preference.
 */
function dropOwnAddressAndWorse(hosts: LookedUp[], isOwnAddress: MxOptions['isOwnAddress']): LookedUp[] {
  if (!isOwnAddress) return hosts;
  const ours = hosts.filter((h) => h.addresses.some((a) => isOwnAddress(a)));
  if (ours.length === 0) return hosts;
  const cutoff = Math.min(...ours.map((h) => h.preference));
  return hosts.filter((h) => h.preference < cutoff);
}

async function lookupHost(h: MxHost, resolver: DnsResolver, ipv6: boolean): Promise<LookedUp> {
  const base = { host: h.host, preference: h.preference };
  if (h.literal !== undefined) {
    // ipv6: false means no IPv6 route; an IPv6 literal in the MX would only waste an attempt.
    return { ...base, addresses: isIPv4(h.literal) || ipv6 ? [h.literal] : [] };
  }
  if (h.invalid) return { ...base, addresses: [], nxdomain: true };
  const [v4, v6] = await Promise.all([
    query(() => resolver.resolve4(h.host), isIPv4),
    ipv6 ? query(() => resolver.resolve6(h.host), isIPv6) : Promise.resolve<Answer>({ addresses: [] }),
  ]);
  const addresses = [...v4.addresses, ...v6.addresses]; // IPv4 first: the path that works most often
  const tempError = v4.tempError ?? v6.tempError;
  if (addresses.length === 0 && tempError !== undefined) return { ...base, addresses, tempError };
  return addresses.length === 0 && v4.nxdomain ? { ...base, addresses, nxdomain: true } : { ...base, addresses };
}

/** One A or AAAA answer; tempError only for failures other than "no such name / no such record". */
interface Answer {
  addresses: string[];
  tempError?: string;
  nxdomain?: boolean;
}

async function query(fn: () => Promise<string[]>, valid: (s: string) => boolean): Promise<Answer> {
  try {
    const got = await call(fn);
    const list = Array.isArray(got) ? got : [];
    return { addresses: list.filter((a): a is string => typeof a === 'string' && valid(a)).map((a) => a.toLowerCase()) };
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTFOUND') return { addresses: [], nxdomain: true };
    return code === 'ENODATA' ? { addresses: [] } : { addresses: [], tempError: code };
  }
}

/** Turns a resolver that throws synchronously into a rejected promise, so nothing escapes planMx. */
function call<T>(fn: () => Promise<T>): Promise<T> {
  return Promise.resolve().then(fn);
}

function errorCode(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  const clean = typeof code === 'string' ? code.replace(/[^A-Za-z0-9_]/g, '').slice(0, 32) : '';
  return clean || 'EUNKNOWN';
}

function addressLimit(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n >= 1 ? Math.floor(n) : DEFAULT_MAX_ADDRESSES;
}

/** Reply lines go into SMTP responses, logs and DSNs: printable ASCII only, bounded length. */
function line(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 400);
}

function failed(d: Diagnostic): MxPlan {
  return { kind: 'failed', reply: line(d.text), dsn: d.dsn };
}

function deferred(d: Diagnostic): MxPlan {
  return { kind: 'deferred', reply: line(d.text), dsn: d.dsn };
}
