/**
 * The keystore's PDF-mail part (issue 16): a password per sender–recipient pair (or one per
 * recipient for all senders), sealed under the KEK like every secret, with a scrypt verifier and
 * reply-link key parameters beside it for the KEK-free portal. It makes the reply links, which
 * live in portal.db (issue 17: attachPortal) with a copy of their pair's verifier and KDF, and
 * takes them away when the pair's password changes or goes. A layer of the store's class chain
 * (… → CertStore → PdfStore → SqlKeyStore), sharing its database (either backend: the SQL
 * below is the portable subset of sql/types.ts). In a cluster every node makes and reads the same
 * pair's password from the one database, so a password made on one node is used on all.
 *
 * The sealed secret of a pair holds the password and its content root (pdf-verifier.ts), so the
 * worker makes a reply link per message without paying a scrypt.
 *
 * Untrusted input: addresses (from envelopes and the command line: canonicalised, refused when
 * they have none), message data for reply links (sealed, clipped). Tokens and passwords from the
 * Internet never reach this file: the portal opens links with portal-reply-links.ts. Secrets: the passwords, unsealed
 * on request and audited when shown; never in the audit log, a log line or an error message.
 */
import { timingSafeEqual } from 'node:crypto';
import { addressKey, canonicalAddress } from '../core/address.js';
import { newPdfPassword } from '../pdfmail/password.js';
import type { Kek } from './kek/types.js';
import type { Sql } from './sql/types.js';
import {
  contentRoot, makePdfVerifier, MAX_PDF_PASSWORD_BYTES, newContentKdf, newReplyToken, PDF_SCRYPT, PdfPasswordError, replyAad, sealReplyData, verifyPdfPassword,
  type ScryptCost,
} from './pdf-verifier.js';
import type { PortalDb, ReplyLink } from './portal-db.js';
import { linkOf } from './portal-rows.js';
import type { Row } from './store-base.js';
import { CertStore } from './store-certs.js';
import type { PdfPair, PdfPasswordRecord, PdfPasswordScope, PdfPasswordStore } from './types.js';

/** A pair as stored: comparison keys, display spellings, and the audit object. */
interface PairKey {
  senderKey: string;
  recipientKey: string;
  sender: string;
  recipient: string;
  scope: PdfPasswordScope;
  /** "pdf:<sender key>→<recipient key>" */
  object: string;
}

const ANY_SENDER = '*';
/** Admin-chosen passwords: long enough to resist guessing through the portal for a while. */
export const MIN_SET_PASSWORD_LENGTH = 10;

/** An address for a message: printable ASCII, quoted, clipped (it may be hostile). */
const shown = (s: string) => JSON.stringify(s.slice(0, 100)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function canonical(address: string, role: string): string {
  const a = typeof address === 'string' ? canonicalAddress(address) : null;
  if (!a) throw new PdfPasswordError(`the ${role} ${shown(String(address))} is not a mail address`);
  return a;
}

export function pdfPairKey(pair: PdfPair, scope: PdfPasswordScope): PairKey {
  const recipient = canonical(pair.recipient, 'recipient');
  const sender = scope === 'recipient' ? ANY_SENDER : canonical(pair.sender, 'sender');
  const senderKey = scope === 'recipient' ? ANY_SENDER : addressKey(sender);
  const recipientKey = addressKey(recipient);
  return { senderKey, recipientKey, sender, recipient, scope, object: `pdf:${senderKey}→${recipientKey}` };
}

/** "alice@example.com → bob@other.example", or "any sender → bob@other.example". */
export function describePdfPair(k: Pick<PairKey, 'sender' | 'recipient'>): string {
  return `${k.sender === ANY_SENDER ? 'any sender' : k.sender} → ${k.recipient}`;
}

/** The sealed payload: version 1 ‖ content root (32 bytes) ‖ the password in UTF-8. */
function packSecret(root: Buffer, password: string): Buffer {
  return Buffer.concat([Buffer.of(1), root, Buffer.from(password, 'utf8')]);
}

function unpackSecret(b: Buffer): { root: Buffer; password: string } {
  if (b.length < 34 || b[0] !== 1) throw new PdfPasswordError('a sealed PDF password has an unknown format');
  return { root: Buffer.from(b.subarray(1, 33)), password: b.subarray(33).toString('utf8') };
}

/** The order of SQLite's BINARY collation (UTF-8 bytes); PostgreSQL's ORDER BY follows the database's locale. */
export function binaryOrder(a: unknown, b: unknown): number {
  return Buffer.compare(Buffer.from(String(a), 'utf8'), Buffer.from(String(b), 'utf8'));
}

function checkSetPassword(password: string): void {
  if (typeof password !== 'string' || [...password].length < MIN_SET_PASSWORD_LENGTH) throw new PdfPasswordError(`a PDF password must have at least ${MIN_SET_PASSWORD_LENGTH} characters`);
  if (Buffer.byteLength(password.normalize('NFKC'), 'utf8') > MAX_PDF_PASSWORD_BYTES) throw new PdfPasswordError(`a PDF password may have at most ${MAX_PDF_PASSWORD_BYTES} bytes in UTF-8 (PDF readers ignore the rest)`);
  // Invisible and control characters cannot be read over the phone or typed reliably.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(password) || password !== password.trim()) {
    throw new PdfPasswordError('a PDF password may not contain control or invisible characters, nor begin or end with a space');
  }
}

/** What a reply link is made from: the message's pair and data, and the password its PDF was encrypted with. */
type ReplyTokenRequest = { pair: PdfPair; scope: PdfPasswordScope; password: string; messageId: string; subject: string; sender: string; expires: Date };

/**
 * How long a message's claim to tell the sender holds (longer than a message's retries take: three
 * transform time-outs); if its notice was never queued (the message held), the next message tells.
 */
const NOTICE_CLAIM_LEASE_MS = 15 * 60_000;

export class PdfStore extends CertStore implements PdfPasswordStore {
  /** The scrypt cost of new verifiers and content roots (tests lower it; stored rows keep theirs). */
  private readonly pdfScrypt: ScryptCost;

  /** portal.db, where reply links live (attachPortal). */
  private portal: PortalDb | null = null;

  constructor(db: Sql, kek: Kek, opts: { pdfScrypt?: ScryptCost } = {}) {
    super(db, kek);
    this.pdfScrypt = opts.pdfScrypt ?? PDF_SCRYPT;
  }

  /**
   * Reply links live in portal.db, which the KEK-free portal reads (issue 17): a store that makes
   * them, or resets, sets or deletes the passwords they open with, must have it. Moves the links
   * an older Postern kept in postern.db's reply_tokens there (with their pair's verifier and
   * content KDF, so a link already mailed keeps working), then drops that table. Copy first, drop
   * after: an interrupted move is done again, writing the same rows. Returns how many moved.
   */
  async attachPortal(portal: PortalDb): Promise<number> {
    this.portal = portal;
    // reply_tokens was SQLite's alone (migration 5); the PostgreSQL schema never had it. Which
    // tables exist is asked differently in each engine, hence the one dialect test of this file.
    if (this.db.dialect !== 'sqlite') return 0;
    const legacy = await this.db.get("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'reply_tokens'");
    if (!legacy?.n) return 0;
    const rows = await this.db.all(
      `SELECT t.*, p.sender_key, p.recipient_key, p.sender, p.recipient, p.verifier, p.content_kdf
       FROM reply_tokens t JOIN pdf_passwords p ON p.id = t.password_id`,
    );
    // The columns are named as in portal.db's reply_links, so its row reader checks them too.
    for (const r of rows) await portal.putReplyLink(linkOf(r));
    await this.transaction(async () => {
      await this.db.run('DROP TABLE IF EXISTS reply_tokens');
      if (rows.length) await this.audit({ actor: 'postern', action: 'pdf-reply-links-moved', object: 'portal.db', detail: `${rows.length} reply links` });
    });
    return rows.length;
  }

  private portalDb(): PortalDb {
    if (!this.portal) throw new PdfPasswordError('reply links live in portal.db, and this keystore was opened without it (attachPortal)');
    return this.portal;
  }

  /** The pair's reply links go: each was sealed under a password nobody is to use any more. */
  private dropLinks(k: PairKey): Promise<number> {
    return this.portalDb().deleteReplyLinksOfPair(k.senderKey, k.recipientKey);
  }

  private pdfRow(k: PairKey): Promise<Row | undefined> {
    return this.db.get('SELECT * FROM pdf_passwords WHERE sender_key = ? AND recipient_key = ?', [k.senderKey, k.recipientKey]);
  }

  private static record(r: Row): PdfPasswordRecord {
    return {
      sender: r.sender as string,
      recipient: r.recipient as string,
      created: new Date(r.created as number),
      notified: r.notified != null ? new Date(r.notified as number) : null,
      source: r.source as PdfPasswordRecord['source'],
    };
  }

  private async unsealPdf(r: Row): Promise<{ root: Buffer; password: string }> {
    const secret = await this.readSecret(r.secret_id as number);
    try {
      return unpackSecret(secret);
    } finally {
      secret.fill(0);
    }
  }

  /** Verifier, content KDF and sealed payload for a new password: the scrypt work, done before any transaction. */
  private async material(password: string): Promise<{ verifier: string; kdf: string; secret: Buffer }> {
    const kdf = newContentKdf(this.pdfScrypt);
    const [verifier, root] = await Promise.all([makePdfVerifier(password, this.pdfScrypt), contentRoot(password, kdf)]);
    const secret = packSecret(root, password);
    root.fill(0);
    return { verifier, kdf, secret };
  }

  async pdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord; created: boolean }> {
    const k = pdfPairKey(pair, scope);
    const known = await this.pdfRow(k);
    if (known) return { password: await this.passwordOf(known), record: PdfStore.record(known), created: false };
    const password = newPdfPassword();
    const m = await this.material(password);
    try {
      return await this.transaction(async () => {
        // Another worker (another process, another node) may have made it meanwhile: its password
        // wins. The transaction serialises writers on both backends (sql/types.ts), so the row is
        // seen here; the conflict clause stays as a second line should that ever not hold.
        const made = await this.pdfRow(k);
        if (made) return { password: await this.passwordOf(made), record: PdfStore.record(made), created: false };
        const secretId = await this.insertSecret('pdf-password', m.secret);
        const inserted = await this.db.run(
          `INSERT INTO pdf_passwords (sender_key, recipient_key, sender, recipient, secret_id, verifier, content_kdf, source, created, notified)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'generated', ?, NULL) ON CONFLICT (sender_key, recipient_key) DO NOTHING`,
          [k.senderKey, k.recipientKey, k.sender, k.recipient, secretId, m.verifier, m.kdf, Date.now()],
        );
        if (!inserted) await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [secretId]);
        const row = (await this.pdfRow(k))!;
        if (!inserted) return { password: await this.passwordOf(row), record: PdfStore.record(row), created: false };
        await this.changed('pdf');
        await this.audit({ actor, action: 'pdf-password-create', object: k.object, detail: `scope ${scope}` });
        return { password, record: PdfStore.record(row), created: true };
      });
    } finally {
      m.secret.fill(0);
    }
  }

  private async passwordOf(r: Row): Promise<string> {
    const { root, password } = await this.unsealPdf(r);
    root.fill(0);
    return password;
  }

  async pdfPasswordRecord(pair: PdfPair, scope: PdfPasswordScope): Promise<PdfPasswordRecord | null> {
    const r = await this.pdfRow(pdfPairKey(pair, scope));
    return r ? PdfStore.record(r) : null;
  }

  async claimPdfPasswordNotice(pair: PdfPair, scope: PdfPasswordScope, created: Date, claimant: string, leaseMs = NOTICE_CLAIM_LEASE_MS): Promise<boolean> {
    const k = pdfPairKey(pair, scope);
    const now = Date.now();
    // One statement: two workers (on two nodes) claiming at once cannot both get it.
    const claimed = await this.db.run(
      'UPDATE pdf_passwords SET notice_claim = ?, notice_claim_at = ? WHERE sender_key = ? AND recipient_key = ? AND created = ? AND notified IS NULL AND (notice_claim IS NULL OR notice_claim = ? OR notice_claim_at < ?)',
      [claimant, now, k.senderKey, k.recipientKey, created.getTime(), claimant, now - leaseMs],
    );
    return claimed > 0;
  }

  async markPdfPasswordNotified(pair: PdfPair, scope: PdfPasswordScope, created: Date, actor = 'worker'): Promise<void> {
    const k = pdfPairKey(pair, scope);
    await this.transaction(async () => {
      // Only the password the notice was about: after a reset, the new one is still untold.
      const n = await this.db.run('UPDATE pdf_passwords SET notified = ? WHERE sender_key = ? AND recipient_key = ? AND created = ? AND notified IS NULL', [
        Date.now(), k.senderKey, k.recipientKey, created.getTime(),
      ]);
      if (n) await this.audit({ actor, action: 'pdf-password-notified', object: k.object });
    });
  }

  async resetPdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord }> {
    const password = newPdfPassword();
    return { password, record: await this.replace(pdfPairKey(pair, scope), password, 'generated', actor, false) };
  }

  async setPdfPassword(pair: PdfPair, scope: PdfPasswordScope, password: string, actor: string): Promise<PdfPasswordRecord> {
    checkSetPassword(password);
    return this.replace(pdfPairKey(pair, scope), password, 'set', actor, true);
  }

  /**
   * A new password for the pair, untold (notified null). Reply links made under the old one are
   * deleted: their data was sealed under the old password, which nobody is to use any more.
   */
  private async replace(k: PairKey, password: string, source: 'generated' | 'set', actor: string, mayCreate: boolean): Promise<PdfPasswordRecord> {
    const m = await this.material(password);
    try {
      // Before: a crash after the change leaves no old link. After: a worker may have stored a link
      // under the old password meanwhile (createReplyToken checks again, this closes the rest).
      await this.dropLinks(k);
      const record = await this.transaction(async () => {
        const old = await this.pdfRow(k);
        if (!old && !mayCreate) throw new PdfPasswordError(`no PDF password for ${describePdfPair(k)}`);
        const secretId = await this.insertSecret('pdf-password', m.secret);
        // Strictly later than the old one, so a notice of the old password cannot mark this one told.
        const created = Math.max(Date.now(), old ? (old.created as number) + 1 : 0);
        if (old) {
          await this.db.run(
            'UPDATE pdf_passwords SET secret_id = ?, verifier = ?, content_kdf = ?, source = ?, created = ?, notified = NULL, notice_claim = NULL, notice_claim_at = NULL WHERE id = ?',
            [secretId, m.verifier, m.kdf, source, created, old.id as number],
          );
          await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [old.secret_id as number]);
        } else {
          await this.db.run(
            `INSERT INTO pdf_passwords (sender_key, recipient_key, sender, recipient, secret_id, verifier, content_kdf, source, created, notified)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
            [k.senderKey, k.recipientKey, k.sender, k.recipient, secretId, m.verifier, m.kdf, source, created],
          );
        }
        await this.changed('pdf');
        await this.audit({ actor, action: source === 'set' ? 'pdf-password-set' : 'pdf-password-reset', object: k.object, detail: `scope ${k.scope}${old ? '' : ', new pair'}` });
        return PdfStore.record((await this.pdfRow(k))!);
      });
      await this.dropLinks(k);
      return record;
    } finally {
      m.secret.fill(0);
    }
  }

  async showPdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ password: string; record: PdfPasswordRecord } | null> {
    const k = pdfPairKey(pair, scope);
    const r = await this.pdfRow(k);
    if (!r) return null;
    const password = await this.passwordOf(r);
    // In a transaction as every audited write: under the write lock, audit ids are committed in order.
    await this.transaction(() => this.audit({ actor, action: 'pdf-password-show', object: k.object }));
    return { password, record: PdfStore.record(r) };
  }

  async listPdfPasswords(filter: { sender?: string; recipient?: string } = {}): Promise<PdfPasswordRecord[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (filter.sender !== undefined) {
      where.push('sender_key = ?');
      args.push(filter.sender === ANY_SENDER ? ANY_SENDER : addressKey(filter.sender));
    }
    if (filter.recipient !== undefined) {
      where.push('recipient_key = ?');
      args.push(addressKey(filter.recipient));
    }
    const rows = await this.db.all(`SELECT * FROM pdf_passwords${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`, args);
    // Sorted here in SQLite's binary order: PostgreSQL's ORDER BY would follow the database's locale.
    return rows.sort((a, b) => binaryOrder(a.recipient_key, b.recipient_key) || binaryOrder(a.sender_key, b.sender_key)).map((r) => PdfStore.record(r));
  }

  async deletePdfPassword(pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<boolean> {
    const k = pdfPairKey(pair, scope);
    // Before and after, as in replace().
    await this.dropLinks(k);
    const deleted = await this.transaction(async () => {
      const r = await this.pdfRow(k);
      if (!r) return false;
      await this.db.run('DELETE FROM pdf_passwords WHERE id = ?', [r.id as number]);
      await this.db.run('DELETE FROM sealed_secrets WHERE id = ?', [r.secret_id as number]);
      await this.changed('pdf');
      await this.audit({ actor, action: 'pdf-password-delete', object: k.object });
      return true;
    });
    await this.dropLinks(k);
    return deleted;
  }

  async checkPdfPassword(pair: PdfPair, scope: PdfPasswordScope, password: string): Promise<boolean> {
    const r = await this.pdfRow(pdfPairKey(pair, scope));
    return r ? verifyPdfPassword(r.verifier as string, password) : false;
  }

  // ---- reply links -------------------------------------------------------------------------------

  /**
   * A reply link for one message to the pair, stored in portal.db. The password is checked and the
   * data sealed outside any transaction (this runs for every PDF message: it takes no write lock,
   * which on PostgreSQL would be the whole cluster's); the link is then written to portal.db, and
   * the pair's verifier read again: a reset or set that slipped in between (another process or
   * node) has either deleted the link already or is seen here, and the link is taken back.
   */
  async createReplyToken(t: ReplyTokenRequest): Promise<string> {
    const k = pdfPairKey(t.pair, t.scope);
    if (!(t.expires instanceof Date) || Number.isNaN(t.expires.getTime())) throw new PdfPasswordError('a reply link needs a valid expiry date');
    const portal = this.portalDb();
    const { token, link } = await this.sealLink(k, t);
    await portal.putReplyLink(link);
    if ((await this.pdfRow(k))?.verifier !== link.verifier) {
      await portal.deleteReplyLink(link.tokenHash);
      throw this.changedMeanwhile(k);
    }
    return token;
  }

  /** A new token and its link, the message data sealed under the pair's content root. */
  private async sealLink(k: PairKey, t: ReplyTokenRequest): Promise<{ token: string; link: ReplyLink }> {
    const r = await this.pdfRow(k);
    if (!r) throw new PdfPasswordError(`no PDF password for ${describePdfPair(k)}`);
    let unsealed: { root: Buffer; password: string };
    try {
      unsealed = await this.unsealPdf(r);
    } catch (err) {
      // A reset between the two reads deletes the sealed secret the row named.
      if ((await this.pdfRow(k))?.secret_id !== r.secret_id) throw this.changedMeanwhile(k);
      throw err;
    }
    const { root, password } = unsealed;
    try {
      // The PDF is encrypted with t.password; a link under another one would not open for its reader.
      const a = Buffer.from(password, 'utf8');
      const b = Buffer.from(t.password, 'utf8');
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw this.changedMeanwhile(k);
      const { token, hash } = newReplyToken();
      const sealed = sealReplyData(root, { messageId: t.messageId, subject: t.subject, sender: t.sender }, replyAad(hash, k.senderKey, k.recipientKey));
      const link: ReplyLink = {
        tokenHash: hash, senderKey: k.senderKey, recipientKey: k.recipientKey, sender: k.sender, recipient: k.recipient,
        verifier: r.verifier as string, contentKdf: r.content_kdf as string, sealed, created: new Date(), expires: t.expires,
      };
      return { token, link };
    } finally {
      root.fill(0);
    }
  }

  private changedMeanwhile(k: PairKey): PdfPasswordError {
    return new PdfPasswordError(`the PDF password for ${describePdfPair(k)} changed while the message was being made (reset or set meanwhile); make the PDF again`);
  }
}
