/**
 * Limits against hostile messages: what one message may cost a parser (nesting depth, number of
 * parts, header size, decompressed size, ASN.1 lengths and counts), and the one error a parser
 * throws when a message goes past one of them. The error names the limit, so the hold reason and
 * the log say which one was hit ("MIME nesting deeper than 50 levels"), never just "failed".
 *
 * Where the values come from:
 * - MIME nesting: Postfix refuses mail nested deeper than `mime_nesting_limit` (default 100);
 *   SpamAssassin's Message parses 20 levels (`subparse`). Real mail rarely goes past 5 (a forwarded
 *   signed message in a digest); 50 sits between the two and leaves every real message alone.
 * - Header size: Postfix's `header_size_limit` (102400 bytes) for one header block.
 * - MIME parts: 1000 in a message, as mime/facts.ts already counts (a bomb of empty parts).
 * - OpenPGP decompressed size: a multiple of `smtp.max_message_size` (worker.max_decompressed_size),
 *   enforced by openpgp.js' own `maxDecompressedMessageSize` while it inflates (a stream cut off at
 *   the limit, so a 1 GB bomb never exists in memory).
 * - CMS: asn1js 4 refuses nesting deeper than 100 and more than 10,000 nodes by default; Postern's
 *   own BER reader (smime/sig-ber.ts) stops at 40 levels, and so does the check before both
 *   (smime/ber-limits.ts). The count of RecipientInfos, certificates or SignerInfos in one SET
 *   bounds the work a message can ask for (a key look-up, a parse or a signature check each).
 *
 * Untrusted input: none here. Secrets: none.
 */
import { PosternError } from './errors.js';

export const LIMITS = {
  /** Multipart and message/rfc822 levels below the message itself. */
  mimeDepth: 50,
  /** Parts in one message, every level counted. */
  mimeParts: 1000,
  /** Bytes in one header block (the message's, or a part's). */
  headerBytes: 102_400,
  /** OpenPGP messages (or S/MIME layers) opened one inside another. */
  cryptoLayers: 6,
  /** BER nesting of a CMS object. */
  cmsDepth: 40,
  /**
   * Entries in one SET of a CMS object: RecipientInfos (one per recipient the sender encrypted to:
   * a mailing list may have hundreds), certificates, CRLs, SignerInfos.
   */
  cmsItems: 1000,
} as const;

/** Decompressed OpenPGP data may be this many times the largest message accepted, by default. */
export const DECOMPRESSED_FACTOR = 2;

export type LimitName =
  | 'mime_depth'
  | 'mime_parts'
  | 'header_size'
  | 'decompressed_size'
  | 'crypto_layers'
  | 'cms_length'
  | 'cms_depth'
  | 'cms_count';

/** Limits of size: the message is too big once opened. The others are about its structure. */
const SIZE_LIMITS = new Set<LimitName>(['decompressed_size', 'cms_length', 'header_size']);

/**
 * A message went past a parser's limit. Not temporary: the same bytes hit the same limit every
 * time, so the worker holds the message (for the recipients whose plan needed the parser) with
 * this text as the reason, instead of trying again.
 */
export class LimitExceededError extends PosternError {
  readonly limit: LimitName;
  readonly max: number;
  constructor(limit: LimitName, max: number, text: string) {
    // RFC 3463: 5.3.4 "message too big for system"; 5.6.0 "other or undefined media error" (Postfix
    // says 5.6.0 for mail nested deeper than mime_nesting_limit).
    super(SIZE_LIMITS.has(limit) ? { code: 552, status: '5.3.4', text } : { code: 554, status: '5.6.0', text });
    this.limit = limit;
    this.max = max;
  }
}

/** "50 MB", "100 KB", "12 bytes": sizes in reasons, as an admin configures them. */
export function sizeText(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KB`;
  return `${n} bytes`;
}
