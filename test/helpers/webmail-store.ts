/**
 * Webmail accounts and messages put into portal.db for page tests, sealed exactly as the worker's
 * webmail method seals them (the AADs of src/portal/webmail/sealed.ts), without a gateway.
 */
import { randomBytes } from 'node:crypto';
import { addressKey } from '../../src/core/address.js';
import type { PortalDb, WebmailAccount } from '../../src/keystore/portal-db.js';
import { newAccountKeys, sealForAccount, webmailBodyAad, webmailSummaryAad } from '../../src/keystore/webmail-crypto.js';

export async function makeAccount(db: PortalDb, address: string, password: string): Promise<WebmailAccount> {
  const keys = await newAccountKeys(password);
  return db.createAccount({ address, addressKey: addressKey(address), publicKey: keys.publicKey, wrapped: keys.wrapped });
}

export interface TestSummary {
  from: string;
  to?: string[];
  cc?: string[];
  subject: string;
  date?: Date;
  messageId?: string;
  attachments?: { name: string; type: string; size: number }[];
  correspondents?: string[];
}

/** Seal and store `raw` for `account` (its current key and generation), received at `received`. */
export async function storeMessage(db: PortalDb, account: WebmailAccount, raw: Buffer, s: TestSummary, received = new Date()): Promise<number> {
  const current = (await db.accountById(account.id))!;
  const row = { accountId: current.id, generation: current.generation, deliveryKey: `test-${randomBytes(6).toString('hex')}:${current.addressKey}` };
  const summary = {
    v: 1,
    from: s.from,
    to: s.to ?? [current.address],
    cc: s.cc ?? [],
    subject: s.subject,
    date: (s.date ?? received).toISOString(),
    messageId: s.messageId ?? `<${randomBytes(6).toString('hex')}@example.com>`,
    size: raw.length,
    attachments: s.attachments ?? [],
    correspondents: s.correspondents ?? [],
  };
  const { id } = await db.putMessage({
    ...row,
    received,
    size: raw.length,
    summary: sealForAccount(current.publicKey, Buffer.from(JSON.stringify(summary), 'utf8'), webmailSummaryAad(row.accountId, row.generation, row.deliveryKey)),
    body: sealForAccount(current.publicKey, raw, webmailBodyAad(row.accountId, row.generation, row.deliveryKey)),
  });
  return id;
}
