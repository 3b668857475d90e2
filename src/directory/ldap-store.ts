/**
 * The gateway's order for a recipient's certificate: the store first, then LDAP, then policy
 * decides. This is the LDAP step: what the directory holds for the address is stored with source
 * "ldap" (so `postern cert list` shows where it came from, and the next mail finds it in the
 * store), and the certificates usable to encrypt to now are returned.
 *
 * Untrusted input: none of its own — the certificates were parsed, checked against the import
 * rules and bound to the address by ldap.ts.
 */
import type { CertSource, ImportStatus, StoredCertificate } from '../keystore/index.js';
import type { CertInfo } from '../pki/index.js';

/** The part of the keystore this needs (KeyStore fits). */
export interface LdapCertStore {
  importCertificate(cert: CertInfo, opts: { source: CertSource; actor: string }): Promise<{ status: ImportStatus; certificate: StoredCertificate }>;
}

const EKU_EMAIL = '1.3.6.1.5.5.7.3.4';
const EKU_ANY = '2.5.29.37.0';

/**
 * Valid now, end-entity, e-mail EKU (or none), key usage allows key transport or agreement (or
 * says nothing): the same test the worker applies to what the store holds.
 */
export function usableForEncryption(c: StoredCertificate, now = Date.now()): boolean {
  if (c.isCA || c.notBefore.getTime() > now || c.notAfter.getTime() < now) return false;
  if (c.extKeyUsage && !c.extKeyUsage.includes(EKU_EMAIL) && !c.extKeyUsage.includes(EKU_ANY)) return false;
  return !c.keyUsage || c.keyUsage.includes('keyEncipherment') || c.keyUsage.includes('keyAgreement');
}

/**
 * Look `address` up, store what is found (source "ldap"; a certificate already stored stays as
 * it was), and return the stored certificates usable for encryption, newest first. Throws
 * LdapUnavailableError when the directory cannot answer (the caller applies on_failure).
 */
export async function lookUpAndStoreCertificates(
  dir: { certificatesOf(address: string): Promise<CertInfo[]> },
  store: LdapCertStore,
  address: string,
  opts: { now?: number; actor?: string } = {},
): Promise<StoredCertificate[]> {
  const now = opts.now ?? Date.now();
  const found = await dir.certificatesOf(address);
  const stored: StoredCertificate[] = [];
  for (const cert of found) {
    const { certificate } = await store.importCertificate(cert, { source: 'ldap', actor: opts.actor ?? 'ldap' });
    stored.push(certificate);
  }
  return stored.filter((c) => usableForEncryption(c, now)).sort((a, b) => b.notBefore.getTime() - a.notBefore.getTime());
}
