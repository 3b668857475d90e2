/**
 * What the HKP key server looks keys up in: our users' published OpenPGP keys (PortalStore),
 * found by the exact canonical address or by a key id / fingerprint of the primary key or a
 * subkey. Only keys with at least one address in internal_domains are in it: the key server is
 * for our users. The index is built from the published fields and a hash per key packet
 * (packets.ts); a key is parsed (every signature verified, ~8 ms) only when an index answer needs
 * its user ids and dates, and then kept until its bytes change.
 *
 * Untrusted input: the published key bytes (a key whose packets do not give the fingerprint it
 * was published under is left out; one that openpgp/ cannot parse is never described).
 * Secrets: none.
 */
import { createHash } from 'node:crypto';
import { addressKey, inDomains } from '../core/address.js';
import type { Logger } from '../log/index.js';
import { parsePgpKeys, type PgpKeyInfo } from '../openpgp/index.js';
import { keyFingerprints } from './packets.js';
import type { PortalKey, PortalStore } from './wkd.js';

/** A published key of one of our users, as found. */
export interface PublishedKey {
  /** Upper-case hex. */
  fingerprint: string;
  /** The published bytes (binary transferable public key). */
  publicKey: Buffer;
  /** Its addresses in internal_domains, canonical. */
  addresses: string[];
}

/** A found key with what an index shows of it. */
export interface DescribedKey extends PublishedKey {
  info: PgpKeyInfo;
}

interface Built {
  byAddress: Map<string, PublishedKey[]>;
  /** Upper-case fingerprints and 16-digit key ids of primary keys and subkeys. */
  byId: Map<string, PublishedKey[]>;
}

/** The 64-bit key id of a fingerprint: its low end for v4 keys, its high end for v6 (RFC 9580 §5.5.4). */
const keyIdOf = (fingerprint: string, version: 4 | 6) => (version === 4 ? fingerprint.slice(-16) : fingerprint.slice(0, 16));

const add = (map: Map<string, PublishedKey[]>, id: string, k: PublishedKey) => {
  const list = map.get(id) ?? [];
  if (!list.includes(k)) list.push(k);
  map.set(id, list);
};

const hashOf = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export class KeyIndex {
  private readonly domains: Set<string>;
  private built: { from: PortalKey[]; index: Built } | null = null;
  /** Described keys by the hash of their bytes, kept while they are published. */
  private described = new Map<string, PgpKeyInfo | null>();

  constructor(
    private readonly store: PortalStore,
    internalDomains: readonly string[],
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.domains = new Set(internalDomains.map((d) => d.toLowerCase()));
  }

  /** Keys whose valid user ids name `address` (already canonical) exactly. */
  async byAddress(address: string): Promise<PublishedKey[]> {
    return (await this.index()).byAddress.get(addressKey(address)) ?? [];
  }

  /** Keys with a primary key or subkey of this fingerprint or 16-digit key id (hex, any case). */
  async byId(id: string): Promise<PublishedKey[]> {
    return (await this.index()).byId.get(id.toUpperCase()) ?? [];
  }

  /** User ids, algorithm, dates and state of each key; a key that does not parse is left out. */
  async describe(keys: readonly PublishedKey[]): Promise<DescribedKey[]> {
    const out: DescribedKey[] = [];
    for (const k of keys) {
      const hash = hashOf(k.publicKey);
      let info = this.described.get(hash);
      if (info === undefined) {
        info = (await parsePgpKeys(k.publicKey, { now: new Date(this.now()) })).keys[0]?.info ?? null;
        if (info && info.fingerprint !== k.fingerprint) info = null;
        this.described.set(hash, info);
      }
      if (info) out.push({ ...k, info });
    }
    return out;
  }

  private async index(): Promise<Built> {
    const keys = await this.store.listPgpKeys();
    // The published file hands out the same array until it is replaced.
    if (this.built?.from === keys) return this.built.index;
    const index: Built = { byAddress: new Map(), byId: new Map() };
    for (const k of keys) {
      if (!k.hasSecret) continue;
      const addresses = k.info.addresses.filter((a) => inDomains(a, this.domains));
      if (!addresses.length) continue;
      const ids = keyFingerprints(k.publicKey);
      if (!ids || ids.primary !== k.info.fingerprint.toUpperCase()) {
        // The store's fault (secret packets, damage), not a client's: said once per publication.
        this.log.error({ event: 'portal.error', reason: `published key ${k.info.fingerprint} is not the transferable public key it claims to be; the key server leaves it out` }, 'portal request failed');
        continue;
      }
      const entry: PublishedKey = { fingerprint: ids.primary, publicKey: k.publicKey, addresses };
      for (const a of addresses) add(index.byAddress, addressKey(a), entry);
      for (const fpr of [ids.primary, ...ids.subkeys]) {
        add(index.byId, fpr, entry);
        add(index.byId, keyIdOf(fpr, ids.version), entry);
      }
    }
    // Descriptions of keys no longer published are dropped with this publication.
    const live = new Set(keys.map((k) => hashOf(k.publicKey)));
    for (const h of this.described.keys()) if (!live.has(h)) this.described.delete(h);
    this.built = { from: keys, index };
    return index;
  }
}
