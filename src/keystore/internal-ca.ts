/**
 * The organisation's internal CA as the keystore keeps it: its certificate is a trust anchor
 * (source "ca"), its key is sealed like any other, and `meta.ca.fingerprint` names it. Issuing for
 * an address stores the new certificate and key at once — the same path `postern ca issue` and
 * the policy's automatic key generation for internal senders take.
 */
import type { Config } from '../config/types.js';
import { createCa, issueSmimeCertificate, parseCertificate, type KeyType } from '../pki/index.js';
import type { SqlKeyStore } from './store.js';
import type { StoredCertificate } from './types.js';

const CA_META = 'ca.fingerprint';
const DAY = 86_400_000;

export class InternalCaError extends Error {
  override readonly name = 'InternalCaError';
}

export async function internalCa(store: SqlKeyStore): Promise<StoredCertificate | undefined> {
  const fp = await store.getMeta(CA_META);
  if (!fp) return undefined;
  return (await store.findCertificate(fp))[0];
}

export async function initCa(store: SqlKeyStore, opts: { commonName: string; organization?: string; keyType?: KeyType; validityDays?: number; actor: string }): Promise<StoredCertificate> {
  const existing = await internalCa(store);
  if (existing) throw new InternalCaError(`the internal CA exists already: ${existing.subject} (${existing.fingerprint.slice(0, 16)})`);
  const made = await createCa({ commonName: opts.commonName, organization: opts.organization, keyType: opts.keyType, validityDays: opts.validityDays });
  const cert = parseCertificate(made.certDer);
  const { certificate } = await store.importCertificate(cert, { source: 'ca', trusted: true, actor: opts.actor });
  await store.importPrivateKey({ pkcs8: made.keyPkcs8, spki: cert.spki, key: cert.key }, { actor: opts.actor });
  made.keyPkcs8.fill(0);
  await store.setMeta(CA_META, cert.fingerprint);
  await store.audit({ actor: opts.actor, action: 'ca-init', object: `cert:${cert.fingerprint}`, detail: cert.subject });
  return { ...certificate, hasPrivateKey: true };
}

/** Issue an S/MIME certificate for `address` from the internal CA and store it with its key. */
export async function issueFromCa(store: SqlKeyStore, config: Config, opts: { address: string; name?: string; keyType?: KeyType; actor: string }): Promise<StoredCertificate> {
  const ca = await internalCa(store);
  if (!ca) throw new InternalCaError('there is no internal CA yet: run `postern ca init` first');
  const caKey = await store.privateKeyFor(ca, 'sign', opts.actor);
  if (!caKey) throw new InternalCaError(`the private key of the internal CA (${ca.fingerprint.slice(0, 16)}) is not in the store`);
  try {
    const issued = await issueSmimeCertificate({
      ca: { certDer: ca.der, keyPkcs8: caKey },
      address: opts.address,
      name: opts.name,
      keyType: opts.keyType ?? config.ca.key_type,
      validityDays: Math.max(1, Math.round(config.ca.validity / DAY)),
      crlUrl: config.ca.crl_url,
    });
    const cert = parseCertificate(issued.certDer);
    const { certificate } = await store.importCertificate(cert, { source: 'ca', actor: opts.actor });
    await store.importPrivateKey({ pkcs8: issued.keyPkcs8, spki: cert.spki, key: cert.key }, { actor: opts.actor });
    issued.keyPkcs8.fill(0);
    await store.audit({ actor: opts.actor, action: 'ca-issue', object: `cert:${cert.fingerprint}`, detail: opts.address });
    return { ...certificate, hasPrivateKey: true };
  } finally {
    caKey.fill(0);
  }
}
