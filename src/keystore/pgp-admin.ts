/**
 * What admins do with OpenPGP keys, in one place for `postern pgp` and the admin API (issue 18):
 * import (keys, keyrings, or a revocation certificate applied to the stored key it names) with a
 * verdict per key, the flags a list shows, and the export of a secret key under a passphrase.
 *
 * Untrusted input: the bytes of an import (parsed by openpgp/; its problems are one line each).
 * Secrets: import and export passphrases and the unsealed secret key of an export, zeroed after
 * use; none reaches a report, an error or the audit log.
 */
import { applyRevocationCertificate, exportSecretKey, parsePgpKeys, revocationCertificateIssuer } from '../openpgp/index.js';
import type { ImportInput } from './cert-admin.js';
import type { SqlKeyStore } from './store.js';
import type { ImportStatus, StoredPgpKey } from './types.js';

export interface PgpImportResult {
  input: string;
  fingerprint: string;
  userIds: string[];
  /** `revoked`: a revocation certificate, applied to the stored key. */
  status: ImportStatus | 'revoked';
  hasSecret: boolean;
  warnings: string[];
}

export interface PgpImportReport {
  keys: PgpImportResult[];
  /** What could not be imported, one line each (a wrong passphrase, an unreadable block …). */
  problems: { input: string; problem: string }[];
}

/** Import every key in each input; a revocation certificate alone is applied to the key it names. */
export async function importPgpKeys(store: SqlKeyStore, inputs: readonly ImportInput[], opts: { passphrase?: string; actor: string }): Promise<PgpImportReport> {
  const report: PgpImportReport = { keys: [], problems: [] };
  for (const { data, name } of inputs) {
    try {
      const issuer = await revocationCertificateIssuer(data);
      if (issuer) {
        await importRevocation(store, report, name, data, issuer, opts.actor);
        continue;
      }
      const { keys, problems } = await parsePgpKeys(data, { passphrase: opts.passphrase });
      for (const p of problems) report.problems.push({ input: name, problem: p });
      if (!keys.length && !problems.length) report.problems.push({ input: name, problem: 'no OpenPGP key found' });
      for (const k of keys) {
        try {
          const { status } = await store.importPgpKey(k, { source: 'import', actor: opts.actor });
          const warnings = k.info.canEncrypt ? [] : [`not usable for encryption: ${k.info.encryptProblem ?? 'no usable encryption subkey'}`];
          report.keys.push({ input: name, fingerprint: k.info.fingerprint, userIds: k.info.userIds, status, hasSecret: !!k.secretKey, warnings });
        } finally {
          k.secretKey?.fill(0);
        }
      }
    } catch (err) {
      report.problems.push({ input: name, problem: (err as Error).message });
    }
  }
  return report;
}

/** A revocation certificate alone (gpg --gen-revoke): applied to the stored key it names, merged in by the store. */
async function importRevocation(store: SqlKeyStore, report: PgpImportReport, input: string, data: Buffer, issuer: string, actor: string): Promise<void> {
  const [k, ...more] = await store.findPgpKey(issuer);
  if (!k || more.length) {
    report.problems.push({ input, problem: `a revocation certificate for ${issuer}, but the store has ${k ? 'several such keys' : 'no such key'}` });
    return;
  }
  const { key } = await store.importPgpKey(await applyRevocationCertificate(k.publicKey, data), { source: k.source, actor });
  report.keys.push({ input, fingerprint: key.info.fingerprint, userIds: key.info.userIds, status: 'revoked', hasSecret: key.hasSecret, warnings: [] });
}

/** What a list shows beside each key: secret, revoked / expired, encrypt, sign. */
export function pgpKeyFlags(k: StoredPgpKey, now = Date.now()): string[] {
  const f: string[] = [];
  if (k.hasSecret) f.push('secret');
  if (k.info.revoked) f.push('revoked');
  else if (k.info.expires && k.info.expires.getTime() < now) f.push('expired');
  if (k.info.canEncrypt) f.push('encrypt');
  if (k.info.canSign) f.push('sign');
  return f;
}

/** The secret key, armored and protected by `passphrase`; undefined when the store has none. Audited by the store as an export. */
export async function exportPgpSecretKey(store: SqlKeyStore, key: StoredPgpKey, passphrase: string, actor: string): Promise<string | undefined> {
  const secret = await store.pgpSecretKey(key, 'export', actor);
  if (!secret) return undefined;
  try {
    return await exportSecretKey(secret, passphrase);
  } finally {
    secret.fill(0);
  }
}
