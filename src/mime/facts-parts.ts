/**
 * The per-part decisions behind a message's facts, shared by the whole-message reader (facts.ts,
 * messageFacts) and the streamed one (facts-stream.ts, messageFactsStreamed): what one part says
 * about the message (an attachment, inline OpenPGP armour, an S/MIME blob that is the message),
 * how a multipart marks its children (crypto structure, signature slot, the message itself), and
 * the top-level look at what the whole message is. Both readers walk the same parts in the same
 * order and hand each to these functions, so they cannot disagree on a decision.
 *
 * A part's body here may be a prefix of the real body, as long as it holds BODY_PREFIX bytes
 * whenever the real body is longer (CMS_PREFIX for a part that is not text/plain): no decision
 * looks further (the armour sniff is bounded).
 *
 * Untrusted input: MIME parts. Every function is linear in what it reads and never throws on
 * malformed input by design (the callers still catch, see facts.ts).
 */
import type { CryptoKind } from '../policy/types.js';
import { LIMITS } from '../core/limits.js';
import { contentTypeOf, parseHeaders, parseParams, splitHeader, unescapeBytes, type ContentType } from './header-fields.js';

/** Multipart levels below the message that are split; a multipart deeper down is one opaque part. */
export const MAX_DEPTH = LIMITS.mimeDepth;
/** Parts split out of multiparts, in total: more are ignored (a bomb of empty parts stays cheap). */
export const MAX_PARTS = LIMITS.mimeParts;
/** Decoded bytes of a text body searched for inline OpenPGP armour. */
const SNIFF_BYTES = 1 << 20;
/** Text bodies searched for inline OpenPGP armour. */
const MAX_SNIFFED = 20;
/** Bytes of a part's body any decision reads (base64 of SNIFF_BYTES and a margin for line ends). */
export const BODY_PREFIX = Math.ceil((SNIFF_BYTES * 4) / 3) + 4096;
/** Bytes of a CMS blob's start read for its content type. */
export const CMS_PREFIX = 256;
/** Levels of signatures around the message the top-level look goes through. */
const TOP_LEVELS = 5;

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);
const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

export interface FactsPart {
  headers: Map<string, string[]>;
  type: ContentType;
  /** The body as transfer-encoded: whole, or its first BODY_PREFIX bytes at least. */
  body: Buffer;
  depth: number;
  /** Crypto structure, not content: the parts of a multipart/encrypted (or its Exchange-mangled form). */
  structural: boolean;
  /** Not the first part of a multipart/signed: a signature there is not an attachment. */
  signatureSlot: boolean;
  /** The message itself: the top, or the signed content of a top-level signature (recursively). */
  main: boolean;
}

/** A part's header as read (header block, body offset) into the form the decisions take. */
export function partOf(header: Buffer, body: Buffer, depth: number, fallback: string): FactsPart {
  const headers = parseHeaders(header);
  return { headers, type: contentTypeOf(headers, fallback), body, depth, structural: false, signatureSlot: false, main: depth === 0 };
}

/** parsePart of messageFacts: a whole part's bytes. */
export function parsePart(raw: Buffer, depth: number, fallback: string): FactsPart {
  const { header, bodyOffset } = splitHeader(raw);
  return partOf(header, raw.subarray(bodyOffset), depth, fallback);
}

/** Children of a multipart/digest are messages unless they say otherwise (RFC 2046 5.1.5). */
export const childFallback = (multipartType: string): string => (multipartType === 'multipart/digest' ? 'message/rfc822' : 'text/plain');

/** Is this part split into its children (rather than taken as one opaque part)? */
export function splits(part: FactsPart, partsSoFar: number): boolean {
  return part.type.type.startsWith('multipart/') && !!part.type.params.get('boundary') && part.depth < MAX_DEPTH && partsSoFar < MAX_PARTS;
}

/** The flags of the i-th child of `parent`; `crypto`: the parent is crypto structure (multipart/encrypted or Exchange's form of it). */
export function markChild(child: FactsPart, parent: FactsPart, i: number, crypto: boolean): void {
  const signed = parent.type.type === 'multipart/signed';
  child.structural = parent.structural || crypto;
  child.signatureSlot = signed && i > 0;
  child.main = parent.main && signed && i === 0;
}

/** JavaScript's trim() white space within Latin-1: what `.toString('latin1').trim() === ''` ignores. */
const BLANK = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]);
export function isBlank(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (!BLANK.has(bytes[i]!)) return false;
  return true;
}

/**
 * Exchange's rewrite of PGP/MIME: multipart/mixed of [empty text/plain,] pgp-encrypted,
 * octet-stream. `firstBlank`: the first child's body is white space only (asked only when needed).
 */
export function isMangledPgpMime(types: readonly string[], firstBlank: () => boolean): boolean {
  const tail = types.slice(-2).join(' ') === 'application/pgp-encrypted application/octet-stream';
  return tail && (types.length === 2 || (types.length === 3 && types[0] === 'text/plain' && firstBlank()));
}

/** Does the top-level multipart (a multipart/mixed) of these children stand for PGP/MIME? */
export function mangledCandidate(types: readonly string[]): boolean {
  const shapes = [
    ['application/pgp-encrypted', 'application/octet-stream'],
    ['text/plain', 'application/pgp-encrypted', 'application/octet-stream'],
  ];
  return types.length <= 3 && shapes.some((s) => types.every((t, i) => s[i] === t));
}

/** The body after its transfer encoding, as far as inline-armour sniffing needs (bounded). */
function sniffBody(part: FactsPart): Buffer {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(part.body.subarray(0, BODY_PREFIX).toString('latin1'), 'base64');
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
function sniffCms(part: FactsPart): 'signed' | 'enveloped' | null {
  const cte = (part.headers.get('content-transfer-encoding')?.[0] ?? '').trim().toLowerCase();
  const head = part.body.subarray(0, CMS_PREFIX);
  const der = cte === 'base64' ? Buffer.from(head.toString('latin1'), 'base64') : head;
  if (der[0] !== 0x30 || der[1] === undefined) return null;
  const at = der[1] < 0x80 || der[1] === 0x80 ? 2 : 2 + (der[1] & 0x7f);
  if (der[at] !== 0x06) return null;
  const len = der[at + 1] ?? 0;
  return CMS_OIDS[der.subarray(at + 2, at + 2 + len).toString('hex')] ?? null;
}

/** An S/MIME blob: application/pkcs7-mime, or an octet-stream that starts as CMS. */
const isSmimeBlob = (part: FactsPart): boolean => PKCS7_MIME.has(part.type.type) || (part.type.type === 'application/octet-stream' && sniffCms(part) !== null);

/** S/MIME state of an application/pkcs7-mime part (RFC 8551 3.2.2: smime-type, else the content). */
function pkcs7State(part: FactsPart): { encrypted: CryptoKind | null; signed: CryptoKind | null } {
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

/** What the parts said so far; the readers feed it parts in document order. */
export class FactsFound {
  encrypted: CryptoKind | null = null;
  signed: CryptoKind | null = null;
  readonly attachments: { name: string; type: string }[] = [];
  private sniffed = 0;

  /**
   * One level of the look at what the whole message is (the top, then the signed content of a
   * top-level signature, TOP_LEVELS deep at most): an encryption wrapped in signatures is still
   * the whole message. True: the next level is this multipart/signed's first part.
   */
  topLevel(part: FactsPart, level: number): boolean {
    if (level >= TOP_LEVELS) return false;
    const { type, params } = part.type;
    const protocol = (params.get('protocol') ?? '').trim().toLowerCase();
    if (type === 'multipart/encrypted' && protocol === 'application/pgp-encrypted') this.encrypted = 'pgp';
    else if (isSmimeBlob(part)) {
      const s = pkcs7State(part);
      this.encrypted ??= s.encrypted;
      this.signed ??= s.signed;
    } else if (type === 'multipart/signed' && params.get('boundary')) {
      if (protocol === 'application/pkcs7-signature' || protocol === 'application/x-pkcs7-signature') this.signed ??= 'smime';
      else if (protocol === 'application/pgp-signature') this.signed ??= 'pgp';
      return true;
    }
    return false;
  }

  /** Is a multipart crypto structure (its children are not content)? The top's Exchange form is decided by the caller. */
  static cryptoContainer(part: FactsPart): boolean {
    return part.type.type === 'multipart/encrypted';
  }

  /** The top-level multipart/mixed is Exchange's form of PGP/MIME: the message is encrypted. */
  mangled(): void {
    this.encrypted ??= 'pgp';
  }

  /** A part that is not split: an attachment, inline armour in a text, or nothing to say. */
  leaf(part: FactsPart): void {
    const { type, params } = part.type;
    if (part.structural || (part.signatureSlot && SIGNATURE_TYPES.has(type))) return;
    // The S/MIME blob that is the whole message (signed or not) is the message, not an attachment.
    if (part.main && isSmimeBlob(part)) return;
    const disp = parseParams(part.headers.get('content-disposition')?.[0] ?? '');
    const name = (disp.params.get('filename')?.trim() || params.get('name') || '').trim();
    // A forwarded message counts as one attachment; what it contains is not looked into.
    if (disp.type === 'attachment' || name || type === 'message/rfc822' || type === 'message/global') {
      this.attachments.push({ name, type });
      return;
    }
    if (type === 'text/plain' && this.sniffed < MAX_SNIFFED && (this.encrypted === null || this.signed === null)) {
      this.sniffed++;
      const text = sniffBody(part);
      if (atLineStart(text, '-----BEGIN PGP MESSAGE-----')) this.encrypted ??= 'pgp';
      if (atLineStart(text, '-----BEGIN PGP SIGNED MESSAGE-----')) this.signed ??= 'pgp';
    }
  }
}
