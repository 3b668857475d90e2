/**
 * What a webmail mailbox's list shows of a message without opening its body: the summary, sealed
 * beside the body (the portal's pages read it after log-in). Its JSON is a contract with the
 * portal (issue 17): `{ v: 1, from, to, cc, subject, date, messageId, size, attachments: [{ name,
 * type, size }], correspondents }`, where `correspondents` are the internal addresses among the
 * envelope sender, From, Reply-To, To and Cc — the only ones the portal lets the user reply to.
 *
 * Untrusted input: the whole message (its sender may be anyone). Every value is one line, clipped,
 * without control characters; lists are bounded; the part walk is iterative and bounded like
 * mime/facts.ts, and never throws on broken MIME.
 */
import { addressKey, canonicalAddress, inDomains, LIMITS } from '../core/index.js';
import { oneLine } from '../dsn/index.js';
import { addressesOf, decodeBody, decodeWords, multipartLayout, parseParams, readEntity, type Entity } from '../mime/index.js';
import { msgId } from './notices.js';

export interface WebmailSummary {
  v: 1;
  /** The From: field as a reader sees it (display name and address). */
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  /** ISO 8601: the Date: field, or when the gateway received the message if it has none that reads. */
  date: string;
  messageId: string;
  /** Bytes of the stored message. */
  size: number;
  attachments: { name: string; type: string; size: number }[];
  correspondents: string[];
}

/** More addresses than any honest header lists; the rest is not shown (the body keeps them). */
const MAX_ADDRESSES = 200;
/** One displayed value: a long subject is a subject, a 1 MB one is an attack on the list page. */
const MAX_TEXT = 998;

const text = (s: string) => oneLine(s, true).slice(0, MAX_TEXT);
const first = (e: Entity, name: string) => e.headers.get(name)?.[0] ?? '';
const all = (e: Entity, name: string) => e.headers.get(name) ?? [];

/** The addresses of some address-list fields, canonical where they have a canonical form, each once. */
function addresses(values: readonly string[]): string[] {
  const out = new Map<string, string>();
  for (const v of values) {
    for (const a of addressesOf(v)) {
      const c = canonicalAddress(a) ?? text(a);
      if (c && !out.has(addressKey(c))) out.set(addressKey(c), c);
      if (out.size >= MAX_ADDRESSES) return [...out.values()];
    }
  }
  return [...out.values()];
}

function dateOf(value: string, received: Date): string {
  const t = value ? Date.parse(value.replace(/\([^()]*\)/g, ' ').trim()) : NaN;
  return (Number.isFinite(t) && t > 0 ? new Date(t) : received).toISOString();
}

const SIGNATURES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);

/** Attachments as a mail client lists them: parts with a file name or marked attachment, forwarded messages as one. */
function attachmentsOf(message: Entity): WebmailSummary['attachments'] {
  const out: WebmailSummary['attachments'] = [];
  const stack: { e: Entity; depth: number; signatureSlot: boolean }[] = [{ e: message, depth: 0, signatureSlot: false }];
  let parts = 0;
  while (stack.length && parts < LIMITS.mimeParts) {
    const { e, depth, signatureSlot } = stack.pop()!;
    parts++;
    const { type, params } = e.type;
    const boundary = params.get('boundary');
    if (type.startsWith('multipart/') && boundary && depth < LIMITS.mimeDepth) {
      const children = multipartLayout(e.body, boundary, LIMITS.mimeParts - parts).parts.map((raw) => readEntity(raw, type === 'multipart/digest' ? 'message/rfc822' : 'text/plain'));
      for (let i = children.length - 1; i >= 0; i--) stack.push({ e: children[i]!, depth: depth + 1, signatureSlot: type === 'multipart/signed' && i > 0 });
      continue;
    }
    if (signatureSlot && SIGNATURES.has(type)) continue;
    const disposition = parseParams(first(e, 'content-disposition'));
    const raw = (disposition.params.get('filename') ?? params.get('name') ?? '').trim();
    if (disposition.type !== 'attachment' && !raw && type !== 'message/rfc822' && type !== 'message/global') continue;
    // Names arrive RFC 2231-encoded (parseParams) or, from Outlook, as RFC 2047 words. No path,
    // and no bidi override or other invisible character: "\u202efdp.exe" must not show as "exe.pdf".
    out.push({ name: text(decodeWords(raw)).replace(/[\\/]/g, '_').replace(/\p{Cf}/gu, '?'), type: text(type), size: decodeBody(e).length });
  }
  return out;
}

export function webmailSummary(message: Buffer, opts: { envelopeSender: string; internalDomains: readonly string[]; received: Date }): WebmailSummary {
  const top = readEntity(message);
  const to = addresses(all(top, 'to'));
  const cc = addresses(all(top, 'cc'));
  const from = all(top, 'from');
  const correspondents = addresses([...(opts.envelopeSender ? [`<${opts.envelopeSender}>`] : []), ...from, ...all(top, 'reply-to'), ...all(top, 'to'), ...all(top, 'cc')])
    .filter((a) => canonicalAddress(a) !== null && inDomains(a, opts.internalDomains));
  let attachments: WebmailSummary['attachments'] = [];
  try {
    attachments = attachmentsOf(top);
  } catch {
    // A parser bug must not cost the message (DESIGN 4, "Nothing lost"): it is stored with an empty list.
  }
  return {
    v: 1,
    from: text(decodeWords(from[0] ?? '')),
    to,
    cc,
    subject: text(decodeWords(first(top, 'subject'))),
    date: dateOf(first(top, 'date'), opts.received),
    messageId: msgId(first(top, 'message-id')) ?? '',
    size: message.length,
    attachments,
    correspondents,
  };
}
