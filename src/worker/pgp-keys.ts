/**
 * The OpenPGP keys a worker encrypts, signs, decrypts and verifies with, prepared once and kept
 * by fingerprint (reading a key with openpgp.js costs milliseconds; the same keys serve many
 * messages). Which key applies to an address is asked per message (through the message's memoised
 * look-ups, over the worker's cache per change generation), so an import, a revocation or a
 * deletion takes effect for the next message.
 *
 * Secrets: unsealed secret keys live in the prepared signers and decryption keys for the life of
 * the worker; an unseal is audited once per process.
 */
import { createHash } from 'node:crypto';
import { autocryptHeader } from '../directory/index.js';
import { isStoreUnavailable, type KeyStore, type StoredPgpKey } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import {
  preparePgpDecryptionKey,
  preparePgpRecipient,
  preparePgpSigner,
  preparePgpVerificationKey,
  WILDCARD_KEY_ID,
  type PgpDecryptionKey,
  type PgpRecipient,
  type PgpSigner,
  type PgpVerificationKey,
} from '../openpgp/index.js';
import type { KeyLookups } from './policy-facts.js';
import type { StoreReads } from './store-lookups.js';

const MAX_CACHED = 10_000;

/** A bounded map of promises that forgets failures (so a fixed key is tried again). */
class PromiseCache<V> {
  private map = new Map<string, Promise<V>>();
  get(key: string, make: () => Promise<V>): Promise<V> {
    let p = this.map.get(key);
    if (!p) {
      p = make();
      this.map.set(key, p);
      if (this.map.size > MAX_CACHED) this.map.delete(this.map.keys().next().value!);
      p.catch(() => this.map.delete(key));
    }
    return p;
  }
}

/**
 * The cache key of a prepared public key: its fingerprint and its bytes. A key the store updated
 * (a revocation merged in, a new subkey or expiry) is prepared again, not served stale from here.
 */
const version = (k: StoredPgpKey) => `${k.info.fingerprint}:${createHash('sha256').update(k.publicKey).digest('base64url').slice(0, 22)}`;

/** Usable now, as the store last judged it (expiry is checked again here: the flag is from import time). */
const usable = (k: StoredPgpKey, now: number) => !k.info.revoked && (!k.info.expires || k.info.expires.getTime() > now);

export class PgpKeys {
  private recipients = new PromiseCache<PgpRecipient>();
  private signers = new PromiseCache<PgpSigner>();
  private decryptors = new PromiseCache<PgpDecryptionKey>();
  private verifiers = new PromiseCache<PgpVerificationKey>();
  private headers = new PromiseCache<string>();

  constructor(
    private readonly store: KeyStore,
    private readonly log: Logger,
    /** Where look-ups are read: the store itself, or the worker's cache of it (StoreLookups). */
    private readonly reads: Pick<StoreReads, 'certificatesFor' | 'pgpKeysFor' | 'findPgpKey'> = store,
  ) {}

  /** The newest usable encryption key of a recipient, prepared; null when there is none. */
  async recipient(address: string, lookups: KeyLookups = this.reads, now = Date.now()): Promise<PgpRecipient | null> {
    for (const k of (await lookups.pgpKeysFor(address)).filter((k) => k.info.canEncrypt && usable(k, now))) {
      try {
        return await this.recipients.get(version(k), () => preparePgpRecipient(k.publicKey));
      } catch (err) {
        this.log.warn({ event: 'worker.pgp_key_unusable', address, fingerprint: k.info.fingerprint, reason: (err as Error).message }, 'OpenPGP key cannot be encrypted to');
      }
    }
    return null;
  }

  /**
   * The Autocrypt header value (Level 1) for an internal sender with a usable key of ours, so
   * partners' clients learn it; null without one. Built once per key.
   */
  async autocrypt(address: string, lookups: KeyLookups = this.reads, now = Date.now()): Promise<string | null> {
    const k = (await lookups.pgpKeysFor(address)).find((k) => k.hasSecret && k.info.canEncrypt && usable(k, now));
    if (!k) return null;
    try {
      return await this.headers.get(`${version(k)}:${address.toLowerCase()}`, () => autocryptHeader(address, k.publicKey));
    } catch (err) {
      this.log.warn({ event: 'worker.autocrypt_not_added', address, reason: (err as Error).message }, 'no Autocrypt header for this sender');
      return null;
    }
  }

  /** A signer for an internal sender: the newest usable key whose secret we hold. */
  async signer(address: string, lookups: KeyLookups = this.reads, now = Date.now()): Promise<PgpSigner | null> {
    for (const k of (await lookups.pgpKeysFor(address)).filter((k) => k.hasSecret && k.info.canSign && usable(k, now))) {
      try {
        return await this.signers.get(k.info.fingerprint, async () => {
          const secret = await this.store.pgpSecretKey(k, 'sign', 'worker');
          if (!secret) throw new Error('the secret key is missing');
          return preparePgpSigner(secret);
        });
      } catch (err) {
        // The secret key could not be fetched now: the message waits rather than leaving unsigned.
        if (isStoreUnavailable(err)) throw err;
        this.log.warn({ event: 'worker.pgp_signing_key_unusable', address, fingerprint: k.info.fingerprint, reason: (err as Error).message }, 'cannot sign with this OpenPGP key');
      }
    }
    return null;
  }

  /**
   * Our secret keys a message to these recipients may be encrypted to: those of the addresses it
   * was sent to (a gateway decrypts for its own users), matched against the PKESK key ids.
   */
  async decryptionKeys(keyIds: string[], addresses: readonly string[], lookups: KeyLookups = this.reads): Promise<PgpDecryptionKey[]> {
    const wanted = new Set(keyIds.map((k) => k.toUpperCase()));
    const any = wanted.has(WILDCARD_KEY_ID);
    const out: PgpDecryptionKey[] = [];
    for (const address of new Set(addresses.map((a) => a.toLowerCase()))) {
      for (const k of (await lookups.pgpKeysFor(address)).filter((k) => k.hasSecret)) {
        try {
          const d = await this.decryptors.get(k.info.fingerprint, async () => {
            const secret = await this.store.pgpSecretKey(k, 'decrypt', 'worker');
            if (!secret) throw new Error('the secret key is missing');
            return preparePgpDecryptionKey(secret);
          });
          if ((any || d.keyIds.some((id) => wanted.has(id))) && !out.includes(d)) out.push(d);
        } catch (err) {
          if (isStoreUnavailable(err)) throw err;
          this.log.warn({ event: 'worker.pgp_decryption_key_unusable', fingerprint: k.info.fingerprint, reason: (err as Error).message }, 'cannot decrypt with this OpenPGP key');
        }
      }
    }
    return out;
  }

  /** Public keys that may have made these signatures: the From: addresses' keys and keys by id. */
  async verificationKeys(keyIds: string[], fromAddresses: string[], lookups: KeyLookups = this.reads): Promise<PgpVerificationKey[]> {
    const found = new Map<string, StoredPgpKey>();
    for (const a of fromAddresses) for (const k of await lookups.pgpKeysFor(a)) found.set(k.info.fingerprint, k);
    for (const id of keyIds) for (const k of await this.reads.findPgpKey(id)) found.set(k.info.fingerprint, k);
    const out: PgpVerificationKey[] = [];
    for (const k of found.values()) {
      try {
        // Keys an admin imported, we generated, or the domain published (WKD, LDAP) are trusted; keys
        // from a key server or an Autocrypt header prove only that someone has that key (TOFU).
        const trusted = !['hkp', 'autocrypt', 'mail'].includes(k.source);
        out.push(await this.verifiers.get(`${version(k)}:${trusted}`, () => preparePgpVerificationKey(k.publicKey, { trusted })));
      } catch (err) {
        this.log.warn({ event: 'worker.pgp_key_unreadable', fingerprint: k.info.fingerprint, reason: (err as Error).message }, 'stored OpenPGP key cannot be read');
      }
    }
    return out;
  }
}
