/**
 * What a bounce returns of a message the worker transformed. The copy delivered to a recipient
 * (signed, encrypted to their key, or decrypted for them) is not the message its sender wrote: a
 * bounce must return the sender's own, never the ciphertext or the signed form made for the
 * recipient — nor, for a message decrypted here, anything the decryption revealed.
 *
 * So the worker, which holds the original until its outputs are durable, keeps beside each
 * transformed output exactly what a notice could return of the original, decided by the same
 * rules as the notice itself (RET, bounce_size_limit, SMTP-safe bytes): the whole message, or
 * its header block. bounce_size_limit bounds the copy, so it costs the spool little, and nothing
 * is kept for a sender no notice can go to (<>, NOTIFY=NEVER everywhere).
 */
import type { Envelope, KeptOriginal, OutgoingNotes } from '../core/index.js';
import { headerBlock } from './build.js';
import { smtpSafe } from './fields.js';
import { wantsNotice } from './status.js';

/** The key of the kept original in an outgoing entry's notes (core/notes.ts). */
export const ORIGINAL_NOTE = 'original' satisfies keyof OutgoingNotes;

export type { KeptOriginal };

/** At most this much of an original's header block is kept (Postfix's header_size_limit). */
const HEADERS_CAP = 100 * 1024;

export interface KeepOptions {
  /** relay.bounce_size_limit. */
  limit: number;
  /** Keep the header block whatever the size (a message decrypted here goes back as headers only). */
  headersOnly?: boolean;
}

/** What to keep of `message` for the notices about `envelope`'s recipients; null: nothing. */
export function keepOriginal(message: Buffer, envelope: Envelope, opts: KeepOptions): KeptOriginal | null {
  const noticed = envelope.recipients.some((r) => wantsNotice(envelope, r, 'failure') || wantsNotice(envelope, r, 'delay') || wantsNotice(envelope, r, 'success'));
  if (!noticed) return null;
  if (!opts.headersOnly && envelope.ret !== 'HDRS' && message.length <= opts.limit && smtpSafe(message)) {
    return { part: 'message', data: message.toString('base64') };
  }
  let headers = headerBlock(message);
  if (headers.length > HEADERS_CAP) {
    // Whole lines only, so no field is cut in half (a notice is informative, not a copy).
    const end = headers.lastIndexOf('\r\n', HEADERS_CAP - 2);
    headers = headers.subarray(0, end < 0 ? 0 : end + 2);
  }
  return { part: 'headers', data: headers.toString('base64') };
}

/**
 * The original kept in an entry's notes, or null when there is none (an entry the worker passed
 * unchanged, or written before originals were kept). The notes are ours, but read defensively
 * (spool/record.ts checks their shape, and so does this for callers that did not read them from
 * disk): a damaged note means the notice falls back to the entry's own headers, never a crash.
 */
export function keptOriginal(notes: { readonly [ORIGINAL_NOTE]?: unknown } | undefined): { message: Buffer; headersOnly: boolean } | null {
  const k = notes?.[ORIGINAL_NOTE] as Partial<KeptOriginal> | undefined;
  if (!k || typeof k !== 'object' || typeof k.data !== 'string' || (k.part !== 'message' && k.part !== 'headers')) return null;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(k.data)) return null;
  return { message: Buffer.from(k.data, 'base64'), headersOnly: k.part === 'headers' };
}
