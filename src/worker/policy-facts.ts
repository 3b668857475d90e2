/**
 * Gathering what the policy engine needs before it decides (it does no I/O itself): for the
 * sender and every recipient, whether the address is internal, its directory groups and
 * attributes, and which usable keys the store holds — public ones for recipients (can we encrypt
 * to them?), private ones for the sender (can we sign for them?). Used by the worker and by
 * `postern policy explain`, so an explanation shows exactly the facts a real message would get.
 *
 * A keystore that cannot be reached (PostgreSQL down) makes a party's keys unknown, not absent:
 * reading them throws the store's error, so a decision that depends on them is not made (the
 * worker defers the message) while one that does not — a pass-through rule, plain inbound mail
 * nothing is opened in — goes on without the store.
 */
import type { Config } from '../config/types.js';
import { addressKey, inDomains } from '../core/index.js';
import { isStoreUnavailable, type KeyStore } from '../keystore/index.js';
import type { Directory, PartyFacts } from '../policy/index.js';
import { CRYPTO_METHODS, METHODS, type KeyRecords } from './methods/index.js';

/** Exactly the listed domains, as smtpd's relay control has it (subdomains are not implied), compared in canonical form. */
const isInternal = (config: Config, address: string) => inDomains(address, config.internal_domains);

export { canEncryptTo, canSignWith, usableCertificate } from './methods/certificate-use.js';

/** The store's look-ups by address (the worker memoises them per message). */
export type KeyLookups = Pick<KeyStore, 'certificatesFor' | 'pgpKeysFor'>;

/**
 * Each address looked up once per message: the policy facts and the transforms ask the same.
 * `unknown`: addresses whose keys could not be fetched because the store was down (key-sources.ts):
 * their look-ups fail with that error even if the store answers by now — it would answer without
 * the key the directory has.
 */
export function memoLookups(store: KeyLookups, unknown: ReadonlyMap<string, unknown> = new Map()): KeyLookups {
  const certs = new Map<string, ReturnType<KeyStore['certificatesFor']>>();
  const pgp = new Map<string, ReturnType<KeyStore['pgpKeysFor']>>();
  const failed = (err: unknown) => {
    const p = Promise.reject(err);
    p.catch(() => undefined); // a look-up nobody makes is no unhandled rejection
    return p;
  };
  for (const [address, err] of unknown) {
    certs.set(addressKey(address), failed(err));
    pgp.set(addressKey(address), failed(err));
  }
  const once = <T>(m: Map<string, T>, k: string, f: () => T): T => {
    let v = m.get(addressKey(k));
    if (v === undefined) m.set(addressKey(k), (v = f()));
    return v;
  };
  return { certificatesFor: (a) => once(certs, a, () => store.certificatesFor(a)), pgpKeysFor: (a) => once(pgp, a, () => store.pgpKeysFor(a)) };
}

export async function partyFacts(
  address: string,
  role: 'sender' | 'recipient',
  deps: { config: Config; store: KeyLookups; directory: Directory; now?: number },
): Promise<PartyFacts> {
  const now = deps.now ?? Date.now();
  const [records, groups, attributes] = address
    ? await Promise.all([keyRecords(deps.store, address), deps.directory.groupsOf(address), deps.directory.attributesOf(address)])
    : [NO_RECORDS, [], {}];
  return {
    address,
    internal: address ? isInternal(deps.config, address) : false,
    groups,
    attributes,
    keys: keyFacts(records, role, now),
  };
}

const NO_RECORDS: KeyRecords = { certificates: [], pgpKeys: [] };

/** The party's keys in the store, or the store's error when it cannot be reached now. */
async function keyRecords(store: KeyLookups, address: string): Promise<KeyRecords | { unavailable: unknown }> {
  try {
    const [certificates, pgpKeys] = await Promise.all([store.certificatesFor(address), store.pgpKeysFor(address)]);
    return { certificates, pgpKeys };
  } catch (err) {
    if (!isStoreUnavailable(err)) throw err;
    return { unavailable: err };
  }
}

/**
 * Each method says from the store's records whether this party has a usable key for it. Without
 * the records, the methods whose keys live in the store (S/MIME, OpenPGP) answer with the store's
 * error when asked; the others (PDF, webmail) need no key of the party and answer as ever.
 */
function keyFacts(records: KeyRecords | { unavailable: unknown }, role: 'sender' | 'recipient', now: number): PartyFacts['keys'] {
  const keys = {} as PartyFacts['keys'];
  for (const m of METHODS) {
    if ('unavailable' in records && CRYPTO_METHODS.some((c) => c.id === m.id)) {
      const err = records.unavailable;
      Object.defineProperty(keys, m.id, {
        enumerable: true,
        get: () => {
          throw err;
        },
      });
    } else keys[m.id] = m.keyFacts('unavailable' in records ? NO_RECORDS : records, role, now);
  }
  return keys;
}
