/**
 * A stored message's sealed parts opened with the session's account key, under the AADs the
 * worker sealed them with (webmail-crypto.ts): they name the account, its key generation and the
 * delivery, so a blob copied into another row or account does not open. The summary is JSON the
 * worker wrote from a hostile message: every field is checked here, and a summary that does not
 * open or parse is shown as an unreadable entry rather than failing the whole mailbox.
 */
import type { KeyObject } from 'node:crypto';
import { openForAccount, webmailBodyAad, webmailSummaryAad } from '../../keystore/webmail-crypto.js';

export interface MailSummary {
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  /** null when the message had no usable Date. */
  date: Date | null;
  messageId: string;
  size: number;
  attachments: { name: string; type: string; size: number }[];
  /** The internal addresses the reader may reply to. */
  correspondents: string[];
}

/** What a sealed row needs for its AAD. */
export interface SealedRow {
  accountId: number;
  generation: number;
  deliveryKey: string;
}


const MAX_FIELD = 2000;
const MAX_LIST = 500;

const str = (v: unknown): string => (typeof v === 'string' ? v.slice(0, MAX_FIELD) : '');
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.slice(0, MAX_LIST).filter((x): x is string => typeof x === 'string').map((x) => x.slice(0, MAX_FIELD)) : []);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** The summary's fields, or null when the JSON is not what the worker writes. */
export function parseSummary(json: Buffer): MailSummary | null {
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || (v as { v?: unknown }).v !== 1) return null;
  const o = v as Record<string, unknown>;
  const t = typeof o.date === 'string' ? Date.parse(o.date) : NaN;
  const attachments = Array.isArray(o.attachments)
    ? o.attachments.slice(0, MAX_LIST).map((a: unknown) => {
        const x = (typeof a === 'object' && a !== null ? a : {}) as Record<string, unknown>;
        return { name: str(x.name), type: str(x.type), size: num(x.size) };
      })
    : [];
  return {
    from: str(o.from),
    to: strs(o.to),
    cc: strs(o.cc),
    subject: str(o.subject),
    date: Number.isFinite(t) ? new Date(t) : null,
    messageId: str(o.messageId),
    size: num(o.size),
    attachments,
    correspondents: strs(o.correspondents),
  };
}

export function openSummary(key: KeyObject, row: SealedRow & { summary: Buffer }): MailSummary | null {
  const plain = openForAccount(key, row.summary, webmailSummaryAad(row.accountId, row.generation, row.deliveryKey));
  return plain ? parseSummary(plain) : null;
}

export function openBody(key: KeyObject, row: SealedRow & { body: Buffer }): Buffer | null {
  return openForAccount(key, row.body, webmailBodyAad(row.accountId, row.generation, row.deliveryKey));
}
