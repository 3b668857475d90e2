/**
 * A stored message read for the webmail page: the text to show (plain text, or the HTML that
 * sanitize-html will clean in mail-html.ts) and every other part as a file to download, numbered
 * in the order of the walk so a download URL names a part by that number alone. Parts with a
 * Content-ID are kept by it too: an HTML body shows its cid: images from the same message.
 *
 * Unlike PDF mail (pdfmail/mail-content.ts, whose charset and name helpers this reuses), a
 * multipart/alternative shows its last part a browser can show — the HTML one, as the sender
 * meant — because the page can sanitise HTML where a PDF could only print its text.
 *
 * Untrusted input: the whole message (decrypted, nothing vouches for it). Bounded by the MIME
 * limits of core/limits.ts; broken MIME gives odd text, never an exception.
 */
import { LIMITS } from '../../core/limits.js';
import { decodeBody, decodeWords, multipartLayout, parseParams, readEntity, type Entity } from '../../mime/index.js';
import { distinctNames, emlName } from '../../pdfmail/file-names.js';
import { entityText } from '../../pdfmail/mail-content.js';
import { drawable, unflow } from '../../pdfmail/text.js';

export interface MailFilePart {
  /** Its place among the message's files: what the download URL names. */
  n: number;
  /** Safe to save under (no path, no control or bidi characters), distinct within the message. */
  name: string;
  /** As the part declares it (lower case); never used to serve it as anything but bytes. */
  type: string;
  data: Buffer;
  /** Content-ID without its angle brackets, when the part has one. */
  cid?: string;
}

export type MailBody = { kind: 'text'; text: string } | { kind: 'html'; html: string };

export interface MailView {
  bodies: MailBody[];
  files: MailFilePart[];
}

const SIGNATURES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);
const ENCAPSULATED = new Set(['message/rfc822', 'message/global']);
const EXTENSIONS: Record<string, string> = {
  'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif', 'image/webp': '.webp', 'image/svg+xml': '.svg', 'application/pdf': '.pdf',
  'text/plain': '.txt', 'text/html': '.html', 'text/calendar': '.ics', 'message/rfc822': '.eml',
};
const SHOWABLE = (type: string) => type === 'text/plain' || type === 'text/html' || type.startsWith('multipart/');

interface Walk {
  bodies: MailBody[];
  raw: { name: string; type: string; data: Buffer; cid?: string }[];
  parts: number;
}

/** A Content-ID or a cid: URL's value as one key: no brackets, percent-escapes undone (RFC 2392), lower case. */
export function cidKey(value: string): string {
  let v = value.trim().replace(/^cid:/i, '').replace(/^<|>$/g, '');
  try {
    v = decodeURIComponent(v);
  } catch {
    // A stray "%" stays as it is.
  }
  return v.toLowerCase();
}

function isInlineText(e: Entity, disposition: ReturnType<typeof parseParams>): boolean {
  if (e.type.type !== 'text/plain' && e.type.type !== 'text/html') return false;
  if (disposition.type === 'attachment') return false;
  const named = disposition.params.has('filename') || e.type.params.has('name');
  return disposition.type === 'inline' || !named;
}

function walk(raw: Buffer, w: Walk, depth: number, fallback = 'text/plain'): void {
  if (depth > LIMITS.mimeDepth || ++w.parts > LIMITS.mimeParts) return;
  const e = readEntity(raw, fallback);
  const disposition = parseParams(e.headers.get('content-disposition')?.[0] ?? '');
  const boundary = e.type.params.get('boundary');
  if (e.type.type.startsWith('multipart/') && boundary) {
    const parts = multipartLayout(e.body, boundary, LIMITS.mimeParts).parts;
    if (e.type.type === 'multipart/alternative') {
      // RFC 2046 5.1.4: the last alternative is the richest; take the last one a browser shows.
      const types = parts.map((p) => readEntity(p).type.type);
      for (let i = parts.length - 1; i >= 0; i--) {
        if (SHOWABLE(types[i]!)) return walk(parts[i]!, w, depth + 1);
      }
      if (parts[0]) walk(parts[0], w, depth + 1);
      return;
    }
    const childFallback = e.type.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    for (const [i, p] of parts.entries()) {
      // A signature was checked (or not) before the mail was stored; as a file it is only noise.
      if (e.type.type === 'multipart/signed' && i > 0 && SIGNATURES.has(readEntity(p).type.type)) continue;
      walk(p, w, depth + 1, childFallback);
    }
    return;
  }
  const name = (disposition.params.get('filename') ?? e.type.params.get('name') ?? '').trim();
  const contentId = e.headers.get('content-id')?.[0];
  const cid = contentId ? cidKey(contentId) : undefined;
  if (ENCAPSULATED.has(e.type.type)) {
    const bytes = decodeBody(e);
    const subject = decodeWords(readEntity(bytes).headers.get('subject')?.[0] ?? '');
    w.raw.push({ name: emlName(name, subject, w.raw.length + 1), type: e.type.type, data: bytes, ...(cid ? { cid } : {}) });
    return;
  }
  if (isInlineText(e, disposition)) {
    const text = entityText(e);
    if (e.type.type === 'text/html') w.bodies.push({ kind: 'html', html: text });
    else {
      const flowed = e.type.params.get('format')?.toLowerCase() === 'flowed';
      w.bodies.push({ kind: 'text', text: drawable(flowed ? unflow(text, e.type.params.get('delsp')?.toLowerCase() === 'yes') : text) });
    }
    return;
  }
  w.raw.push({ name, type: e.type.type, data: decodeBody(e), ...(cid ? { cid } : {}) });
}

/** The message's bodies and files. */
export function readForView(message: Buffer): MailView {
  const w: Walk = { bodies: [], raw: [], parts: 0 };
  walk(message, w, 0);
  // An unnamed part gets a name with the extension of its type, so the saved file opens.
  const names = distinctNames(w.raw.map((r, i) => r.name || (EXTENSIONS[r.type] ? `attachment-${i + 1}${EXTENSIONS[r.type]}` : '')));
  const files = w.raw.map((r, i) => ({ n: i, name: names[i]!, type: r.type, data: r.data, ...(r.cid ? { cid: r.cid } : {}) }));
  return { bodies: w.bodies, files };
}
