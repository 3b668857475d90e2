/**
 * The keystore's part in revocation: CRLs the admin imported (`postern crl import`, signature
 * checked against a CA certificate in the store before it is kept), the revocations of
 * certificates our internal CA issued (`postern ca revoke`), the internal CA's signed CRL built
 * from them (`internalCaCrl`, published as a file by `publishInternalCrl` and served by the portal
 * at `ca.crl_url`), and the view the
 * RevocationChecker reads. `RevocationStore` is a layer of the store's class chain
 * (KeyStoreBase → RevocationStore → CertStore → PdfStore → AdminStore → SqlKeyStore), so it shares the database.
 *
 * Untrusted input: CRL files (parsed and verified by pki/); serials and addresses from the
 * command line, bound as SQL parameters. Secrets: the internal CA's private key, unsealed only
 * to sign a CRL and zeroed after.
 */
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/types.js';
import {
  buildCrl, crlEntryCount, crlTimeProblem, parseCertificate, parseCrl, crlToDer, verifyCrlSignature, CRL_REASON_CODES, RevocationError,
  nodeHttpFetcher, RevocationChecker, RevocationStoreUnavailableError, type CertInfo, type HttpFetcher, type LdapFetcher, type RevocationStoreView,
} from '../pki/index.js';
import { internalCrlFile } from './public.js';
import { isStoreUnavailable } from './sql/types.js';
import { KeyStoreBase, type Row } from './store-base.js';
import type { SqlKeyStore } from './store.js';
import type { StoredCertificate } from './types.js';

export interface StoredCrl {
  id: number;
  issuer: string;
  issuerFingerprint: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: string;
  entries: number;
  der: Buffer;
  /** "import:<file name>" for `postern crl import`. */
  source: string;
  imported: Date;
}

export interface IssuedRevocation {
  issuerFingerprint: string;
  serial: string;
  fingerprint?: string;
  notAfter: Date;
  revokedAt: Date;
  reason?: string;
}

export class RevocationStore extends KeyStoreBase {
  /** Keep a verified CRL; an older one (by thisUpdate) than the one held for the same issuer and source is refused. */
  saveCrl(c: Omit<StoredCrl, 'id' | 'imported'>, actor: string): Promise<'added' | 'updated' | 'older'> {
    return this.transaction(async () => {
      const old = await this.db.get('SELECT id, this_update FROM crls WHERE issuer_fingerprint = ? AND source = ?', [c.issuerFingerprint, c.source]);
      if (old && (old.this_update as number) > c.thisUpdate.getTime()) return 'older' as const;
      if (old) await this.db.run('DELETE FROM crls WHERE id = ?', [old.id as number]);
      await this.db.run(
        'INSERT INTO crls (issuer, issuer_fingerprint, this_update, next_update, crl_number, entries, der, source, imported) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [c.issuer, c.issuerFingerprint, c.thisUpdate.getTime(), c.nextUpdate?.getTime() ?? null, c.crlNumber ?? null, c.entries, c.der, c.source, Date.now()],
      );
      await this.changed('revocation');
      await this.audit({ actor, action: 'crl-import', object: `cert:${c.issuerFingerprint}`, detail: `${c.entries} entries, thisUpdate ${c.thisUpdate.toISOString()}, ${c.source}` });
      return old ? ('updated' as const) : ('added' as const);
    });
  }

  async listCrls(issuerFingerprint?: string): Promise<StoredCrl[]> {
    const rows = issuerFingerprint
      ? await this.db.all('SELECT * FROM crls WHERE issuer_fingerprint = ? ORDER BY this_update DESC', [issuerFingerprint])
      : await this.db.all('SELECT * FROM crls ORDER BY issuer, this_update DESC');
    return rows.map((r) => ({
      id: r.id as number,
      issuer: r.issuer as string,
      issuerFingerprint: r.issuer_fingerprint as string,
      thisUpdate: new Date(r.this_update as number),
      ...(r.next_update != null ? { nextUpdate: new Date(r.next_update as number) } : {}),
      ...(r.crl_number != null ? { crlNumber: r.crl_number as string } : {}),
      entries: r.entries as number,
      der: r.der as Buffer,
      source: r.source as string,
      imported: new Date(r.imported as number),
    }));
  }

  /** Record that our CA revoked a certificate; revoking it again keeps the first date and reason. */
  recordRevocation(r: IssuedRevocation, actor: string): Promise<'added' | 'duplicate'> {
    return this.transaction(async () => {
      const added = await this.db.run(
        'INSERT INTO ca_revocations (issuer_fingerprint, serial, fingerprint, not_after, revoked_at, reason) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        [r.issuerFingerprint, r.serial, r.fingerprint ?? null, r.notAfter.getTime(), r.revokedAt.getTime(), r.reason ?? null],
      );
      if (!added) return 'duplicate' as const;
      await this.changed('revocation');
      await this.audit({ actor, action: 'ca-revoke', object: `cert:${r.fingerprint ?? `serial:${r.serial}`}`, detail: `serial ${r.serial}${r.reason ? `, ${r.reason}` : ''}` });
      return 'added' as const;
    });
  }

  async revocationsBy(issuerFingerprint: string): Promise<IssuedRevocation[]> {
    return (await this.db.all('SELECT * FROM ca_revocations WHERE issuer_fingerprint = ? ORDER BY revoked_at', [issuerFingerprint])).map(toRevocation);
  }

  async revocationOf(issuerFingerprint: string, serial: string): Promise<IssuedRevocation | undefined> {
    const r = await this.db.get('SELECT * FROM ca_revocations WHERE issuer_fingerprint = ? AND serial = ?', [issuerFingerprint, serial]);
    return r ? toRevocation(r) : undefined;
  }
}

function toRevocation(r: Row): IssuedRevocation {
  return {
    issuerFingerprint: r.issuer_fingerprint as string,
    serial: r.serial as string,
    ...(r.fingerprint ? { fingerprint: r.fingerprint as string } : {}),
    notAfter: new Date(r.not_after as number),
    revokedAt: new Date(r.revoked_at as number),
    ...(r.reason ? { reason: r.reason as string } : {}),
  };
}

// ---------------------------------------------------------------- operations on the whole store

const CA_META = 'ca.fingerprint';

/** The checker's view of the store: imported CRLs by issuer, and our CA's own revocations (authoritative). */
export function revocationStoreView(store: SqlKeyStore): RevocationStoreView {
  return {
    importedCrls: async (issuer) => (await store.listCrls(issuer.fingerprint)).map((c) => ({ der: c.der, source: c.source })),
    localStatus: async (cert, issuer) => {
      if ((await store.getMeta(CA_META)) !== issuer.fingerprint) return undefined;
      const r = await store.revocationOf(issuer.fingerprint, cert.serial);
      return r ? { revoked: true, revokedAt: r.revokedAt, ...(r.reason ? { reason: r.reason } : {}) } : { revoked: false };
    },
    // Asked only when an indirect CRL is downloaded (rare): a scan is cheap enough.
    certificatesBySubject: async (subject) => (await store.listCertificates()).filter((c) => c.subject === subject).map((c) => parseCertificate(c.der)),
  };
}

/**
 * The checker as the config says (one per process: its caches are the point), reading this store.
 * `ldap` reads ldap:// distribution points (the composition root passes directory's
 * ldapCrlFetcher); without it they are reported as not fetched.
 */
/** The view whose unreachable store stops the check (RevocationStoreUnavailableError, its cause kept for isStoreUnavailable). */
function failingClosed(v: RevocationStoreView): RevocationStoreView {
  const local = v.localStatus?.bind(v);
  if (!local) return v;
  return {
    ...v,
    localStatus: (cert, issuer) =>
      local(cert, issuer).catch((err: unknown) => {
        throw isStoreUnavailable(err) ? new RevocationStoreUnavailableError(`the keystore cannot be reached: ${(err as Error).message}`, { cause: err }) : err;
      }),
  };
}

export function revocationCheckerFor(
  config: Config,
  store: SqlKeyStore,
  fetch: HttpFetcher = nodeHttpFetcher(),
  ldap?: LdapFetcher,
  /** The view through a cache (the worker's StoreLookups); default: the store's own. */
  view: (v: RevocationStoreView) => RevocationStoreView = (v) => v,
): RevocationChecker {
  const r = config.revocation;
  return new RevocationChecker({ fetch, ...(ldap ? { ldap } : {}), store: failingClosed(view(revocationStoreView(store))), timeoutMs: r.timeout, ocsp: r.ocsp, crl: r.crl, cacheTtlMs: r.cache_ttl });
}

/**
 * Import a CRL file (PEM or DER): kept only when a CA certificate in the store with the CRL's
 * issuer name verifies its signature and it has not expired.
 */
export async function importCrl(store: SqlKeyStore, data: Buffer, opts: { source: string; actor: string; now?: Date }): Promise<{ status: 'added' | 'updated' | 'older'; crl: StoredCrl; issuer: StoredCertificate }> {
  const crl = parseCrl(crlToDer(data));
  const now = opts.now ?? new Date();
  const cas = (await store.listCertificates()).filter((c) => c.isCA && c.subject === crl.issuer);
  if (!cas.length) throw new RevocationError(`no CA certificate for ${crl.issuer} in the store: import it first (postern cert import CA.pem)`);
  let issuer: StoredCertificate | undefined;
  const problems: string[] = [];
  for (const ca of cas) {
    const bad = await verifyCrlSignature(crl, parseCertificate(ca.der));
    if (!bad) {
      issuer = ca;
      break;
    }
    problems.push(bad);
  }
  if (!issuer) throw new RevocationError(`the CRL is refused: ${problems.join('; ')}`);
  const t = crlTimeProblem(crl, now, 5 * 60_000);
  if (t) throw new RevocationError(`the CRL is refused: ${t}`);
  const rec = {
    issuer: crl.issuer, issuerFingerprint: issuer.fingerprint, thisUpdate: crl.thisUpdate, entries: crlEntryCount(crl), der: crl.der, source: opts.source,
    ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
    ...(crl.crlNumber !== undefined ? { crlNumber: crl.crlNumber.toString() } : {}),
  };
  const status = await store.saveCrl(rec, opts.actor);
  const saved = (await store.listCrls(issuer.fingerprint)).find((c) => c.source === opts.source)!;
  return { status, crl: saved, issuer };
}

async function requireCa(store: SqlKeyStore): Promise<{ stored: StoredCertificate; info: CertInfo }> {
  const fp = await store.getMeta(CA_META);
  const stored = fp ? (await store.findCertificate(fp))[0] : undefined;
  if (!stored) throw new RevocationError('there is no internal CA yet: run `postern ca init` first');
  return { stored, info: parseCertificate(stored.der) };
}

/** Whether `c` was issued by our CA: its issuer name, and its authority key id when it has one. */
function issuedBy(c: StoredCertificate, ca: { stored: StoredCertificate; info: CertInfo }): boolean {
  if (c.fingerprint === ca.stored.fingerprint || c.issuer !== ca.info.subject) return false;
  const aki = parseCertificate(c.der).authorityKeyId;
  return !aki || !ca.info.subjectKeyId || aki === ca.info.subjectKeyId;
}

/**
 * `postern ca revoke ADDRESS|SERIAL`: revoke every certificate our CA issued for the address, or
 * the one with that serial (hex, colons allowed). Certificates from other issuers are refused:
 * only their CA can revoke them.
 */
export async function revokeFromCa(store: SqlKeyStore, target: string, opts: { reason?: string; actor: string; now?: Date }): Promise<{ certificate: StoredCertificate; status: 'added' | 'duplicate' }[]> {
  if (opts.reason !== undefined && (CRL_REASON_CODES[opts.reason] === undefined || opts.reason === 'removeFromCRL' || opts.reason === 'certificateHold')) {
    throw new RevocationError(`unknown revocation reason ${JSON.stringify(opts.reason)}; one of ${Object.keys(CRL_REASON_CODES).filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold').join(', ')}`);
  }
  const ca = await requireCa(store);
  let targets: StoredCertificate[];
  if (target.includes('@')) {
    targets = (await store.certificatesFor(target)).filter((c) => issuedBy(c, ca));
    if (!targets.length) throw new RevocationError(`the internal CA issued no certificate for ${target} (that is in the store)`);
  } else {
    const serial = target.toLowerCase().replace(/[:\s]/g, '').replace(/^0x/, '').replace(/^0+(?=.)/, '');
    if (!/^[0-9a-f]+$/.test(serial)) throw new RevocationError(`${JSON.stringify(target)} is neither an address nor a hex serial number`);
    targets = (await store.listCertificates()).filter((c) => c.serial === serial && issuedBy(c, ca));
    if (!targets.length) throw new RevocationError(`the internal CA issued no certificate with serial ${serial} (that is in the store)`);
  }
  const revokedAt = opts.now ?? new Date();
  const reason = opts.reason && opts.reason !== 'unspecified' ? opts.reason : undefined;
  const out: { certificate: StoredCertificate; status: 'added' | 'duplicate' }[] = [];
  for (const c of targets) {
    const status = await store.recordRevocation({ issuerFingerprint: ca.stored.fingerprint, serial: c.serial, fingerprint: c.fingerprint, notAfter: c.notAfter, revokedAt, ...(reason ? { reason } : {}) }, opts.actor);
    out.push({ certificate: c, status });
  }
  return out;
}

/** How long the internal CA's CRL is valid; the portal should serve a fresh one well within it. */
export const INTERNAL_CRL_VALIDITY_MS = 7 * 86_400_000;

/**
 * The internal CA's CRL (DER), signed now, listing every revocation recorded (RFC 5280 allows
 * dropping expired certificates; we keep them: the list stays small and a late check still sees
 * the revocation). The CRL number is the thisUpdate in milliseconds: it grows with every CRL
 * without shared state, also across nodes. Signing unseals the CA key (audited as use-sign):
 * publishInternalCrl writes the result to a file, so the portal needs neither the key nor the KEK.
 */
export async function internalCaCrl(store: SqlKeyStore, _config: Config, opts: { now?: Date; validityMs?: number; actor?: string } = {}): Promise<Buffer> {
  const ca = await requireCa(store);
  const now = opts.now ?? new Date();
  const key = await store.privateKeyFor(ca.stored, 'sign', opts.actor ?? 'portal');
  if (!key) throw new RevocationError(`the private key of the internal CA (${ca.stored.fingerprint.slice(0, 16)}) is not in the store`);
  try {
    const entries = (await store.revocationsBy(ca.stored.fingerprint)).map((r) => ({ serial: r.serial, revokedAt: r.revokedAt, ...(r.reason ? { reason: r.reason } : {}) }));
    return await buildCrl({
      issuer: ca.info, issuerKey: key, entries, thisUpdate: now,
      nextUpdate: new Date(now.getTime() + (opts.validityMs ?? INTERNAL_CRL_VALIDITY_MS)), crlNumber: BigInt(now.getTime()),
    });
  } finally {
    key.fill(0);
  }
}

// Defined with the other public files, which the portal imports without the rest of the keystore.
export { internalCrlFile };

/**
 * Sign a fresh CRL of the internal CA and write it (atomically) where the portal serves it from;
 * false when there is no internal CA. Run by `postern start`, daily by the supervisor (a CRL is
 * valid INTERNAL_CRL_VALIDITY_MS) and by the CA commands — never by the Internet-facing portal,
 * which holds no KEK.
 */
export async function publishInternalCrl(store: SqlKeyStore, config: Config, opts: { actor?: string } = {}): Promise<boolean> {
  if (!(await store.getMeta(CA_META))) return false;
  const der = await internalCaCrl(store, config, { actor: opts.actor ?? 'supervisor' });
  const file = internalCrlFile(config);
  // Public data the dropped portal must read: modes set explicitly, whatever the umask (077 on a
  // hardened host would otherwise make the directory and file root's alone).
  const made = await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  if (made) await chmod(dirname(file), 0o755);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, der, { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, file);
  return true;
}

/**
 * Revoke as revokeFromCa does and publish the CRL at once, so the portal serves the revocation
 * from its next request on: what `postern ca revoke` and the admin API do.
 */
export async function revokeAndPublish(
  store: SqlKeyStore,
  config: Config,
  target: string,
  opts: { reason?: string; actor: string },
): Promise<{ certificate: StoredCertificate; status: 'added' | 'duplicate' }[]> {
  const revoked = await revokeFromCa(store, target, opts);
  await publishInternalCrl(store, config, { actor: opts.actor });
  return revoked;
}
