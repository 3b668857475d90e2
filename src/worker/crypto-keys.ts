/**
 * The keys a worker signs, encrypts and decrypts with, prepared once and kept: parsing a
 * certificate, importing a key and unsealing it through the KEK cost far more than the RSA
 * operation itself, and the same few keys serve thousands of messages.
 *
 * Which certificate applies to an address is asked for every message — of the store, or in the
 * worker of its look-ups cached per change generation (store-lookups.ts), so an import, a deletion
 * or an expiry takes effect for the next message on every node; the prepared objects are cached by
 * certificate fingerprint, which never changes meaning. Trust anchors and intermediates are re-read
 * when a certificate changes (and at least every TRUST_TTL_MS).
 *
 * Secrets: unsealed private keys live in these prepared objects for the life of the worker (as
 * in any MTA's TLS key); an unseal is audited once per process, not once per message.
 */
import type { Config } from '../config/types.js';
import { isStoreUnavailable, type KeyStore, type StoredCertificate } from '../keystore/index.js';
import { checkPath, parseCertificate, pathUsable, type CertInfo, type RevocationChecker } from '../pki/index.js';
import { canEncryptTo, canSignWith, usableCertificate, type KeyLookups } from './policy-facts.js';
import type { StoreReads } from './store-lookups.js';
import type { Logger } from '../log/index.js';
import {
  prepareDecryptionKey,
  prepareRecipient,
  prepareSigner,
  prepareTrustStore,
  type Capabilities,
  type SmimeDecryptionKey,
  type SmimeRecipient,
  type SmimeSigner,
  type TrustStore,
} from '../smime/index.js';

const TRUST_TTL_MS = 30_000;
const MAX_CACHED = 10_000;

class Lru<V> {
  private map = new Map<string, V>();
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  delete(k: string): void {
    this.map.delete(k);
  }
  set(k: string, v: V): void {
    this.map.set(k, v);
    if (this.map.size > MAX_CACHED) this.map.delete(this.map.keys().next().value!);
  }
}

export interface EncryptionTarget {
  recipient: SmimeRecipient;
  certificate: StoredCertificate;
  capabilities?: Capabilities;
}

export class CryptoKeys {
  private recipients = new Lru<SmimeRecipient>();
  private signers = new Lru<Promise<SmimeSigner>>();
  private decryptors = new Lru<Promise<SmimeDecryptionKey>>();
  private trust: { at: number; generation: string; value: Promise<TrustStore> } | null = null;
  /** Why the last look-up of an address found no usable certificate (for the hold reason). */
  readonly lastProblem = new Lru<string>();
  /** Certificates (with the capabilities they came with) already learnt from mail by this process. */
  readonly learnt = new Lru<boolean>();

  private parsed = new Lru<CertInfo>();

  constructor(
    private readonly store: KeyStore,
    private readonly config: () => Config,
    private readonly log: Logger,
    /** Revocation (OCSP, CRL, the internal CA's records); without it nothing is checked. */
    readonly revocation?: RevocationChecker,
    /** Where look-ups are read: the store itself, or the worker's cache of it (StoreLookups). */
    private readonly reads: StoreReads = store,
  ) {}

  /** A stored certificate's CertInfo, parsed once. */
  private info(c: StoredCertificate): CertInfo {
    let i = this.parsed.get(c.fingerprint);
    if (!i) this.parsed.set(c.fingerprint, (i = parseCertificate(c.der)));
    return i;
  }

  /**
   * Why this recipient certificate must not be used (revoked; or unknown under hard-fail), or
   * null. The path is the certificate and the CA certificates the store holds above it.
   */
  private async revocationProblem(c: StoredCertificate): Promise<string | null> {
    if (!this.revocation) return null;
    // The CA certificates come from the cached, already parsed trust store: this runs for every
    // recipient of every message, and reading them from SQLite each time was most of its cost.
    const trust = await this.trustStore();
    const cas = [...trust.intermediates, ...trust.anchors];
    const path: CertInfo[] = [this.info(c)];
    for (let issuer = c.issuer, i = 0; i < 8; i++) {
      const next = cas.find((ca) => ca.subject === issuer && !path.some((p) => p.fingerprint === ca.fingerprint));
      if (!next) break;
      path.push(next);
      if (next.subject === next.issuer) break;
      issuer = next.issuer;
    }
    // A certificate whose issuer we do not hold cannot be checked: unknown, like a silent responder.
    if (path.length < 2) return this.config().revocation.mode.outbound === 'hard' ? `the issuer of ${c.subject} is not in the store, so its revocation status cannot be checked` : null;
    const result = await checkPath(this.revocation, path);
    if (pathUsable(result, this.config().revocation.mode.outbound)) return null;
    return result.reason ?? `revocation status ${result.status}`;
  }

  /** The newest usable certificate of a recipient, prepared, with what their mail told us they read. */
  async encryptionTarget(address: string, lookups: KeyLookups = this.reads, now = Date.now()): Promise<EncryptionTarget | null> {
    const certs = (await lookups.certificatesFor(address)).filter((c) => usableCertificate(c, now, false) && canEncryptTo(c));
    for (const c of certs) {
      const problem = await this.revocationProblem(c);
      if (problem) {
        this.log.warn({ event: 'worker.certificate_not_used', address, fingerprint: c.fingerprint, reason: problem }, 'recipient certificate not used');
        this.lastProblem.set(address.toLowerCase(), problem);
        continue;
      }
      try {
        let r = this.recipients.get(c.fingerprint);
        if (!r) this.recipients.set(c.fingerprint, (r = prepareRecipient(c.der)));
        const capabilities = (await this.reads.capabilitiesOf(c.fingerprint)) as Capabilities | undefined;
        return { recipient: r, certificate: c, ...(capabilities ? { capabilities } : {}) };
      } catch (err) {
        // A store that cannot answer says nothing about the certificate: the message waits.
        if (isStoreUnavailable(err)) throw err;
        this.log.warn({ event: 'worker.certificate_unusable', address, fingerprint: c.fingerprint, reason: (err as Error).message }, 'certificate cannot be encrypted to');
      }
    }
    return null;
  }

  /** A signer for an internal sender: the newest usable certificate whose key we hold. */
  async signer(address: string, lookups: KeyLookups = this.reads, now = Date.now()): Promise<SmimeSigner | null> {
    const certs = (await lookups.certificatesFor(address)).filter((c) => usableCertificate(c, now, true) && canSignWith(c));
    const hash = this.config().smime.sign_hash.toUpperCase() as 'SHA-256' | 'SHA-384' | 'SHA-512';
    for (const c of certs) {
      const key = `${c.fingerprint}:${hash}`;
      let p = this.signers.get(key);
      if (!p) {
        p = (async () => {
          const pkcs8 = await this.store.privateKeyFor(c, 'sign', 'worker');
          if (!pkcs8) throw new Error('the private key is missing');
          return prepareSigner(c.der, pkcs8, await this.chainOf(c), { hash });
        })();
        this.signers.set(key, p);
        p.catch(() => this.signers.delete(key));
      }
      try {
        return await p;
      } catch (err) {
        // Not "cannot sign": the key could not be fetched now; signing later beats sending unsigned.
        if (isStoreUnavailable(err)) throw err;
        this.log.warn({ event: 'worker.signing_key_unusable', address, fingerprint: c.fingerprint, reason: (err as Error).message }, 'cannot sign with this certificate');
      }
    }
    return null;
  }

  /** Our certificates with keys that a CMS RecipientInfo may name (by serial or subject key id), prepared. */
  async decryptionKeys(ids: { serial?: string; subjectKeyId?: string }[]): Promise<SmimeDecryptionKey[]> {
    const norm = ids.map((i) => ({
      ...(i.serial ? { serial: i.serial.toLowerCase().replace(/^(?:0x)?0*(?=[0-9a-f])/, '') } : {}),
      ...(i.subjectKeyId ? { subjectKeyId: i.subjectKeyId.toLowerCase().replace(/:/g, '') } : {}),
    }));
    const certs = await this.reads.keyCertificates(norm);
    const out: SmimeDecryptionKey[] = [];
    for (const c of certs) {
      let p = this.decryptors.get(c.fingerprint);
      if (!p) {
        p = (async () => {
          const pkcs8 = await this.store.privateKeyFor(c, 'decrypt', 'worker');
          if (!pkcs8) throw new Error('the private key is missing');
          return prepareDecryptionKey(c.der, pkcs8);
        })();
        this.decryptors.set(c.fingerprint, p);
        p.catch(() => this.decryptors.delete(c.fingerprint));
      }
      try {
        out.push(await p);
      } catch (err) {
        if (isStoreUnavailable(err)) throw err;
        this.log.warn({ event: 'worker.decryption_key_unusable', fingerprint: c.fingerprint, reason: (err as Error).message }, 'cannot decrypt with this key');
      }
    }
    return out;
  }

  /**
   * Trust anchors and intermediates of the store, parsed; parsed again when a CA certificate was
   * added, removed or trusted (one cheap query per message), and at least every TRUST_TTL_MS.
   */
  async trustStore(now = Date.now()): Promise<TrustStore> {
    const generation = await this.reads.caGeneration();
    if (!this.trust || this.trust.generation !== generation || now - this.trust.at > TRUST_TTL_MS) {
      const value = (async () => {
        const [anchors, chain] = await Promise.all([this.reads.trustAnchors(), this.reads.chainCertificates()]);
        return prepareTrustStore(anchors.map((c) => c.der), chain.map((c) => c.der));
      })();
      this.trust = { at: now, generation, value };
      value.catch(() => (this.trust = null));
    }
    return this.trust.value;
  }

  /** The CA certificates above `cert` that the store holds (by issuer name), root excluded. */
  private async chainOf(cert: StoredCertificate): Promise<Buffer[]> {
    const cas = [...(await this.reads.chainCertificates()), ...(await this.reads.trustAnchors())];
    const chain: Buffer[] = [];
    let issuer = cert.issuer;
    for (let i = 0; i < 8; i++) {
      const next = cas.find((c) => c.subject === issuer && c.fingerprint !== cert.fingerprint);
      if (!next || next.subject === next.issuer) break; // the root is the recipient's own business (RFC 5652 allows it, most omit it)
      chain.push(next.der);
      issuer = next.issuer;
    }
    return chain;
  }
}
