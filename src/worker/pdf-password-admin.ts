/**
 * What an administrator does to PDF passwords (issue 16), for `postern pdf password …` and the
 * admin API alike: reset or set a pair's password and tell its sender, as the worker would have.
 *
 * Secrets: the password, handed to the store and into the sender's notice in the spool (as the
 * worker's notices are), never returned to the caller, logged or audited here.
 */
import type { Config } from '../config/types.js';
import { inDomains } from '../core/index.js';
import type { KeyStore, PdfPair, PdfPasswordRecord, PdfPasswordScope } from '../keystore/index.js';
import { normalisePdfPassword, r4PasswordBytes } from '../pdfmail/security-password.js';
import type { Spool } from '../spool/index.js';
import { queueLocalNotice } from './local-notice.js';
import { pdfPasswordNotice } from './notices.js';

/**
 * Who learns a new password and how: the sender by a notice (its queue id); nobody yet for a
 * recipient's one password (whoever sends next is told); nobody for a sender outside
 * internal_domains (a password goes by mail only to our own users: the admin passes it on).
 */
export type PdfSenderTold = { how: 'notice'; queueId: string } | { how: 'next-sender' } | { how: 'not-internal' };

/** The sender's notice of a new password, queued; marked told once durable (a failure leaves it untold: the next message tells). */
async function tellSender(store: KeyStore, spool: Spool, config: Config, pair: PdfPair, scope: PdfPasswordScope, password: string, record: PdfPasswordRecord, actor: string): Promise<PdfSenderTold> {
  if (scope === 'recipient') return { how: 'next-sender' };
  if (!inDomains(pair.sender, config.internal_domains)) return { how: 'not-internal' };
  const queueId = await queueLocalNotice(
    spool,
    config,
    pair.sender,
    (id) => pdfPasswordNotice({ hostname: config.hostname, queueId: id, sender: pair.sender, recipient: pair.recipient, password, recipientScope: false, reset: true }),
    'notice:pdf-password',
  );
  await store.markPdfPasswordNotified(pair, scope, record.created, actor);
  return { how: 'notice', queueId };
}

/** The record as it is after the sender was told (its `notified` set), or as made when it is gone meanwhile. */
async function current(store: KeyStore, pair: PdfPair, scope: PdfPasswordScope, made: PdfPasswordRecord): Promise<PdfPasswordRecord> {
  return (await store.pdfPasswordRecord(pair, scope)) ?? made;
}

/** A new generated password for the pair (its reply links go); the sender is told it. */
export async function resetPdfPasswordAndTell(store: KeyStore, spool: Spool, config: Config, pair: PdfPair, scope: PdfPasswordScope, actor: string): Promise<{ record: PdfPasswordRecord; told: PdfSenderTold }> {
  const { password, record } = await store.resetPdfPassword(pair, scope, actor);
  const told = await tellSender(store, spool, config, pair, scope, password, record, actor);
  return { record: await current(store, pair, scope, record), told };
}

/**
 * The admin's password for the pair, stored and told in the form every reader hashes (SASLprep);
 * refused (PdfSecurityError, PdfPasswordError) when the configured cipher cannot carry it or it is
 * too weak, before anything changes.
 */
export async function setPdfPasswordAndTell(store: KeyStore, spool: Spool, config: Config, pair: PdfPair, scope: PdfPasswordScope, password: string, actor: string): Promise<{ record: PdfPasswordRecord; told: PdfSenderTold }> {
  const prepared = normalisePdfPassword(password);
  if (config.pdf.cipher === 'aes-128') r4PasswordBytes(prepared);
  const record = await store.setPdfPassword(pair, scope, prepared, actor);
  const told = await tellSender(store, spool, config, pair, scope, prepared, record, actor);
  return { record: await current(store, pair, scope, record), told };
}

/** A pair's password as listed (`pdf list --json`, GET /api/pdf/passwords): never the password. */
export function pdfPasswordRow(r: PdfPasswordRecord) {
  return { sender: r.sender, recipient: r.recipient, created: r.created.toISOString(), notified: r.notified?.toISOString() ?? null, source: r.source };
}

/** How the CLI and the console say who was told. */
export function describeTold(told: PdfSenderTold, sender: string): string {
  switch (told.how) {
    case 'notice':
      return `the sender (${sender}) is told it in a notice (queue id ${told.queueId})`;
    case 'next-sender':
      return 'whoever sends the next PDF to them is told it';
    default:
      return `the sender (${sender}) is not in internal_domains and is not told by mail: pass it on yourself (postern pdf password show)`;
  }
}
