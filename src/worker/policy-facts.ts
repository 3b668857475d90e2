/**
 * Gathering what the policy engine needs before it decides (it does no I/O itself): for the
 * sender and every recipient, whether the address is internal, its directory groups and
 * attributes, and which usable keys the store holds — public ones for recipients (can we encrypt
 * to them?), private ones for the sender (can we sign for them?). Used by the worker and by
 * `postern policy explain`, so an explanation shows exactly the facts a real message would get.
 */
import type { Config } from '../config/types.js';
import { addressKey, inDomains } from '../core/index.js';
import type { KeyStore } from '../keystore/index.js';
import type { Directory, PartyFacts } from '../policy/index.js';
import { METHODS } from './methods/index.js';

/** Exactly the listed domains, as smtpd's relay control has it (subdomains are not implied), compared in canonical form. */
const isInternal = (config: Config, address: string) => inDomains(address, config.internal_domains);

export { canEncryptTo, canSignWith, usableCertificate } from './methods/certificate-use.js';

/** The store's look-ups by address (the worker memoises them per message). */
export type KeyLookups = Pick<KeyStore, 'certificatesFor' | 'pgpKeysFor'>;

/** Each address looked up once per message: the policy facts and the transforms ask the same. */
export function memoLookups(store: KeyLookups): KeyLookups {
  const certs = new Map<string, ReturnType<KeyStore['certificatesFor']>>();
  const pgp = new Map<string, ReturnType<KeyStore['pgpKeysFor']>>();
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
  const [certs, pgp, groups, attributes] = address
    ? await Promise.all([deps.store.certificatesFor(address), deps.store.pgpKeysFor(address), deps.directory.groupsOf(address), deps.directory.attributesOf(address)])
    : [[], [], [], {}];
  return {
    address,
    internal: address ? isInternal(deps.config, address) : false,
    groups,
    attributes,
    // Each method says from the store's records whether this party has a usable key for it.
    keys: Object.fromEntries(METHODS.map((m) => [m.id, m.keyFacts({ certificates: certs, pgpKeys: pgp }, role, now)])) as PartyFacts['keys'],
  };
}
