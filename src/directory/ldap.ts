/**
 * The LDAP directory (OpenLDAP, Active Directory): for an address, the entry that holds it, and
 * from that entry its certificates (recipients without a usable one in the store), its groups
 * (memberOf and/or a group search) and attributes (policy conditions). One search per address
 * serves all three, cached per process (found: cache_ttl, not found: negative_ttl).
 *
 * Servers are asked in order; the first holding an entry answers, so the list can be replicas of
 * one directory or several directories. If none has the entry and any failed, the answer is
 * unknown: LdapUnavailableError (temporary), which the caller turns into a deferral or proceeds
 * without, per ldap.on_failure (or use withFailurePolicy).
 *
 * Untrusted input: the address (from SMTP), escaped into filters by ldap-filter.ts; everything
 * the server returns: certificates are parsed and checked as on import (pki/), dropped with a log
 * line when unusable, and only kept if they name the address looked up — a certificate in an
 * entry never becomes another address's key. Group DNs are escaped before they go into filters.
 * Secrets: the bind password, handled by ldap-client.ts only.
 */
import type { LdapConfig, LdapServerConfig } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { checkForImport, parseImport, type CertInfo } from '../pki/index.js';
import type { Directory } from '../policy/index.js';
import { LdapServerClient, type LdapEntry, type LdapSearch } from './ldap-client.js';
import { LdapUnavailableError } from './ldap-errors.js';
import { firstRdnValue, renderFilter } from './ldap-filter.js';

export { LdapUnavailableError } from './ldap-errors.js';
export { escapeFilterValue, renderFilter, validateTemplate, firstRdnValue } from './ldap-filter.js';
export { lookUpAndStoreCertificates, usableForEncryption, type LdapCertStore } from './ldap-store.js';

/** What the directory knows about one address. */
export interface LdapFacts {
  found: boolean;
  /** The server that answered (when found). */
  server?: string;
  /** DNs of the matching entries (usually one). */
  dns: string[];
  /** Group names: first RDN value of memberOf DNs, `name` attribute of group_search results. */
  groups: string[];
  /** Lower-cased attribute name → values: the mail attribute and attributes.policy. */
  attributes: Record<string, string[]>;
  /** End-entity certificates naming the address that pass the import rules. */
  certificates: CertInfo[];
}

export interface LdapDirectoryOptions {
  log: Logger;
  now?: () => number;
  /** Largest number of addresses cached (oldest dropped first). */
  maxCached?: number;
}

const NOT_FOUND: Omit<LdapFacts, 'server'> = Object.freeze({ found: false, dns: [], groups: [], attributes: {}, certificates: [] });
// RFC 5321 §4.5.3.1.3: a path is at most 256 octets; anything longer is no address to look up.
const MAX_ADDRESS = 320;
const MAX_ENTRIES = 10;

export class LdapDirectory implements Directory {
  readonly onFailure: LdapConfig['on_failure'];
  private readonly servers: LdapServerClient[];
  private readonly cache = new Map<string, { expires: number; value: Promise<LdapFacts> }>();
  private readonly now: () => number;
  private readonly maxCached: number;

  constructor(
    private readonly config: LdapConfig,
    private readonly opts: LdapDirectoryOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxCached = opts.maxCached ?? 10_000;
    this.onFailure = config.on_failure;
    this.servers = config.servers.map((s) => new LdapServerClient(s, config.retry_after, this.now));
  }

  /** False when no servers are configured: every look-up answers "not found" without I/O. */
  get enabled(): boolean {
    return this.servers.length > 0;
  }

  async groupsOf(address: string): Promise<string[]> {
    return (await this.lookUp(address)).groups;
  }

  async attributesOf(address: string): Promise<Record<string, string[]>> {
    return (await this.lookUp(address)).attributes;
  }

  async certificatesOf(address: string): Promise<CertInfo[]> {
    return (await this.lookUp(address)).certificates;
  }

  /** Everything about `address`, from the cache or the servers; throws LdapUnavailableError. */
  lookUp(address: string): Promise<LdapFacts> {
    const addr = address.trim().toLowerCase();
    // Control characters are in no address (RFC 5321 §4.1.2), and slapd ends a value at NUL, so
    // "alice@example.com\0" would find Alice: such input is no one's address.
    if (!this.enabled || !addr || addr.length > MAX_ADDRESS || /[\x00-\x1f\x7f]/.test(addr)) return Promise.resolve(NOT_FOUND);
    const now = this.now();
    const hit = this.cache.get(addr);
    if (hit && hit.expires > now) return hit.value;
    if (hit) this.cache.delete(addr);
    // While a look-up runs, concurrent callers share it (expires: never, until it settles).
    const value = this.ask(addr);
    const entry = { expires: Infinity, value };
    this.cache.set(addr, entry);
    if (this.cache.size > this.maxCached) this.cache.delete(this.cache.keys().next().value!);
    value.then(
      (f) => (entry.expires = this.now() + (f.found ? this.config.cache_ttl : this.config.negative_ttl)),
      // Failures are not cached here: the server's back-off (retry_after) already makes the next
      // ask fail fast, and a recovered server is used at once.
      () => this.cache.get(addr) === entry && this.cache.delete(addr),
    );
    return value;
  }

  /** Forget cached answers (all, or one address), e.g. after an admin changed the directory. */
  forget(address?: string): void {
    if (address === undefined) this.cache.clear();
    else this.cache.delete(address.trim().toLowerCase());
  }

  async close(): Promise<void> {
    this.cache.clear();
    await Promise.all(this.servers.map((s) => s.close()));
  }

  private async ask(address: string): Promise<LdapFacts> {
    const failures: LdapUnavailableError[] = [];
    for (const server of this.servers) {
      try {
        const facts = await server.run((search) => this.fromServer(server.config, search, address));
        if (facts.found) return facts;
      } catch (err) {
        if (!(err instanceof LdapUnavailableError)) throw err;
        // Once per failure, not once per mail while the server is backed off.
        if (!err.skipped) this.opts.log.warn({ event: 'ldap.unavailable', server: server.url, address, reason: err.reason }, 'LDAP server unavailable');
        failures.push(err);
      }
    }
    if (failures.length) {
      // Not found where we could ask, but a server that failed may hold the entry: unknown.
      throw new LdapUnavailableError(
        failures.flatMap((f) => f.servers),
        failures.map((f) => f.reason).join('; '),
        { cause: failures[0] },
      );
    }
    return NOT_FOUND;
  }

  private async fromServer(s: LdapServerConfig, search: LdapSearch, address: string): Promise<LdapFacts> {
    const at = address.lastIndexOf('@');
    const values = { address, local: at >= 0 ? address.slice(0, at) : address, domain: at >= 0 ? address.slice(at + 1) : '' };
    const a = s.attributes;
    const wanted = [a.mail, ...a.certificate, ...(a.member_of ? [a.member_of] : []), ...a.policy];
    const entries = await search({
      base: s.base_dn,
      scope: s.scope,
      filter: renderFilter(s.user_filter, values),
      attributes: [...new Set(wanted)],
      binary: a.certificate,
      sizeLimit: MAX_ENTRIES,
    });
    if (!entries.length) return NOT_FOUND;
    if (entries.length > 1) this.opts.log.warn({ event: 'ldap.several_entries', server: s.url, address, dns: entries.map((e) => e.dn) }, 'several LDAP entries hold this address; using all of them');

    const groups: string[] = [];
    const attributes: Record<string, string[]> = {};
    const raw: Buffer[] = [];
    for (const e of entries) {
      if (a.member_of) for (const dn of textValues(e, a.member_of)) groups.push(firstRdnValue(dn) ?? dn);
      for (const name of [a.mail, ...a.policy]) {
        const v = textValues(e, name);
        if (v.length) (attributes[name.toLowerCase()] ??= []).push(...v);
      }
      for (const name of a.certificate) raw.push(...binaryValues(e, name));
      if (s.group_search) {
        const g = s.group_search;
        const found = await search({ base: g.base, scope: g.scope, filter: renderFilter(g.filter, { dn: e.dn, address }), attributes: [g.name] });
        // A multi-valued name (cn: Board, cn: Directors) gives its first value, as memberOf would.
        for (const ge of found) groups.push(textValues(ge, g.name)[0] ?? firstRdnValue(ge.dn) ?? ge.dn);
      }
    }
    return {
      found: true,
      server: s.url,
      dns: entries.map((e) => e.dn),
      groups: dedupe(groups),
      attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, dedupe(v)])),
      certificates: await this.certificates(raw, address, s.url),
    };
  }

  /** Parse and check what the entry holds; log and drop what cannot be used for this address. */
  private async certificates(values: Buffer[], address: string, server: string): Promise<CertInfo[]> {
    const out = new Map<string, CertInfo>();
    for (const value of values) {
      let certs: CertInfo[];
      try {
        // DER certificates (userCertificate;binary) and PKCS#7 certs-only (userSMIMECertificate).
        // A private key in a directory attribute would be a gross mistake; it is never taken.
        certs = (await parseImport(value)).certificates;
      } catch (err) {
        this.opts.log.warn({ event: 'ldap.certificate_unreadable', server, address, reason: (err as Error).message }, 'unreadable certificate in LDAP entry dropped');
        continue;
      }
      for (const cert of certs) {
        // Chains in PKCS#7 bundles carry the CAs; those are not this address's certificate.
        if (cert.isCA) continue;
        if (!cert.emails.some((e) => e.toLowerCase() === address)) {
          this.opts.log.warn({ event: 'ldap.certificate_other_address', server, address, fingerprint: cert.fingerprint, emails: cert.emails }, 'certificate in LDAP entry does not name the address; dropped');
          continue;
        }
        const check = checkForImport(cert, { trust: false, now: new Date(this.now()) });
        if (!check.ok) {
          this.opts.log.warn({ event: 'ldap.certificate_refused', server, address, fingerprint: cert.fingerprint, problems: check.problems }, 'certificate in LDAP entry fails the import rules; dropped');
          continue;
        }
        out.set(cert.fingerprint, cert);
      }
    }
    return [...out.values()];
  }
}

/** Values of `name` (case-insensitive; "userCertificate" also finds "userCertificate;binary"). */
function valuesOf(e: LdapEntry, name: string): (string | Buffer)[] {
  const want = name.toLowerCase();
  const exact = e.attributes.get(want);
  if (exact) return exact;
  const base = want.split(';')[0]!;
  const out: (string | Buffer)[] = [];
  for (const [k, v] of e.attributes) if (k.split(';')[0] === base) out.push(...v);
  return out;
}

const textValues = (e: LdapEntry, name: string): string[] => valuesOf(e, name).map((v) => (typeof v === 'string' ? v : v.toString('utf8')));
// A value ldapts decoded as UTF-8 re-encodes to the same bytes (DER never starts with a BOM).
const binaryValues = (e: LdapEntry, name: string): Buffer[] => valuesOf(e, name).map((v) => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v));

function dedupe(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => !seen.has(v.toLowerCase()) && seen.add(v.toLowerCase()) !== undefined);
}

/**
 * The directory as the policy engine should see it, with ldap.on_failure applied: "defer"
 * rethrows LdapUnavailableError (the worker defers the message), "proceed" logs and answers as
 * if the address had no entry.
 */
export function withFailurePolicy(dir: LdapDirectory, log: Logger): Directory & { certificatesOf(address: string): Promise<CertInfo[]> } {
  const guard = async <T>(address: string, what: string, f: () => Promise<T>, empty: T): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      if (!(err instanceof LdapUnavailableError) || dir.onFailure === 'defer') throw err;
      log.warn({ event: 'ldap.proceed_without', address, what, reason: err.reason }, 'LDAP unavailable; proceeding without directory facts (ldap.on_failure: proceed)');
      return empty;
    }
  };
  return {
    groupsOf: (a) => guard(a, 'groups', () => dir.groupsOf(a), [] as string[]),
    attributesOf: (a) => guard(a, 'attributes', () => dir.attributesOf(a), {} as Record<string, string[]>),
    certificatesOf: (a) => guard(a, 'certificates', () => dir.certificatesOf(a), [] as CertInfo[]),
  };
}

/** Several directories as one (e.g. LDAP and the static groups file): groups united, attributes merged. */
export function combineDirectories(...dirs: Directory[]): Directory {
  return {
    groupsOf: async (a) => dedupe((await Promise.all(dirs.map((d) => d.groupsOf(a)))).flat()),
    attributesOf: async (a) => {
      const out: Record<string, string[]> = {};
      for (const attrs of await Promise.all(dirs.map((d) => d.attributesOf(a)))) for (const [k, v] of Object.entries(attrs)) out[k] = dedupe([...(out[k] ?? []), ...v]);
      return out;
    },
  };
}
