/**
 * Addresses as the key directories see them: split into local part and domain, the WKD hash of
 * the local part (z-base-32 of SHA-1, draft-koch-openpgp-webkey-service §3.1), and the search
 * patterns that say which addresses a source may be asked about.
 *
 * Untrusted input: recipient and From: addresses (from mail), URL path segments (the portal).
 * Nothing here does I/O.
 */
import { createHash } from 'node:crypto';
import { canonicalDomain } from '../core/address.js';

export interface SplitAddress {
  /** As written: WKD sends it verbatim in `?l=` (some servers are case-sensitive). */
  local: string;
  /** Lower-case ASCII (IDNA), as DNS and our config compare it. */
  domain: string;
  /** local@domain, with the domain normalised. */
  address: string;
}

/** "Alice@Example.ORG" → { local: "Alice", domain: "example.org" }; null when it is no mailbox. */
export function splitAddress(address: string): SplitAddress | null {
  const a = address.trim();
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1) return null;
  const local = a.slice(0, at);
  // Characters that would let a local part break out of a URL, a header or a log line.
  if (/[\s<>"\\/?#%\x00-\x1f\x7f]/.test(local) || local.length > 64) return null;
  // The canonical domain (core/address.ts): IDNA A-label, invisible characters refused, and an
  // all-numeric last label (an IP address in disguise, "x@127.0.0.1") never a host to ask.
  const domain = canonicalDomain(a.slice(at + 1));
  if (!domain) return null;
  return { local, domain, address: `${local}@${domain}` };
}

/** One mailbox by the canonical comparison key (core/address.ts), as the keystore compares. */
export { sameAddress } from '../core/address.js';

const ZBASE32 = 'ybndrfg8ejkmcpqxot1uwisza345h769';

/** z-base-32 (Zooko's human-oriented base-32), most significant bit first, no padding. */
export function zbase32(data: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ZBASE32[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * The WKD hash of a local part. The draft maps only ASCII upper case to lower case (as gpg's
 * ascii_strlwr does); a full Unicode lower-casing would give other hashes than every client.
 */
export function wkdHash(local: string): string {
  const lowered = local.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return zbase32(createHash('sha1').update(lowered, 'utf8').digest());
}

/** What a WKD hash looks like: 32 z-base-32 characters (160 bits). */
export const isWkdHash = (s: string): boolean => /^[ybndrfg8ejkmcpqxot1uwisza345h769]{32}$/.test(s);

/**
 * A search pattern: with an "@" it matches whole addresses ("*@partner.example", "sales-*@x.org");
 * without, it matches the domain: "partner.example" exactly, "*.example.org" its subdomains only
 * (as relay routes do), "*" everything. `*` is any run of characters; comparison is case-insensitive.
 */
export type AddressMatcher = (address: SplitAddress) => boolean;

function globRegex(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 'i');
}

export function compilePattern(pattern: string): AddressMatcher {
  const p = pattern.trim().toLowerCase();
  if (p === '*') return () => true;
  if (p.includes('@')) {
    const re = globRegex(p);
    return (a) => re.test(`${a.local}@${a.domain}`);
  }
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return (a) => a.domain.endsWith(suffix) && a.domain.length > suffix.length;
  }
  if (p.includes('*')) {
    const re = globRegex(p);
    return (a) => re.test(a.domain);
  }
  return (a) => a.domain === p;
}

/** True when any pattern matches; an empty list matches nothing. */
export function compilePatterns(patterns: readonly string[]): AddressMatcher {
  const all = patterns.map(compilePattern);
  return (a) => all.some((m) => m(a));
}
