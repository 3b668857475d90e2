/**
 * The store's read side on the mail path, cached per change topic (issue 19): which certificates
 * and OpenPGP keys an address has, our keys by CMS recipient id, the CA certificates, what a
 * correspondent's signature said they read, and the revocation records. On PostgreSQL each of
 * these is a network round trip, and a steady stream asks the same few questions thousands of
 * times; cached, a message costs no query at all until something changes.
 *
 * An answer is kept with the generation its topic had when the question was asked (changes.ts);
 * it is used while the generation is still that, so a change that commits while the question is in
 * flight makes the answer stale at once. A change on any node bumps the generation within
 * milliseconds (NOTIFY) or at the next check (cluster.heartbeat); a deleted or distrusted
 * certificate stops being used then. Empty answers ("no key") live exactly as long as others.
 * When the watcher cannot vouch for the generations (the database unreachable for too long),
 * nothing is cached and every question goes to the store.
 *
 * The answers are shared between messages: callers must not change the arrays or objects.
 */
import { addressKey, type KeyStore, type StoredCertificate, type StoredPgpKey } from '../keystore/index.js';
import type { StoreChanges } from '../keystore/changes.js';
import type { ChangeTopic } from '../keystore/store-base.js';
import type { RevocationStoreView } from '../pki/index.js';

const MAX_ENTRIES = 10_000;

/** The store's reads that the worker's look-ups use (what CryptoKeys, PgpKeys and the policy facts ask). */
export type StoreReads = Pick<
  KeyStore,
  'certificatesFor' | 'pgpKeysFor' | 'keyCertificates' | 'trustAnchors' | 'chainCertificates' | 'capabilitiesOf' | 'findPgpKey' | 'caGeneration'
>;

interface Entry {
  generation: string;
  value: Promise<unknown>;
}

export class StoreLookups implements StoreReads {
  private readonly entries = new Map<string, Entry>();
  /** Questions answered from the cache and asked of the store (for the bench and tests). */
  readonly counts = { hits: 0, misses: 0 };

  constructor(
    private readonly store: StoreReads,
    readonly changes: StoreChanges,
  ) {}

  /** Make the generations current before a message's look-ups (changes.ts `current`). */
  current(): Promise<void> {
    return this.changes.current();
  }

  /** The generations of `topics` as one key, or null when no cache may be trusted now. */
  private generation(topics: readonly ChangeTopic[]): string | null {
    let g = '';
    for (const t of topics) {
      const n = this.changes.generation(t);
      if (n === null) return null;
      g += `${n}.`;
    }
    return g;
  }

  private cached<T>(topics: readonly ChangeTopic[], key: string, ask: () => Promise<T>): Promise<T> {
    const generation = this.generation(topics);
    if (generation === null) {
      this.counts.misses++;
      return ask();
    }
    const hit = this.entries.get(key);
    if (hit && hit.generation === generation) {
      this.counts.hits++;
      return hit.value as Promise<T>;
    }
    this.counts.misses++;
    const value = ask();
    this.entries.delete(key);
    this.entries.set(key, { generation, value });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    // A failed question is asked again next time (the store was unreachable, say), not remembered.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  certificatesFor(address: string): Promise<StoredCertificate[]> {
    return this.cached(['certificates'], `cert:${addressKey(address)}`, () => this.store.certificatesFor(address));
  }

  pgpKeysFor(address: string): Promise<StoredPgpKey[]> {
    return this.cached(['pgp'], `pgp:${addressKey(address)}`, () => this.store.pgpKeysFor(address));
  }

  keyCertificates(ids: { serial?: string; subjectKeyId?: string }[]): Promise<StoredCertificate[]> {
    const key = ids.map((i) => `${i.serial ?? ''}/${i.subjectKeyId ?? ''}`).join(',');
    return this.cached(['certificates'], `rid:${key}`, () => this.store.keyCertificates(ids));
  }

  trustAnchors(): Promise<StoredCertificate[]> {
    return this.cached(['certificates'], 'anchors', () => this.store.trustAnchors());
  }

  chainCertificates(): Promise<StoredCertificate[]> {
    return this.cached(['certificates'], 'chain', () => this.store.chainCertificates());
  }

  capabilitiesOf(certificateFingerprint: string): Promise<unknown> {
    return this.cached(['certificates'], `caps:${certificateFingerprint}`, () => this.store.capabilitiesOf(certificateFingerprint));
  }

  findPgpKey(selector: string): Promise<StoredPgpKey[]> {
    return this.cached(['pgp'], `find:${selector.toUpperCase()}`, () => this.store.findPgpKey(selector));
  }

  /** Moves whenever a certificate changes: CryptoKeys rebuilds its parsed trust store then. */
  async caGeneration(): Promise<string> {
    const g = this.generation(['certificates']);
    return g === null ? this.store.caGeneration() : `changes:${g}`;
  }

  /**
   * The revocation checker's view of the store (imported CRLs, our CA's revocation records),
   * cached the same way: a revocation or a CRL import bumps 'revocation'; a CA certificate made
   * or replaced bumps 'certificates'.
   */
  revocationView(view: RevocationStoreView): RevocationStoreView {
    const topics: ChangeTopic[] = ['revocation', 'certificates'];
    const local = view.localStatus?.bind(view);
    return {
      importedCrls: (issuer) => this.cached(topics, `crls:${issuer.fingerprint}`, () => view.importedCrls(issuer)),
      ...(local ? { localStatus: (cert, issuer) => this.cached(topics, `local:${issuer.fingerprint}:${cert.serial}`, () => local(cert, issuer)) } : {}),
      // Asked only when an indirect CRL is downloaded: rare, not worth keeping.
      ...(view.certificatesBySubject ? { certificatesBySubject: view.certificatesBySubject.bind(view) } : {}),
    };
  }
}
