/**
 * send_keys: the sender's own public keys, as attachments the recipients' clients can import —
 * the S/MIME certificates with their chain as one certs-only bundle (.p7c, RFC 8551 3.7) and the
 * OpenPGP keys as one armored block (.asc). Only keys the sender can actually use are sent: a
 * certificate or key whose private part the store does not hold would invite mail to a key no one
 * here can decrypt. What was asked for and not found is returned for the worker to log; it never
 * stops the mail.
 */
import { X509Certificate } from 'node:crypto';
import type { KeyStore, StoredCertificate } from '../keystore/index.js';
import type { Attachment } from '../mime/index.js';
import { armorPublicKeys, parsePgpKeys } from '../openpgp/index.js';
import { certsOnlyBundle, EKU_ANY, EKU_EMAIL_PROTECTION, parseCertificate } from '../pki/index.js';

export interface SendKeysResult {
  attachments: Attachment[];
  /** One sentence each, in the admin's words: "no S/MIME certificate for alice@example.com". */
  missing: string[];
}

type Store = Pick<KeyStore, 'certificatesFor' | 'listCertificates' | 'pgpKeysFor'>;

/** Deep enough for any real hierarchy; stops a loop of cross-certificates. */
const MAX_CHAIN = 8;

/** A file name from the address: path separators and control characters cannot get in. */
function fileName(address: string, ext: string): string {
  return `${address.replace(/[\x00-\x1f\x7f/\\:*?"<>|]/g, '_') || 'keys'}.${ext}`;
}

/** What the sender signs with and partners encrypt to: valid now, not a CA, e-mail use, key held here. */
function usableOwnCertificate(c: StoredCertificate, now: number): boolean {
  if (c.isCA || !c.hasPrivateKey || c.notBefore.getTime() > now || c.notAfter.getTime() < now) return false;
  return !c.extKeyUsage || c.extKeyUsage.includes(EKU_EMAIL_PROTECTION) || c.extKeyUsage.includes(EKU_ANY);
}

/** RFC 4514 strings from the same printer: equal up to case (RFC 5280 7.1 compares caseless). */
const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * The issuer of `cert` among the store's CA certificates: the name must match, the key
 * identifiers too when both are present, and the issuer's key must verify the signature — a
 * name alone could be any CA's. Among several (a renewed CA), the trusted and current one first.
 */
function issuerOf(cert: Buffer, cas: readonly StoredCertificate[], now: number): StoredCertificate | undefined {
  const info = parseCertificate(cert);
  const x509 = new X509Certificate(cert);
  const rank = (c: StoredCertificate) => (c.trusted ? 2 : 0) + (c.notBefore.getTime() <= now && c.notAfter.getTime() >= now ? 1 : 0);
  return cas
    .filter((ca) => sameName(ca.subject, info.issuer))
    .filter((ca) => !info.authorityKeyId || !ca.subjectKeyId || ca.subjectKeyId.toLowerCase() === info.authorityKeyId.toLowerCase())
    .filter((ca) => {
      try {
        return x509.verify(new X509Certificate(ca.der).publicKey);
      } catch {
        return false;
      }
    })
    .sort((a, b) => rank(b) - rank(a) || b.notAfter.getTime() - a.notAfter.getTime())[0];
}

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
    let at: StoredCertificate = c;
    for (let depth = 0; depth < MAX_CHAIN && !sameName(at.subject, at.issuer); depth++) {
      const up = issuerOf(at.der, cas, now);
      if (!up) {
        missing.push(`the issuer "${at.issuer}" of the S/MIME certificate ${at.fingerprint.slice(0, 16)} of ${sender} is not in the store: the bundle goes without it`);
        break;
      }
      // Walked already for another of the sender's certificates: the rest of the chain is in.
      if (bundle.has(up.fingerprint)) break;
      bundle.set(up.fingerprint, up.der);
      at = up;
    }
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
