/**
 * The SQLite keystore, part 2: certificates and their private keys (linked by public key, so a
 * renewed certificate with the same key finds it).
 */
import type { CertInfo, PrivateKeyInfo } from '../pki/index.js';
import { addressKey, sha256, type Row } from './store-base.js';
import { RevocationStore } from './store-revocation.js';
import type { CertSource, ImportStatus, StoredCertificate } from './types.js';

export class CertStore extends RevocationStore {
  // ---- certificates ------------------------------------------------------------------------------

  importCertificate(cert: CertInfo, opts: { source: CertSource; trusted?: boolean; actor: string; flag?: string }): Promise<{ status: ImportStatus; certificate: StoredCertificate }> {
    return this.transaction(async () => {
      const existing = this.certificateRow(cert.fingerprint);
      if (existing) {
        // Re-importing a CA with --trust makes it an anchor; nothing else changes on a duplicate.
        if (opts.trusted && !existing.trusted) {
          this.sql('UPDATE certificates SET trusted = 1 WHERE id = ?').run(existing.id);
          this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: 'now trusted' });
          return { status: 'updated' as const, certificate: this.certificateRow(cert.fingerprint)! };
        }
        return { status: 'duplicate' as const, certificate: existing };
      }
      const id = Number(
        this
          .sql(
            `INSERT INTO certificates (fingerprint, der, subject, issuer, serial, not_before, not_after, key_usage, ext_key_usage,
               is_ca, trusted, key_algorithm, key_bits, key_curve, spki_sha256, subject_key_id, source, first_seen, flag)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
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
          ).lastInsertRowid,
      );
      const addr = this.sql('INSERT OR IGNORE INTO certificate_addresses (certificate_id, address, address_key) VALUES (?, ?, ?)');
      for (const e of cert.emails) addr.run(id, e, addressKey(e));
      this.audit({ actor: opts.actor, action: 'import', object: `cert:${cert.fingerprint}`, detail: `source ${opts.source}${opts.trusted ? ', trusted' : ''}` });
      return { status: 'added' as const, certificate: this.certificateRow(cert.fingerprint)! };
    });
  }

  importPrivateKey(key: PrivateKeyInfo, opts: { actor: string }): Promise<ImportStatus> {
    const spki = sha256(key.spki);
    return this.transaction(async () => {
      if (this.sql('SELECT 1 FROM private_keys WHERE spki_sha256 = ?').get(spki)) return 'duplicate' as const;
      const secretId = await this.insertSecret('x509-key', key.pkcs8);
      this.sql('INSERT INTO private_keys (spki_sha256, key_algorithm, secret_id, created) VALUES (?, ?, ?, ?)').run(spki, key.key.algorithm, secretId, Date.now());
      this.audit({ actor: opts.actor, action: 'import', object: `key:${spki}` });
      return 'added' as const;
    });
  }

  /** The unencrypted PKCS#8 private key of a certificate, or undefined; audited as a use. */
  async privateKeyFor(cert: Pick<StoredCertificate, 'spkiSha256' | 'fingerprint'>, purpose: 'sign' | 'decrypt' | 'export', actor: string): Promise<Buffer | undefined> {
    const r = this.sql('SELECT secret_id FROM private_keys WHERE spki_sha256 = ?').get(cert.spkiSha256) as Row | undefined;
    if (!r) return undefined;
    const key = await this.readSecret(r.secret_id as number);
    this.audit({ actor, action: purpose === 'export' ? 'export' : purpose === 'sign' ? 'use-sign' : 'use-decrypt', object: `cert:${cert.fingerprint}` });
    return key;
  }

  protected certificateRow(fingerprint: string): StoredCertificate | undefined {
    const r = this.sql(`${CERT_SELECT} WHERE c.fingerprint = ?`).get(fingerprint) as Row | undefined;
    return r ? this.toCertificate(r) : undefined;
  }

  private toCertificate(r: Row): StoredCertificate {
    const emails = JSON.parse(r.emails_json as string) as string[];
    return {
      id: r.id as number,
      fingerprint: r.fingerprint as string,
      der: r.der as Buffer,
      subject: r.subject as string,
      issuer: r.issuer as string,
      serial: r.serial as string,
      emails,
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

  /** Certificates for an address (case-insensitive), newest first. */
  async certificatesFor(address: string): Promise<StoredCertificate[]> {
    const rows = this
      .sql(`${CERT_SELECT} JOIN certificate_addresses a ON a.certificate_id = c.id WHERE a.address_key = ? ORDER BY c.not_before DESC`)
      .all(addressKey(address)) as Row[];
    return rows.map((r) => this.toCertificate(r));
  }

  async listCertificates(filter: { address?: string } = {}): Promise<StoredCertificate[]> {
    if (filter.address) return this.certificatesFor(filter.address);
    return (this.sql(`${CERT_SELECT} ORDER BY c.id`).all() as Row[]).map((r) => this.toCertificate(r));
  }

  /** By full fingerprint or an unambiguous prefix (at least 8 hex digits). */
  async findCertificate(fingerprintPrefix: string): Promise<StoredCertificate[]> {
    const p = fingerprintPrefix.toLowerCase().replace(/:/g, '');
    if (!/^[0-9a-f]{8,64}$/.test(p)) return [];
    return (this.sql(`${CERT_SELECT} WHERE c.fingerprint LIKE ? ORDER BY c.id`).all(`${p}%`) as Row[]).map((r) => this.toCertificate(r));
  }

  /** Certificates whose private key we hold, by serial (lower-case hex) or subject key id: the candidates for a CMS RecipientInfo. */
  async keyCertificates(ids: { serial?: string; subjectKeyId?: string }[]): Promise<StoredCertificate[]> {
    const bySerial = this.sql(`${CERT_SELECT} WHERE c.serial = ?`);
    const bySki = this.sql(`${CERT_SELECT} WHERE c.subject_key_id = ?`);
    const found = new Map<string, StoredCertificate>();
    for (const id of ids) {
      const rows = [...(id.serial ? (bySerial.all(id.serial) as Row[]) : []), ...(id.subjectKeyId ? (bySki.all(id.subjectKeyId) as Row[]) : [])];
      for (const r of rows) if (r.has_key === 1) found.set(r.fingerprint as string, this.toCertificate(r));
    }
    return [...found.values()];
  }

  /** Changes whenever a CA certificate is added, removed or trusted: lets callers cache the trust store safely. */
  async caGeneration(): Promise<string> {
    const r = this.sql('SELECT count(*) AS n, max(id) AS m, sum(trusted) AS t FROM certificates WHERE is_ca = 1').get() as Row;
    return `${r.n}:${r.m}:${r.t}`;
  }

  /** CA certificates that are not anchors: intermediates to build chains with. */
  async chainCertificates(): Promise<StoredCertificate[]> {
    return (this.sql(`${CERT_SELECT} WHERE c.is_ca = 1 AND c.trusted = 0 ORDER BY c.id`).all() as Row[]).map((r) => this.toCertificate(r));
  }

  /**
   * A certificate learnt from a valid signature on incoming mail (RFC 8550 auto-import). New for
   * an address that already had another certificate: stored, but flagged "key-change" and audited,
   * since a silent swap of a correspondent's key is how an attacker would read their mail.
   */
  async learnCertificate(cert: CertInfo, opts: { actor: string }): Promise<{ status: ImportStatus; keyChange: boolean; certificate: StoredCertificate }> {
    const known = this.certificateRow(cert.fingerprint);
    if (known) return { status: 'duplicate', keyChange: false, certificate: known };
    const others = cert.isCA
      ? []
      : cert.emails.flatMap((e) => this.sql('SELECT c.fingerprint FROM certificates c JOIN certificate_addresses a ON a.certificate_id = c.id WHERE a.address_key = ? AND c.is_ca = 0').all(addressKey(e)) as Row[]);
    const keyChange = others.length > 0;
    // Two workers learning the same certificate at once: importCertificate's unique fingerprint
    // makes the second a duplicate; at worst the key change is audited twice.
    const { status, certificate } = await this.importCertificate(cert, { source: 'mail', actor: opts.actor, ...(keyChange ? { flag: 'key-change' } : {}) });
    if (keyChange && status === 'added') {
      this.audit({ actor: opts.actor, action: 'key-change', object: `cert:${cert.fingerprint}`, detail: `new certificate from mail for ${cert.emails.join(', ')}; known before: ${[...new Set(others.map((o) => o.fingerprint as string))].join(', ')}` });
    }
    return { status, keyChange, certificate };
  }

  /** Remember what a correspondent's signature said it can decrypt (the newest signature wins). */
  async setCapabilities(certificateFingerprint: string, capabilities: unknown): Promise<void> {
    const r = this.sql('SELECT id FROM certificates WHERE fingerprint = ?').get(certificateFingerprint) as Row | undefined;
    if (!r) return;
    this
      .sql('INSERT INTO smime_capabilities (certificate_id, capabilities, seen) VALUES (?, ?, ?) ON CONFLICT (certificate_id) DO UPDATE SET capabilities = excluded.capabilities, seen = excluded.seen')
      .run(r.id, JSON.stringify(capabilities), Date.now());
  }

  async capabilitiesOf(certificateFingerprint: string): Promise<unknown | undefined> {
    const r = this
      .sql('SELECT s.capabilities FROM smime_capabilities s JOIN certificates c ON c.id = s.certificate_id WHERE c.fingerprint = ?')
      .get(certificateFingerprint) as Row | undefined;
    return r ? (JSON.parse(r.capabilities as string) as unknown) : undefined;
  }

  async trustAnchors(): Promise<StoredCertificate[]> {
    return (this.sql(`${CERT_SELECT} WHERE c.trusted = 1 ORDER BY c.id`).all() as Row[]).map((r) => this.toCertificate(r));
  }

  /**
   * Make a stored CA certificate a trust anchor or stop it being one; false when it already was
   * what was asked. Only CA certificates: an end-entity certificate is believed through its chain.
   */
  setTrusted(fingerprint: string, trusted: boolean, actor: string): Promise<boolean> {
    return this.transaction(async () => {
      const changed = this.sql('UPDATE certificates SET trusted = ? WHERE fingerprint = ? AND is_ca = 1 AND trusted <> ?').run(trusted ? 1 : 0, fingerprint, trusted ? 1 : 0).changes > 0;
      if (changed) this.audit({ actor, action: trusted ? 'trust' : 'distrust', object: `cert:${fingerprint}` });
      return changed;
    });
  }

  /** Delete a certificate; its private key too when no other certificate shares it and `withKey`. */
  deleteCertificate(cert: StoredCertificate, opts: { withKey: boolean; actor: string }): Promise<{ keyDeleted: boolean }> {
    return this.transaction(async () => {
      this.sql('DELETE FROM certificates WHERE id = ?').run(cert.id);
      let keyDeleted = false;
      const shared = this.sql('SELECT 1 FROM certificates WHERE spki_sha256 = ?').get(cert.spkiSha256);
      if (opts.withKey && !shared) keyDeleted = this.deletePrivateKey(cert.spkiSha256);
      this.audit({ actor: opts.actor, action: 'delete', object: `cert:${cert.fingerprint}`, detail: keyDeleted ? 'with private key' : undefined });
      return { keyDeleted };
    });
  }

  private deletePrivateKey(spki: string): boolean {
    const r = this.sql('SELECT id, secret_id FROM private_keys WHERE spki_sha256 = ?').get(spki) as Row | undefined;
    if (!r) return false;
    this.sql('DELETE FROM private_keys WHERE id = ?').run(r.id);
    this.sql('DELETE FROM sealed_secrets WHERE id = ?').run(r.secret_id);
    return true;
  }

}

// The addresses come along as JSON in the same query: a second query per row cost more than the first.
const CERT_SELECT = `SELECT c.*, EXISTS (SELECT 1 FROM private_keys k WHERE k.spki_sha256 = c.spki_sha256) AS has_key,
  (SELECT json_group_array(address ORDER BY rowid) FROM certificate_addresses WHERE certificate_id = c.id) AS emails_json FROM certificates c`;

