/**
 * What admins do with certificates, in one place for `postern cert` and the admin API (issue 18):
 * import with a verdict per certificate and key (nothing half-imported: a refused certificate
 * leaves the store unchanged), the flags a list shows, the chain a certificate has in the store,
 * its revocation state, and the export of a certificate with its key as a PKCS#12.
 *
 * Untrusted input: the bytes of an import (parsed and checked by pki/, whose errors are one-line
 * PkiErrors without secrets). Secrets: import and export passwords and the unsealed PKCS#8 of an
 * export, zeroed after use; none reaches a report, an error or the audit log.
 */
import { chainOf, checkForImport, exportPkcs12, keyMatchesCertificate, parseCertificate, parseImport, RevocationChecker, type CertInfo, type PrivateKeyInfo, type RevocationResult } from '../pki/index.js';
import { revocationStoreView } from './store-revocation.js';
import type { SqlKeyStore } from './store.js';
import type { ImportStatus, StoredCertificate } from './types.js';

/** One thing to import: its bytes and what to call it in the report (a file name, "body", "key"). */
export interface ImportInput {
  data: Buffer;
  name: string;
}

export interface CertImportResult {
  input: string;
  fingerprint: string;
  subject: string;
  emails: string[];
  isCA: boolean;
  /** `refused`: it broke an import rule (`problems`); the store is unchanged for it. */
  status: ImportStatus | 'refused';
  /** A trust anchor after the import. */
  trusted: boolean;
  problems: string[];
  warnings: string[];
}

export interface KeyImportResult {
  input: string;
  algorithm: string;
  bits?: number;
  curve?: string;
  /** `refused`: it belongs to no certificate given or stored. */
  status: ImportStatus | 'refused';
  /** The certificate it belongs to. */
  fingerprint?: string;
  problem?: string;
}

export interface CertImportReport {
  certificates: CertImportResult[];
  keys: KeyImportResult[];
  /** Inputs that could not be read at all (format, password), with the reason. */
  unreadable: { input: string; problem: string }[];
  /** How many inputs, certificates and keys failed: 0 when all went in. */
  failed: number;
}

/**
 * Import certificates and private keys from any mix of inputs (PEM, DER, PKCS#7, PKCS#12, keys).
 * A key is stored only with a certificate for it, from this import or already in the store;
 * `trust` makes the CA certificates among them trust anchors.
 */
export async function importCertificates(store: SqlKeyStore, inputs: readonly ImportInput[], opts: { password?: string; trust: boolean; actor: string }): Promise<CertImportReport> {
  const report: CertImportReport = { certificates: [], keys: [], unreadable: [], failed: 0 };
  const certs: { input: string; cert: CertInfo }[] = [];
  const keys: { input: string; key: PrivateKeyInfo }[] = [];
  for (const { data, name } of inputs) {
    try {
      const bundle = await parseImport(data, { password: opts.password, filename: name });
      for (const cert of bundle.certificates) certs.push({ input: name, cert });
      for (const key of bundle.keys) keys.push({ input: name, key });
      if (!bundle.certificates.length && !bundle.keys.length) report.unreadable.push({ input: name, problem: 'no certificate or key found' });
    } catch (err) {
      report.unreadable.push({ input: name, problem: (err as Error).message });
    }
  }
  try {
    const stored = keys.length ? (await store.listCertificates()).map((s) => parseCertificate(s.der)) : [];
    for (const { input, cert } of certs) {
      const check = checkForImport(cert, { trust: opts.trust });
      const base = { input, fingerprint: cert.fingerprint, subject: cert.subject, emails: cert.emails, isCA: cert.isCA, problems: check.problems, warnings: check.warnings };
      if (!check.ok) {
        report.certificates.push({ ...base, status: 'refused', trusted: false });
        continue;
      }
      const { status, certificate } = await store.importCertificate(cert, { source: 'import', trusted: opts.trust && cert.isCA, actor: opts.actor });
      report.certificates.push({ ...base, status, trusted: certificate.trusted });
    }
    for (const { input, key } of keys) {
      const describe = { input, algorithm: key.key.algorithm, ...(key.key.bits ? { bits: key.key.bits } : {}), ...(key.key.curve ? { curve: key.key.curve } : {}) };
      // A refused certificate does not vouch for its key: the key must match one that went in or was there.
      const imported = certs.filter((c) => report.certificates.some((r) => r.fingerprint === c.cert.fingerprint && r.status !== 'refused')).map((c) => c.cert);
      const match = [...imported, ...stored].find((c) => keyMatchesCertificate(key, c));
      if (!match) {
        report.keys.push({ ...describe, status: 'refused', problem: 'the private key matches none of the certificates given or stored; not imported' });
        continue;
      }
      report.keys.push({ ...describe, status: await store.importPrivateKey(key, { actor: opts.actor }), fingerprint: match.fingerprint });
    }
  } finally {
    for (const k of keys) k.key.pkcs8.fill(0);
  }
  report.failed = report.unreadable.length + report.certificates.filter((c) => c.status === 'refused').length + report.keys.filter((k) => k.status === 'refused').length;
  return report;
}

/** What a list shows beside each certificate: ca, trusted, key, expired / not-yet-valid, and a flag that needs an admin's eye. */
export function certificateFlags(c: StoredCertificate, now = Date.now()): string[] {
  const f: string[] = [];
  if (c.isCA) f.push('ca');
  if (c.trusted) f.push('trusted');
  if (c.hasPrivateKey) f.push('key');
  if (c.notAfter.getTime() < now) f.push('expired');
  else if (c.notBefore.getTime() > now) f.push('not-yet-valid');
  // Learnt from mail for an address that already had another certificate: an admin should look.
  if (c.flag) f.push(c.flag);
  return f;
}

/**
 * The certificate's chain among the store's CA certificates, each issuer proven by its signature:
 * `anchor` (it is a trust anchor itself), `trusted` (a trust anchor is above it), `untrusted`
 * (complete to a root that is no anchor) or `incomplete` (an issuer is missing from the store).
 */
export interface CertificateChain {
  state: 'anchor' | 'trusted' | 'untrusted' | 'incomplete';
  issuers: StoredCertificate[];
  /** The subject whose issuer is missing, when incomplete. */
  missingIssuerOf?: string;
}

export async function certificateChain(store: SqlKeyStore, cert: StoredCertificate, now = Date.now()): Promise<CertificateChain> {
  const cas = (await store.listCertificates()).filter((c) => c.isCA);
  const { issuers, incompleteAt } = chainOf(cert, cas, now);
  const missing = incompleteAt ? { missingIssuerOf: incompleteAt.subject } : {};
  if (cert.trusted) return { state: 'anchor', issuers, ...missing };
  if (issuers.some((i) => i.trusted)) return { state: 'trusted', issuers };
  return { state: incompleteAt ? 'incomplete' : 'untrusted', issuers, ...missing };
}

/**
 * A checker that asks nobody: the internal CA's own records and the CRLs admins imported, no OCSP
 * and no downloads — for lists, where a time-out per certificate would stall the page.
 */
export function offlineRevocationChecker(store: SqlKeyStore): RevocationChecker {
  const offline = () => Promise.reject(new Error('not fetched: offline check (the store\'s own records and imported CRLs only)'));
  return new RevocationChecker({ fetch: offline, store: revocationStoreView(store), ocsp: false, crl: true });
}

/**
 * The revocation state of each end-entity certificate by fingerprint; null for CA certificates
 * and certificates whose issuer is not in the store. Issuers are looked for among all the store's
 * CA certificates, not only those in `certs`.
 */
export async function revocationStates(store: SqlKeyStore, certs: readonly StoredCertificate[], checker: RevocationChecker): Promise<Map<string, RevocationResult | null>> {
  const out = new Map<string, RevocationResult | null>();
  const cas = (await store.listCertificates()).filter((c) => c.isCA);
  const bySubject = new Map(cas.map((c) => [c.subject, c] as const));
  await Promise.all(
    certs.map(async (c) => {
      const issuer = bySubject.get(c.issuer);
      if (c.isCA || !issuer) return out.set(c.fingerprint, null);
      out.set(c.fingerprint, await checker.check(parseCertificate(c.der), parseCertificate(issuer.der)));
    }),
  );
  return out;
}

/**
 * The certificate with its private key and its chain (so the recipient of the file can use it at
 * once) as a PKCS#12 under `password`; undefined when the store has no key for it. Audited by the
 * store as an export.
 */
export async function exportCertificateWithKey(store: SqlKeyStore, cert: StoredCertificate, password: string, actor: string): Promise<{ pkcs12: Buffer; chain: number } | undefined> {
  const pkcs8 = await store.privateKeyFor(cert, 'export', actor);
  if (!pkcs8) return undefined;
  try {
    const info = parseCertificate(cert.der);
    const { issuers } = await certificateChain(store, cert);
    const pkcs12 = await exportPkcs12({
      key: { pkcs8, spki: info.spki, key: info.key },
      certificates: [info, ...issuers.map((i) => parseCertificate(i.der))],
      password,
      friendlyName: cert.emails[0] ?? cert.subject,
    });
    return { pkcs12, chain: issuers.length };
  } finally {
    pkcs8.fill(0);
  }
}
