/**
 * The keystore, part 2: certificates and their private keys (linked by public key, so a
 * renewed certificate with the same key finds it).
 */
import type { CertInfo, PrivateKeyInfo } from '../pki/index.js';
import { addressKey, sha256, type Row } from './store-base.js';
import { RevocationStore } from './store-revocation.js';
import type { CertSource, ImportStatus, StoredCertificate } from './types.js';

export class CertStore extends RevocationStore {
  // ---- certificates ------------------------------------------------------------------------------

  importCertificate(cert: CertInfo, opts: { source: CertSource; trusted?: boolean; actor: string; flag?: string }): Promise<{ status: ImportStatus; certificate: StoredCertificate }> {
    // The transaction is serialised against every writer on every node (sql/types.ts), so two
    // imports of one certificate at once find it in turn: the second sees a duplicate.
    return this.transaction(async () => {
      const existing = await this.certificateRow(cert.fingerprint);
      if (existing) {
        // Re-importing a CA with --trust makes it an anchor; nothing else changes on a duplicate.
        if (opts.trusted && !existing.trusted) {
          await this.db.run('UPDATE certificates SET trusted = 1 WHERE id = ?', [existing.id]);
          await this.changed('certificates');
          await this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: 'now trusted' });
          return { status: 'updated' as const, certificate: (await this.certificateRow(cert.fingerprint))! };
        }
        return { status: 'duplicate' as const, certificate: existing };
      }
      const row = await this.db.get(
        `INSERT INTO certificates (fingerprint, der, subject, issuer, serial, not_before, not_after, key_usage, ext_key_usage,
           is_ca, trusted, key_algorithm, key_bits, key_curve, spki_sha256, subject_key_id, source, first_seen, flag)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
        [
          cert.fingerprint,
          cert.der,
          cert.subject,
          cert.issuer,
          cert.serial,
          cert.notBefore.getTime(),
          cert.notAfter.getTime(),
          cert.keyUsage ? JSON.stringify(cert.keyUsage) : null,
          cert.extKeyUsage ? JSON.stringify(cert.extKeyUsage) : null,
          cert.isCA ? 1 : 0,
          opts.trusted ? 1 : 0,
          cert.key.algorithm,
          cert.key.bits ?? null,
          cert.key.curve ?? null,
          sha256(cert.spki),
          cert.subjectKeyId ?? null,
          opts.source,
          Date.now(),
          opts.flag ?? null,
        ],
      );
      const id = Number(row!.id);
      // In the certificate's order (the rows' insertion order is how they are read back).
      for (const e of cert.emails) {
        await this.db.run('INSERT INTO certificate_addresses (certificate_id, address, address_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [id, e, addressKey(e)]);
      }
      await this.changed('certificates');
      await this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: `source ${opts.source}${opts.trusted ? ', trusted' : ''}` });
      return { status: 'added' as const, certificate: (await this.certificateRow(cert.fingerprint))! };
    });
  }

  importPrivateKey(key: PrivateKeyInfo, opts: { actor: string }): Promise<ImportStatus> {
    const spki = sha256(key.spki);
    return this.transaction(async () => {
      if (await this.db.get('SELECT 1 AS found FROM private_keys WHERE spki_sha256 = ?', [spki])) return 'duplicate' as const;
      const secretId = await this.insertSecret('x509-key', key.pkcs8);
      await this.db.run('INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES (?, ?, ?, ?)', [spki, key.key.algorithm, secretId, Date.now()]);
      // A certificate's hasPrivateKey changes with it: the look-up caches must hear of it.
      await this.changed('certificates');
      await this.audit({ actor: opts.actor, action: 'import', object: `key:${spki}` });
      return 'added' as const;
    });
  }

  /** The unencrypted PKCS#8 private key of a certificate, or undefined; audited as a use. */
  async privateKeyFor(cert: Pick<StoredCertificate, 'spkiSha256' | 'fingerprint'>, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = await this.db.get('SELECT secret_id FROM private_keys WHERE spki_sha256 = ?', [cert.spkiSha256]);
    if (!r) return undefined;
    const key = await this.readSecret(r.secret_id as number);
    await this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `cert:${cert.fingerprint}` });
    return key;
  }

  protected async certificateRow(fingerprint: string): Promise<StoredCertificate | undefined> {
    return (await this.certificates('WHERE c.fingerprint = ?', [fingerprint]))[0];
  }

  /**
   * Certificates with their addresses, in one query (a round trip per row would cost more than
   * the query itself, on PostgreSQL most of all): one row per certificate and address, folded
   * here. `where` and `order` name the certificate as `c`; `join` may add tables to filter by.
   */
  private async certificates(where: string, params: (string | number)[], order = 'c.id', join = ''): Promise<StoredCertificate[]> {
    const rows = await this.db.all(`${CERT_SELECT} ${join} ${where} ORDER BY ${order}, c.id, e.rowid`, params);
    const byId = new Map<number, StoredCertificate>();
    for (const r of rows) {
      const id = r.id as number;
      let c = byId.get(id);
      if (!c) byId.set(id, (c = toCertificate(r)));
      if (r.email != null) c.emails.push(r.email as string);
    }
    return [...byId.values()];
  }

  /** Certificates for an address (case-insensitive), newest first. */
  async certificatesFor(address: string): Promise<StoredCertificate[]> {
    return this.certificates('WHERE a.address_key = ?', [addressKey(address)], 'c.not_before DESC', 'JOIN certificate_addresses a ON a.certificate_id = c.id');
  }

  async listCertificates(filter: { address?: string } = {}): Promise<StoredCertificate[]> {
    if (filter.address) return this.certificatesFor(filter.address);
    return this.certificates('', []);
  }

  /** By full fingerprint or an unambiguous prefix (at least 8 hex digits). */
  async findCertificate(fingerprintPrefix: string): Promise<StoredCertificate[]> {
    const p = fingerprintPrefix.toLowerCase().replace(/:/g, '');
    if (!/^[0-9a-f]{8,64}$/.test(p)) return [];
    // Not LIKE: it ignores case in SQLite and not in PostgreSQL.
    return this.certificates('WHERE substr(c.fingerprint, 1, ?) = ?', [p.length, p]);
  }

  /** Certificates whose private key we hold, by serial (lower-case hex) or subject key id: the candidates for a CMS RecipientInfo. */
  async keyCertificates(ids: { serial?: string; subjectKeyId?: string }[]): Promise<StoredCertificate[]> {
    const lookups = ids.flatMap((id) => [
      ...(id.serial ? [this.certificates('WHERE c.serial = ?', [id.serial])] : []),
      ...(id.subjectKeyId ? [this.certificates('WHERE c.subject_key_id = ?', [id.subjectKeyId])] : []),
    ]);
    const found = new Map<string, StoredCertificate>();
    for (const certs of await Promise.all(lookups)) for (const c of certs) if (c.hasPrivateKey) found.set(c.fingerprint, c);
    return [...found.values()];
  }

  /** Changes whenever a CA certificate is added, removed or trusted: lets callers cache the trust store safely. */
  async caGeneration(): Promise<string> {
    const r = (await this.db.get('SELECT count(*) AS n, max(id) AS m, sum(trusted) AS t FROM certificates WHERE is_ca = 1'))!;
    // PostgreSQL's count and sum are BIGINT/NUMERIC: the text is the same as SQLite's either way.
    return `${Number(r.n)}:${r.m ?? null}:${r.t == null ? null : Number(r.t)}`;
  }

  /** CA certificates that are not anchors: intermediates to build chains with. */
  async chainCertificates(): Promise<StoredCertificate[]> {
    return this.certificates('WHERE c.is_ca = 1 AND c.trusted = 0', []);
  }

  /**
   * A certificate learnt from a valid signature on incoming mail (RFC 8550 auto-import). New for
   * an address that already had another certificate: stored, but flagged "key-change" and audited,
   * since a silent swap of a correspondent's key is how an attacker would read their mail.
   */
  async learnCertificate(cert: CertInfo, opts: { actor: string }): Promise<{ status: ImportStatus; keyChange: boolean; certificate: StoredCertificate }> {
    const known = await this.certificateRow(cert.fingerprint);
    if (known) return { status: 'duplicate', keyChange: false, certificate: known };
    const others = cert.isCA
      ? []
      : (await Promise.all(
          cert.emails.map((e) =>
            this.db.all('SELECT c.fingerprint FROM certificates c JOIN certificate_addresses a ON a.certificate_id = c.id WHERE a.address_key = ? AND c.is_ca = 0', [addressKey(e)]),
          ),
        )).flat();
    const keyChange = others.length > 0;
    // Two workers (or nodes) learning the same certificate at once: importCertificate's
    // transaction makes the second a duplicate; at worst the key change is audited twice.
    const { status, certificate } = await this.importCertificate(cert, { source: 'mail', actor: opts.actor, ...(keyChange ? { flag: 'key-change' } : {}) });
    if (keyChange && status === 'added') {
      await this.audit({ actor: opts.actor, action: 'key-change', object: `cert:${cert.fingerprint}`, detail: `new certificate from mail for ${cert.emails.join(', ')}; known before: ${[...new Set(others.map((o) => o.fingerprint as string))].join(', ')}` });
    }
    return { status, keyChange, certificate };
  }

  /**
   * Remember what a correspondent's signature said it can decrypt (the newest signature wins).
   * No change counter: capabilities are read where they are used, not cached, and this runs for
   * every signed message.
   */
  async setCapabilities(certificateFingerprint: string, capabilities: unknown): Promise<void> {
    const text = JSON.stringify(capabilities);
    const r = await this.db.get('SELECT c.id, s.capabilities FROM certificates c LEFT JOIN smime_capabilities s ON s.certificate_id = c.id WHERE c.fingerprint = ?', [certificateFingerprint]);
    if (!r) return;
    // A correspondent's client says the same with every mail: only a new answer is a change that
    // the workers' cached look-ups must hear of (one per signature would empty them cluster-wide).
    if (r.capabilities === text) {
      await this.db.run('UPDATE smime_capabilities SET seen = ? WHERE certificate_id = ?', [Date.now(), r.id as number]);
      return;
    }
    await this.transaction(async () => {
      await this.db.run(
        'INSERT INTO smime_capabilities (certificate_id, capabilities, seen) VALUES (?, ?, ?) ON CONFLICT (certificate_id) DO UPDATE SET capabilities = excluded.capabilities, seen = excluded.seen',
        [r.id as number, text, Date.now()],
      );
      await this.changed('certificates');
    });
  }

  async capabilitiesOf(certificateFingerprint: string): Promise<unknown | undefined> {
    const r = await this.db.get('SELECT s.capabilities FROM smime_capabilities s JOIN certificates c ON c.id = s.certificate_id WHERE c.fingerprint = ?', [certificateFingerprint]);
    return r ? (JSON.parse(r.capabilities as string) as unknown) : undefined;
  }

  async trustAnchors(): Promise<StoredCertificate[]> {
    return this.certificates('WHERE c.trusted = 1', []);
  }

  /**
   * Make a stored CA certificate a trust anchor or stop it being one; false when it already was
   * what was asked. Only CA certificates: an end-entity certificate is believed through its chain.
   */
  setTrusted(fingerprint: string, trusted: boolean, actor: string): Promise<boolean> {
    return this.transaction(async () => {
      const changed = (await this.db.run('UPDATE certificates SET trusted = ? WHERE fingerprint = ? AND is_ca = 1 AND trusted <> ?', [trusted ? 1 : 0, fingerprint, trusted ? 1 : 0])) > 0;
      if (changed) {
        await this.changed('certificates');
        await this.audit({ actor, action: trusted ? 'trust' : 'distrust', object: `cert:${fingerprint}` });
      }
      return changed;
    });
  }

  /** Delete a certificate; its private key too when no other certificate shares it and `withKey`. */
  deleteCertificate(cert: StoredCertificate, opts: { withKey: boolean; actor: string }): Promise<{ keyDeleted: boolean }> {
    return this.transaction(async () => {
      await this.db.run('DELETE FROM certificates WHERE id = ?', [cert.id]);
      let keyDeleted = false;
      const shared = await this.db.get('SELECT 1 AS found FROM certificates WHERE spki_sha256 = ?', [cert.spkiSha256]);
      if (opts.withKey && !shared) keyDeleted = await this.deletePrivateKey(cert.spkiSha256);
      await this.changed('certificates');
      await this.audit({ actor: opts.actor, action: 'delete', object: `cert:${cert.fingerprint}`, detail: keyDeleted ? 'with private key' : undefined });
      return { keyDeleted };
    });
  }

  private async deletePrivateKey(spki: string): Promise<boolean> {
    const r = await this.db.get('SELECT id, secret_id FROM private_keys WHERE spki_sha256 = ?', [spki]);
    if (!r) return false;
    await this.db.run('DELETE FROM private_keys WHERE id = ?', [r.id as number]);
    await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [r.secret_id as number]);
    return true;
  }
}

/** One row per certificate and address (none: one row, email null); `e.rowid` orders the addresses as imported (schema-pg.ts gives PostgreSQL that column). */
const CERT_SELECT = `SELECT c.*, CASE WHEN EXISTS (SELECT 1 FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256) THEN 1 ELSE 0 END AS has_key,
  e.address AS email FROM certificates c LEFT JOIN certificate_addresses e ON e.certificate_id = c.id`;

/** A certificate row without its addresses (certificates() adds them). */
function toCertificate(r: Row): StoredCertificate {
  return {
    id: r.id as number,
    fingerprint: r.fingerprint as string,
    der: r.der as Buffer,
    subject: r.subject as string,
    issuer: r.issuer as string,
    serial: r.serial as string,
    emails: [],
    notBefore: new Date(r.not_before as number),
    notAfter: new Date(r.not_after as number),
    keyUsage: r.key_usage ? (JSON.parse(r.key_usage as string) as string[]) : null,
    extKeyUsage: r.ext_key_usage ? (JSON.parse(r.ext_key_usage as string) as string[]) : null,
    isCA: r.is_ca === 1,
    trusted: r.trusted === 1,
    keyAlgorithm: r.key_algorithm as string,
    ...(r.key_bits != null ? { keyBits: r.key_bits as number } : {}),
    ...(r.key_curve != null ? { keyCurve: r.key_curve as string } : {}),
    spkiSha256: r.spki_sha256 as string,
    ...(r.subject_key_id ? { subjectKeyId: r.subject_key_id as string } : {}),
    source: r.source as CertSource,
    firstSeen: new Date(r.first_seen as number),
    hasPrivateKey: r.has_key === 1,
    ...(r.flag ? { flag: r.flag as string } : {}),
  };
}
