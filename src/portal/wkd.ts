/**
 * The portal's Web Key Directory (draft-koch-openpgp-webkey-service §3.1, server side): WKD asks by
 * the hash of the local part, so the portal keeps a hash → addresses index of our users — internal
 * addresses whose key the keystore holds with its secret part — rebuilt from the keystore when it
 * is older than index_ttl (a new user's key shows within that time). The keys themselves are read
 * fresh for each request, so a revocation is served as soon as it is stored.
 *
 * Untrusted input: the hash and domain from the request path, and the Host header (direct method).
 * Secrets: none leave — public key bytes only, each checked packet by packet (packets.ts).
 */
import { isWkdHash, splitAddress, wkdHash } from '../directory/index.js';
import { publicPacketsOnly } from './packets.js';

/** What WKD needs of a stored key (the keystore's StoredPgpKey has it, and so does key-file.ts). */
export interface PortalKey {
  hasSecret: boolean;
  publicKey: Buffer;
  info: { fingerprint: string; addresses: string[]; canEncrypt: boolean; created: Date };
}

/** The keystore (tests), or the file the supervisor publishes (the portal role: key-file.ts). */
export interface PortalStore {
  listPgpKeys(): Promise<PortalKey[]>;
  pgpKeysFor(address: string): Promise<PortalKey[]>;
}

export class WkdIndex {
  /** hash → domain → addresses (a local part shared by two internal domains has one hash). */
  private index = new Map<string, Map<string, Set<string>>>();
  private builtAt = -Infinity;
  private building: Promise<void> | null = null;
  private readonly domains: Set<string>;

  constructor(
    private readonly store: PortalStore,
    internalDomains: readonly string[],
    private readonly ttl: number,
    private readonly now: () => number = Date.now,
  ) {
    this.domains = new Set(internalDomains.map((d) => d.toLowerCase()));
  }

  isInternal(domain: string): boolean {
    return this.domains.has(domain.toLowerCase());
  }

  /**
   * The domain(s) a direct-method request is for: its Host when that is one of ours, else every
   * internal domain (the portal reached by IP or by a proxy's name; clients keep only the user
   * id they asked for).
   */
  directDomains(host: string | undefined): string[] {
    const h = (host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    if (this.domains.has(h)) return [h];
    return [...this.domains];
  }

  /** The binary public keys for `hash` in `domains`, usable ones first; null when none. */
  async keysFor(hash: string, domains: readonly string[]): Promise<{ body: Buffer; addresses: string[]; fingerprints: string[] } | null> {
    if (!isWkdHash(hash)) return null;
    await this.fresh();
    const byDomain = this.index.get(hash);
    if (!byDomain) return null;
    const addresses = domains.flatMap((d) => [...(byDomain.get(d) ?? [])]);
    const seen = new Set<string>();
    const keys: PortalKey[] = [];
    for (const address of addresses) {
      for (const k of await this.store.pgpKeysFor(address)) {
        if (!k.hasSecret || seen.has(k.info.fingerprint)) continue;
        seen.add(k.info.fingerprint);
        keys.push(k);
      }
    }
    if (!keys.length) return null;
    keys.sort((a, b) => Number(b.info.canEncrypt) - Number(a.info.canEncrypt) || b.info.created.getTime() - a.info.created.getTime());
    for (const k of keys) {
      if (!publicPacketsOnly(k.publicKey)) throw new Error(`stored public key ${k.info.fingerprint} does not look like a public key; refusing to serve it`);
    }
    return { body: Buffer.concat(keys.map((k) => k.publicKey)), addresses, fingerprints: keys.map((k) => k.info.fingerprint) };
  }

  /** Rebuild now (tests; an admin action could call it too). */
  async rebuild(): Promise<void> {
    const next = new Map<string, Map<string, Set<string>>>();
    for (const k of await this.store.listPgpKeys()) {
      if (!k.hasSecret) continue;
      for (const address of k.info.addresses) {
        const a = splitAddress(address);
        if (!a || !this.domains.has(a.domain)) continue;
        const hash = wkdHash(a.local);
        let byDomain = next.get(hash);
        if (!byDomain) next.set(hash, (byDomain = new Map()));
        let set = byDomain.get(a.domain);
        if (!set) byDomain.set(a.domain, (set = new Set()));
        set.add(a.address);
      }
    }
    this.index = next;
    this.builtAt = this.now();
  }

  private async fresh(): Promise<void> {
    if (this.now() - this.builtAt < this.ttl) return;
    // One rebuild at a time; requests meanwhile wait for it rather than start their own.
    this.building ??= this.rebuild().finally(() => {
      this.building = null;
    });
    await this.building;
  }
}

/**
 * The policy file (§4.5): its presence tells clients this domain has a WKD. Empty of flags: no
 * submission protocol (keys are published by the admin through the keystore, not by mail).
 */
export const policyFor = (domain: string): string => `# Web Key Directory policy for ${domain} (Postern)\n`;
