/**
 * What a key directory's answer may contribute to the keystore. A body from WKD, HKP or an
 * Autocrypt header is a claim by a third party, so: only keys with a valid user id for the address
 * asked about are taken; such a key is bound to that address only (a key served for alice must not
 * become bob's key because it also names bob); secret material a server (mis)sends is thrown
 * away, never stored as "ours".
 *
 * Untrusted input: the key bytes (parsed by openpgp/, which turns every failure into a problem).
 */
import type { KeyStore, PgpSource, StoredPgpKey } from '../keystore/index.js';
import { parsePgpKeys, type ParsedPgpKey } from '../openpgp/index.js';
import { sameAddress } from './address.js';

/** The part of the keystore the directory uses (a fake in unit tests, PostgreSQL later). */
export type DirectoryStore = Pick<KeyStore, 'importPgpKey' | 'findPgpKey' | 'pgpKeysFor' | 'audit' | 'auditLog'>;

export interface CandidateKey {
  /** Public only, `info.addresses` cut down to the address asked about. */
  key: ParsedPgpKey;
  /** Every address with a valid self-signed user id, as the key itself claims. */
  claimed: string[];
}

/** Parse `body` and keep the keys for `address`; `problems` says what was dropped and why. */
export async function keysForAddress(body: Buffer, address: string): Promise<{ keys: CandidateKey[]; problems: string[] }> {
  const parsed = await parsePgpKeys(body);
  const problems = [...parsed.problems];
  const keys: CandidateKey[] = [];
  for (const k of parsed.keys) {
    const fpr = k.info.fingerprint;
    if (k.secretKey) problems.push(`key ${fpr} came with its secret part: only the public key is used`);
    const mine = k.info.addresses.filter((a) => sameAddress(a, address));
    if (!mine.length) {
      problems.push(`key ${fpr} dropped: its user ids are for ${k.info.addresses.join(', ') || 'no valid address'}, not ${address}`);
      continue;
    }
    keys.push({ key: { info: { ...k.info, addresses: mine, hasSecret: false }, publicKey: k.publicKey }, claimed: k.info.addresses });
  }
  return { keys, problems };
}

/** Usable for encryption first, then unrevoked, then the newest (what a sender wants to use). */
export function rankKeys<T extends { info: ParsedPgpKey['info'] }>(keys: readonly T[]): T[] {
  const score = (k: T) => (k.info.canEncrypt ? 2 : 0) + (k.info.revoked ? 0 : 1);
  return [...keys].sort((a, b) => score(b) - score(a) || b.info.created.getTime() - a.info.created.getTime());
}

/**
 * Import a candidate. When the store already holds the same key under more addresses (an admin
 * imported it), those the key still validly claims are kept: the keystore rewrites a key's
 * addresses from what it is given, and a look-up for one address must not unbind the others.
 */
export async function importCandidate(store: DirectoryStore, c: CandidateKey, opts: { source: PgpSource; actor: string }): Promise<{ status: 'added' | 'duplicate' | 'updated'; key: StoredPgpKey }> {
  const fpr = c.key.info.fingerprint;
  const stored = (await store.findPgpKey(fpr)).find((s) => s.info.fingerprint === fpr);
  let key = c.key;
  if (stored) {
    const keep = stored.info.addresses.filter((a) => c.claimed.some((x) => sameAddress(a, x)) && !key.info.addresses.some((x) => sameAddress(a, x)));
    if (keep.length) key = { ...key, info: { ...key.info, addresses: [...key.info.addresses, ...keep] } };
  }
  return store.importPgpKey(key, opts);
}

/** One source's answer for one address. */
export interface LookupOutcome {
  /**
   * found: at least one key for the address; not-found: the source answered and had none;
   * error: it could not be asked (time-out, network, a refused redirect, an HTTP error).
   */
  status: 'found' | 'not-found' | 'error';
  keys: CandidateKey[];
  /** The URL that answered, when one did. */
  url?: string;
  /** What was tried, dropped or went wrong, in order, for the log. */
  notes: string[];
}
