/**
 * What the HKP key server looks keys up in: our users' published OpenPGP keys (PortalStore),
 * each parsed once for what an index shows (user ids, algorithm, dates, subkeys), found by the
 * exact canonical address or by a key id / fingerprint of the primary key or a subkey. Only keys
 * with at least one address in internal_domains are in it: the key server is for our users.
 *
 * Untrusted input: the published key bytes (parsed by openpgp/; one that does not parse is left
 * out, never served unparsed). Secrets: none.
 */
import { createHash } from 'node:crypto';
import { addressKey, inDomains } from '../core/address.js';
import { parsePgpKeys, type PgpKeyInfo } from '../openpgp/index.js';
import type { PortalKey, PortalStore } from './wkd.js';

export interface IndexedKey {
  /** The published bytes (binary transferable public key). */
  publicKey: Buffer;
  /** As parsed now: user ids, validity, subkeys. */
  info: PgpKeyInfo;
  /** Its addresses in internal_domains, canonical. */
  addresses: string[];
}

interface Built {
  byAddress: Map<string, IndexedKey[]>;
  /** Upper-case fingerprints and 16-digit key ids of primary keys and subkeys. */
  byId: Map<string, IndexedKey[]>;
}

/** The 64-bit key id of a fingerprint: its low end for v4 keys, its high end for v6 (RFC 9580 §5.5.4). */
const keyIdOf = (fingerprint: string, version: number) => (version === 4 ? fingerprint.slice(-16) : fingerprint.slice(0, 16));

const add = (map: Map<string, IndexedKey[]>, id: string, k: IndexedKey) => {
  const list = map.get(id) ?? [];
  if (!list.includes(k)) list.push(k);
  map.set(id, list);
};

export class KeyIndex {
  private readonly domains: Set<string>;
  private built: { from: PortalKey[]; index: Built } | null = null;
  /** Parsed keys by the hash of their bytes: a new publication re-parses only what changed. */
  private parsed = new Map<string, PgpKeyInfo | null>();

  constructor(
    private readonly store: PortalStore,
    internalDomains: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    this.domains = new Set(internalDomains.map((d) => d.toLowerCase()));
  }

  /** Keys whose valid user ids name `address` (already canonical) exactly. */
  async byAddress(address: string): Promise<IndexedKey[]> {
    return (await this.index()).byAddress.get(addressKey(address)) ?? [];
  }

  /** Keys with a primary key or subkey of this fingerprint or 16-digit key id (hex, any case). */
  async byId(id: string): Promise<IndexedKey[]> {
    return (await this.index()).byId.get(id.toUpperCase()) ?? [];
  }

  private async index(): Promise<Built> {
    const keys = await this.store.listPgpKeys();
    // The published file hands out the same array until it is replaced.
    if (this.built?.from === keys) return this.built.index;
    const index: Built = { byAddress: new Map(), byId: new Map() };
    const parsed = new Map<string, PgpKeyInfo | null>();
    for (const k of keys) {
      if (!k.hasSecret) continue;
      const addresses = k.info.addresses.filter((a) => inDomains(a, this.domains));
      if (!addresses.length) continue;
      const hash = createHash('sha256').update(k.publicKey).digest('hex');
      let info = this.parsed.get(hash);
      if (info === undefined) info = (await parsePgpKeys(k.publicKey, { now: new Date(this.now()) })).keys[0]?.info ?? null;
      parsed.set(hash, info);
      if (!info || info.fingerprint !== k.info.fingerprint.toUpperCase()) continue;
      const entry: IndexedKey = { publicKey: k.publicKey, info, addresses };
      for (const a of addresses) add(index.byAddress, addressKey(a), entry);
      for (const fpr of [info.fingerprint, ...info.subkeys.map((s) => s.fingerprint)]) {
        add(index.byId, fpr, entry);
        add(index.byId, keyIdOf(fpr, info.version), entry);
      }
    }
    // Keys no longer published are forgotten with this publication.
    this.parsed = parsed;
    this.built = { from: keys, index };
    return index;
  }
}
