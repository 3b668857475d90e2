/**
 * The facts the policy engine needs about a message, read without decoding bodies (except a bounded
 * look at text bodies for inline OpenPGP armour and at the first bytes of a CMS blob): headers,
 * attachments (names and types), priority, sensitivity, and whether it is already encrypted or
 * signed (S/MIME or OpenPGP). The input is hostile: nesting depth and part count are bounded, the
 * walk is iterative, no regular expression can backtrack badly, and malformed MIME gives
 * best-effort facts, never an exception.
 */
import type { CryptoKind, MessageFacts, Priority, Sensitivity } from '../policy/types.js';
import { contentTypeOf, decodeWords, parseHeaders, parseParams, splitHeader, unescapeBytes, type ContentType } from './header-fields.js';
import { multipartLayout } from './entity.js';

const splitMultipart = (body: Buffer, boundary: string, limit: number): Buffer[] => multipartLayout(body, boundary, limit).parts;

export { splitHeader } from './header-fields.js';

const MAX_DEPTH = 50;
/** Parts split out of multiparts, in total: more are ignored (a bomb of empty parts stays cheap). */
const MAX_PARTS = 1000;
/** Decoded bytes of a text body searched for inline OpenPGP armour. */
const SNIFF_BYTES = 1 << 20;
/** Text bodies searched for inline OpenPGP armour. */
const MAX_SNIFFED = 20;

function priorityOf(h: Map<string, string[]>): Priority {
  // The first of these headers that says something recognisable decides (X-Priority: the most exact).
  for (const name of ['x-priority', 'importance', 'priority', 'x-msmail-priority']) {
    const v = h.get(name)?.[0]?.trim().toLowerCase();
    if (v === undefined) continue;
    const digit = /^(\d)\b/.exec(v);
    if (digit) return Number(digit[1]) <= 2 ? 'high' : Number(digit[1]) >= 4 ? 'low' : 'normal';
    const word = /^[a-z-]+/.exec(v)?.[0];
    if (word === 'high' || word === 'highest' || word === 'urgent') return 'high';
    if (word === 'low' || word === 'lowest' || word === 'non-urgent') return 'low';
    if (word === 'normal') return 'normal';
  }
  return 'normal';
}

function sensitivityOf(h: Map<string, string[]>): Sensitivity {
  const s = /^[a-z-]+/.exec((h.get('sensitivity')?.[0] ?? '').trim().toLowerCase())?.[0];
  if (s === 'personal') return 'personal';
  if (s === 'private') return 'private';
  if (s === 'company-confidential' || s === 'confidential') return 'confidential';
  return 'normal';
}

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);
const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

interface Part {
  headers: Map<string, string[]>;
  type: ContentType;
  body: Buffer;
  depth: number;
  /** Crypto structure, not content: the parts of a multipart/encrypted (or its Exchange-mangled form). */
  structural: boolean;
  /** Not the first part of a multipart/signed: a signature there is not an attachment. */
  signatureSlot: boolean;
  /** The message itself: the top, or the signed content of a top-level signature (recursively). */
  main: boolean;
}

function parsePart(raw: Buffer, depth: number, fallback: string): Part {
  const { header, bodyOffset } = splitHeader(raw);
  const headers = parseHeaders(header);
  return { headers, type: contentTypeOf(headers, fallback), body: raw.subarray(bodyOffset), depth, structural: false, signatureSlot: false, main: depth === 0 };
}

/** The body after its transfer encoding, as far as inline-armour sniffing needs (bounded). */
function sniffBody(part: Part): Buffer {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(part.body.subarray(0, Math.ceil((SNIFF_BYTES * 4) / 3) + 4096).toString('latin1'), 'base64');
  const head = part.body.subarray(0, SNIFF_BYTES);
  if (cte !== 'quoted-printable') return head;
  return unescapeBytes(head.toString('latin1').replace(/=\r?\n/g, ''), /=([0-9A-Fa-f]{2})/g);
}

function atLineStart(body: Buffer, marker: string): boolean {
  for (let i = body.indexOf(marker); i >= 0; i = body.indexOf(marker, i + 1)) if (i === 0 || body[i - 1] === 0x0a) return true;
  return false;
}

const CMS_OIDS: Record<string, 'signed' | 'enveloped'> = {
  '2a864886f70d010702': 'signed', // id-signedData
  '2a864886f70d010703': 'enveloped', // id-envelopedData
  '2a864886f70d0109100117': 'enveloped', // id-ct-authEnvelopedData
};

/** The ContentType OID at the start of a CMS ContentInfo (base64 or binary), if there is one. */
function sniffCms(part: Part): 'signed' | 'enveloped' | null {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase();
  const head = part.body.subarray(0, 256);
  const der = cte === 'base64' ? Buffer.from(head.toString('latin1'), 'base64') : head;
  if (der[0] !== 0x30 || der[1] === undefined) return null;
  const at = der[1] < 0x80 || der[1] === 0x80 ? 2 : 2 + (der[1] & 0x7f);
  if (der[at] !== 0x06) return null;
  const len = der[at + 1] ?? 0;
  return CMS_OIDS[der.subarray(at + 2, at + 2 + len).toString('hex')] ?? null;
}

/** S/MIME state of an application/pkcs7-mime part (RFC 8551 3.2.2: smime-type, else the content). */
function pkcs7State(part: Part): { encrypted: CryptoKind | null; signed: CryptoKind | null } {
  const st = (part.type.params.get('smime-type') ?? '').trim().toLowerCase();
  if (st === 'signed-data') return { encrypted: null, signed: 'smime' };
  if (st === 'enveloped-data' || st === 'authenveloped-data') return { encrypted: 'smime', signed: null };
  if (st) return { encrypted: null, signed: null }; // certs-only, compressed-data, …
  const sniffed = sniffCms(part);
  if (sniffed === 'signed') return { encrypted: null, signed: 'smime' };
  const name = part.type.params.get('name') ?? parseParams(part.headers.get('content-disposition')?.[0] ?? '').params.get('filename') ?? '';
  if (sniffed === 'enveloped' || /\.p7m$/i.test(name.trim())) return { encrypted: 'smime', signed: null };
  return { encrypted: null, signed: null };
}

/** Exchange's rewrite of PGP/MIME: multipart/mixed of [empty text/plain,] pgp-encrypted, octet-stream. */
function isMangledPgpMime(children: Part[]): boolean {
  const types = children.map((c) => c.type.type);
  const tail = types.slice(-2).join(' ') === 'application/pgp-encrypted application/octet-stream';
  return tail && (children.length === 2 || (children.length === 3 && types[0] === 'text/plain' && children[0]!.body.toString('latin1').trim() === ''));
}

export function messageFacts(message: Buffer): MessageFacts {
  const top = parsePart(message, 0, 'text/plain');
  const headers = top.headers;
  const attachments: { name: string; type: string }[] = [];
  let encrypted: CryptoKind | null = null;
  let signed: CryptoKind | null = null;
  try {
    // Top level: what the whole message is. An encryption wrapped in (possibly nested) signatures
    // is still the whole message, so the signed content is looked into, a few levels deep.
    let body: Part = top;
    for (let level = 0; level < 5; level++) {
      const { type, params } = body.type;
      const protocol = (params.get('protocol') ?? '').trim().toLowerCase();
      if (type === 'multipart/encrypted' && protocol === 'application/pgp-encrypted') encrypted = 'pgp';
      else if (PKCS7_MIME.has(type) || (type === 'application/octet-stream' && sniffCms(body))) {
        const s = pkcs7State(body);
        encrypted ??= s.encrypted;
        signed ??= s.signed;
      } else if (type === 'multipart/signed' && params.get('boundary')) {
        if (protocol === 'application/pkcs7-signature' || protocol === 'application/x-pkcs7-signature') signed ??= 'smime';
        else if (protocol === 'application/pgp-signature') signed ??= 'pgp';
        const first = splitMultipart(body.body, params.get('boundary')!, 1)[0];
        if (first) {
          body = parsePart(first, level + 1, 'text/plain');
          continue;
        }
      }
      break;
    }

    // The part tree, depth first in document order, iteratively (a stack, not recursion).
    const stack: Part[] = [top];
    let parts = 0;
    let sniffed = 0;
    while (stack.length) {
      const part = stack.pop()!;
      const { type, params } = part.type;
      const boundary = params.get('boundary');
      if (type.startsWith('multipart/') && boundary && part.depth < MAX_DEPTH && parts < MAX_PARTS) {
        const raws = splitMultipart(part.body, boundary, MAX_PARTS - parts);
        parts += raws.length;
        const fallback = type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
        const children = raws.map((raw) => parsePart(raw, part.depth + 1, fallback));
        const crypto = type === 'multipart/encrypted' || (part === top && type === 'multipart/mixed' && isMangledPgpMime(children));
        if (crypto && part === top && type === 'multipart/mixed') encrypted ??= 'pgp';
        children.forEach((c, i) => {
          c.structural = part.structural || crypto;
          c.signatureSlot = type === 'multipart/signed' && i > 0;
          c.main = part.main && type === 'multipart/signed' && i === 0;
        });
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
        continue;
      }
      if (part.structural || (part.signatureSlot && SIGNATURE_TYPES.has(type))) continue;
      // The S/MIME blob that is the whole message (signed or not) is the message, not an attachment.
      if (part.main && (PKCS7_MIME.has(type) || (type === 'application/octet-stream' && sniffCms(part)))) continue;
      const disp = parseParams(part.headers.get('content-disposition')?.[0] ?? '');
      const name = (disp.params.get('filename')?.trim() || params.get('name') || '').trim();
      // A forwarded message counts as one attachment; what it contains is not looked into.
      if (disp.type === 'attachment' || name || type === 'message/rfc822' || type === 'message/global') {
        attachments.push({ name, type });
        continue;
      }
      if (type === 'text/plain' && sniffed < MAX_SNIFFED && (encrypted === null || signed === null)) {
        sniffed++;
        const text = sniffBody(part);
        if (atLineStart(text, '-----BEGIN PGP MESSAGE-----')) encrypted ??= 'pgp';
        if (atLineStart(text, '-----BEGIN PGP SIGNED MESSAGE-----')) signed ??= 'pgp';
      }
    }
  } catch {
    // A parser bug must not cost the message (DESIGN 4, "Nothing lost"): the facts so far stand.
  }
  const subject = decodeWords(headers.get('subject')?.[0] ?? '');
  return { size: message.length, headers, subject, attachments, priority: priorityOf(headers), sensitivity: sensitivityOf(headers), encrypted, signed };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Subject-line commands: the configured tokens found in the subject, case-insensitively, returned
 * as configured, and the subject without them, white space collapsed and trimmed. A token that
 * begins and ends with punctuation ("{encrypt}", "[sign]") is found anywhere, even inside a word
 * ("x{sign}y" → "x y": the braces already delimit it, and users type "{encrypt}Offer"); a token
 * that begins or ends with a letter or digit ("encrypt") only where that end is a word boundary,
 * so "decrypted" does not trigger it. Empty tokens are ignored.
 */
export function subjectCommands(subject: string, tokens: readonly string[]): { found: string[]; subject: string } {
  const found: string[] = [];
  let rest = subject;
  for (const token of tokens) {
    const t = token.trim();
    if (!t) continue;
    const before = /^[\p{L}\p{N}_]/u.test(t) ? '(?<![\\p{L}\\p{N}_])' : '';
    const after = /[\p{L}\p{N}_]$/u.test(t) ? '(?![\\p{L}\\p{N}_])' : '';
    const re = new RegExp(before + escapeRegExp(t) + after, 'giu');
    const next = rest.replace(re, ' ');
    if (next !== rest) {
      found.push(token);
      rest = next;
    }
  }
  return { found, subject: found.length ? rest.replace(/\s+/g, ' ').trim() : subject };
}
