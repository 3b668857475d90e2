/**
 * send_keys: the sender's own public keys, as attachments the recipients' clients can import —
 * the S/MIME certificates with their chain as one certs-only bundle (.p7c, RFC 8551 3.7) and the
 * OpenPGP keys as one armored block (.asc). Only keys the sender can actually use are sent: a
 * certificate or key whose private part the store does not hold would invite mail to a key no one
 * here can decrypt. What was asked for and not found is returned for the worker to log; it never
 * stops the mail.
 */
import type { KeyStore, StoredCertificate } from '../keystore/index.js';
import type { Attachment } from '../mime/index.js';
import { armorPublicKeys, parsePgpKeys } from '../openpgp/index.js';
import { certsOnlyBundle, chainOf, usableForEmail } from '../pki/index.js';

export interface SendKeysResult {
  attachments: Attachment[];
  /** One sentence each, in the admin's words: "no S/MIME certificate for alice@example.com". */
  missing: string[];
}

type Store = Pick<KeyStore, 'certificatesFor' | 'listCertificates' | 'pgpKeysFor'>;

/** A file name from the address: path separators and control characters cannot get in. */
function fileName(address: string, ext: string): string {
  return `${address.replace(/[\x00-\x1f\x7f/\\:*?"<>|]/g, '_') || 'keys'}.${ext}`;
}

/** What the sender signs with and partners encrypt to: valid now, not a CA, e-mail use, key held here. */
const usableOwnCertificate = (c: StoredCertificate, now: number): boolean => c.hasPrivateKey && usableForEmail(c, now);

async function smimeBundle(store: Store, sender: string, now: number, missing: string[]): Promise<Attachment | null> {
  const all = await store.certificatesFor(sender);
  const own = all.filter((c) => usableOwnCertificate(c, now));
  if (!own.length) {
    missing.push(
      all.length
        ? `no usable S/MIME certificate for ${sender} (${all.length} stored, but expired, not for e-mail, or without their private key in the store)`
        : `no S/MIME certificate for ${sender}`,
    );
    return null;
  }
  const cas = (await store.listCertificates()).filter((c) => c.isCA);
  const bundle = new Map<string, Buffer>(own.map((c) => [c.fingerprint, c.der]));
  for (const c of own) {
    // Issuers walked already for another of the sender's certificates end the walk: the rest is in.
    const chain = chainOf(c, cas, now, new Set(bundle.keys()));
    for (const up of chain.issuers) bundle.set(up.fingerprint, up.der);
    const at = chain.incompleteAt;
    if (at) missing.push(`the issuer "${at.issuer}" of the S/MIME certificate ${at.fingerprint.slice(0, 16)} of ${sender} is not in the store: the bundle goes without it`);
  }
  return { filename: fileName(sender, 'p7c'), contentType: 'application/pkcs7-mime; smime-type=certs-only', content: certsOnlyBundle([...bundle.values()]) };
}

async function pgpBundle(store: Store, sender: string, now: Date, missing: string[]): Promise<Attachment | null> {
  const all = await store.pgpKeysFor(sender);
  const keys: Buffer[] = [];
  for (const k of all) {
    if (!k.hasSecret) continue;
    // Usability now, from the key's own self-signatures: the stored flags date from its import.
    const [parsed] = (await parsePgpKeys(k.publicKey, { now })).keys;
    if (parsed && !parsed.info.revoked && (parsed.info.canEncrypt || parsed.info.canSign)) keys.push(k.publicKey);
  }
  if (!keys.length) {
    missing.push(all.length ? `no usable OpenPGP key for ${sender} (${all.length} stored, but expired, revoked, or without their secret key in the store)` : `no OpenPGP key for ${sender}`);
    return null;
  }
  return { filename: fileName(sender, 'asc'), contentType: 'application/pgp-keys', content: Buffer.from(await armorPublicKeys(keys), 'utf8') };
}

/** The attachments `send_keys` adds to the sender's message: at most one .p7c and one .asc. */
export async function sendKeysAttachments(store: Store, sender: string, want: { smime: boolean; pgp: boolean }, opts: { now?: Date } = {}): Promise<SendKeysResult> {
  const now = opts.now ?? new Date();
  const missing: string[] = [];
  const attachments: Attachment[] = [];
  if (!sender) return { attachments, missing: want.smime || want.pgp ? ['no keys are sent for the null sender'] : [] };
  if (want.smime) {
    const a = await smimeBundle(store, sender, now.getTime(), missing);
    if (a) attachments.push(a);
  }
  if (want.pgp) {
    const a = await pgpBundle(store, sender, now, missing);
    if (a) attachments.push(a);
  }
  return { attachments, missing };
}
