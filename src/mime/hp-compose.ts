/**
 * Header protection outbound (RFC 9788 2 and 3): the message's header fields are copied into the
 * root part of the cryptographic payload, which says so with `hp="cipher"` (encrypted) or
 * `hp="clear"` (signed only), and with `protected-headers="v1"` as well, the form Thunderbird and
 * Enigmail read. For encrypted mail the outer header then goes through a header confidentiality
 * policy: `obscure` is RFC 9788's hcp_baseline (Subject becomes "[...]", Comments and Keywords
 * are dropped), `copy` its hcp_no_confidentiality; what stays outside is recorded inside as
 * `HP-Outer`, so the reader can tell what the sender hid from what someone changed on the way.
 *
 * Input: the sender's message, before it is signed or encrypted. Nothing here is secret beyond
 * what the message already holds; the hidden values only ever go into the payload.
 */
import { headerFieldsRaw, splitMessage, toCrlf } from './entity.js';
import { decodeWords, splitHeader } from './header-fields.js';
import { encodeHeaderValue } from './headers.js';
import { withLegacyDisplay } from './hp-legacy.js';
import { isStructural } from './hp-section.js';

/** The header confidentiality policy for encrypted mail (RFC 9788 3): hcp_baseline or hcp_no_confidentiality. */
export type HeaderConfidentiality = 'obscure' | 'copy';

export interface ProtectOptions {
  /** Encryption follows (hp="cipher", the policy applies, HP-Outer recorded); else signed only (hp="clear"). */
  encrypted: boolean;
  confidentiality: HeaderConfidentiality;
  /** Write the legacy display element for what the policy hid (encrypted mail only). */
  legacyDisplay: boolean;
}

export interface ProtectedMessage {
  /** The message as it will travel outside the cryptography: its outer header after the policy, its body entity as it was. */
  message: Buffer;
  /** The cryptographic payload: the body entity with the protected fields in its root part's header. */
  payload: Buffer;
  /** Outer fields the policy changed or removed (lower-cased names). */
  hidden: string[];
  /** A legacy display element was written. */
  legacyDisplay: boolean;
}

/**
 * Fields that are not the author's and so not protected: trace and transport fields added on the
 * way (RFC 5321 4.4, DKIM, ARC), Postern's own results, an HP-Outer nobody may claim from outside,
 * and Bcc, which a copy inside would show to every recipient (RFC 9788 11.4 leaves it out too).
 */
const NOT_PROTECTED = /^(received|return-path|delivered-to|dkim-signature|arc-.*|authentication-results|x-postern-.*|hp-outer|bcc|resent-bcc)$/;
/** Unstructured fields whose 8-bit value is written as encoded-words inside (the payload stays 7-bit). */
const UNSTRUCTURED = new Set(['subject', 'comments', 'keywords']);
/** The user-facing fields a legacy display element may show, in the order it shows them (RFC 9787 1.1.2). */
const USER_FACING = ['subject', 'from', 'to', 'cc', 'date', 'reply-to', 'followup-to', 'sender'];
/** hcp_baseline: the obscured Subject. */
export const OBSCURED_SUBJECT = '[...]';

const eightBit = (s: string) => /[^\x00-\x7f]/.test(s);

/** hcp_baseline (RFC 9788 3.2.1) or hcp_no_confidentiality: the value outside, or null when it goes. */
function outside(name: string, rawField: string, policy: HeaderConfidentiality): string | null {
  if (policy === 'copy') return rawField;
  if (name === 'subject') return `${rawField.slice(0, rawField.indexOf(':'))}: ${OBSCURED_SUBJECT}`;
  if (name === 'comments' || name === 'keywords') return null;
  return rawField;
}

/** A raw field fit for the payload: 8-bit unstructured values as RFC 2047 words, the rest as written. */
function inside(name: string, rawField: string): string {
  if (!UNSTRUCTURED.has(name) || !eightBit(rawField)) return rawField;
  const colon = rawField.indexOf(':');
  const value = Buffer.from(rawField.slice(colon + 1), 'latin1').toString('utf8').replace(/\r\n[ \t]/g, ' ').trim();
  return `${rawField.slice(0, colon)}: ${encodeHeaderValue(value)}`;
}

/** The root part's Content-Type with our marks, any earlier claim of protection removed. */
function markedContentType(rawField: string, hp: 'cipher' | 'clear'): string {
  const cleaned = rawField.replace(/;\s*(?:hp|protected-headers)\s*=\s*(?:"[^"]*"|[^;\s]*)/gi, '');
  return `${cleaned.replace(/[;\s]+$/, '')};\r\n\thp="${hp}"; protected-headers="v1"`;
}

/** The text of the fields the policy hid, as a reader would have seen them: "Subject: …". */
function legacyLines(hidden: { name: string; raw: string }[]): string[] {
  const lines: string[] = [];
  for (const name of USER_FACING) {
    for (const f of hidden.filter((h) => h.name === name)) {
      const colon = f.raw.indexOf(':');
      const value = decodeWords(Buffer.from(f.raw.slice(colon + 1), 'latin1').toString('utf8').replace(/\r\n[ \t]/g, ' ').trim());
      lines.push(`${f.raw.slice(0, colon).trim()}: ${value.replace(/[\x00-\x1f\x7f]+/g, ' ')}`);
    }
  }
  return lines;
}

/**
 * The message's outer header after the policy, and its payload with the protected section.
 * Signed-only mail keeps its outer header as it is (there is nothing to hide it from).
 */
export function protectHeaders(message: Buffer, opts: ProtectOptions): ProtectedMessage {
  const crlf = toCrlf(message);
  const { header } = splitHeader(crlf);
  const { entity: original } = splitMessage(crlf);
  const fields = headerFieldsRaw(header).filter((f) => !isStructural(f.name));
  const hp = opts.encrypted ? 'cipher' : 'clear';
  const outerLines: string[] = [];
  const protectedLines: string[] = [];
  const recorded: string[] = [];
  const hidden: { name: string; raw: string }[] = [];
  for (const f of fields) {
    if (NOT_PROTECTED.test(f.name)) {
      outerLines.push(f.raw);
      continue;
    }
    protectedLines.push(inside(f.name, f.raw));
    const out = opts.encrypted ? outside(f.name, f.raw, opts.confidentiality) : f.raw;
    if (out !== f.raw) hidden.push(f);
    if (out === null) continue;
    outerLines.push(out);
    if (opts.encrypted) recorded.push(`HP-Outer: ${inside(f.name, out)}`);
  }

  let entity = original;
  let legacy = false;
  if (opts.encrypted && opts.legacyDisplay && hidden.length) {
    const withElement = withLegacyDisplay(original, legacyLines(hidden));
    if (withElement) {
      entity = withElement;
      legacy = true;
    }
  }
  // The root part: its Content-* fields (Content-Type marked), then the protected fields and the records.
  const { header: rootHeader, bodyOffset } = splitHeader(entity);
  const content = headerFieldsRaw(rootHeader).map((f) => (f.name === 'content-type' ? markedContentType(f.raw, hp) : f.raw));
  const payloadHead = [...content, ...protectedLines, ...recorded].map((l) => `${l}\r\n`).join('');
  const payload = Buffer.concat([Buffer.from(`${payloadHead}\r\n`, 'latin1'), entity.subarray(bodyOffset)]);
  const outerHead = outerLines.map((l) => `${l}\r\n`).join('');
  return {
    message: Buffer.concat([Buffer.from(`${outerHead}MIME-Version: 1.0\r\n`, 'latin1'), original]),
    payload,
    hidden: [...new Set(hidden.map((h) => h.name))],
    legacyDisplay: legacy,
  };
}
