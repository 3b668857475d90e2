/**
 * MAIL FROM:<path> and RCPT TO:<path> with their ESMTP parameters, parsed from the command line
 * as it came off the wire. The checks are smtp-server's (which Postern used before its own
 * protocol layer), so the same addresses are refused with the same replies: exactly one "@"
 * between a non-empty local part and domain, no dots at the edges of either, a valid address
 * literal, no control or invisible characters, at most 253 octets; the source route of RFC 5321
 * 4.1.2 ("@relay:") is dropped. Unlike smtp-server the domain stays as written (an A-label is
 * not turned into Unicode), so whether the address was 8-bit on the wire is simply read off it.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface ParsedPath {
  /** The address between the angle brackets, source route dropped; "" for <>. */
  address: string;
  /** Non-ASCII on the wire (RFC 6531: only with SMTPUTF8). */
  eightBit: boolean;
  /** Parameters by upper-case keyword: their value (xtext-decoded), or true when given without one. */
  params: Map<string, string | true>;
}

export type PathResult = { ok: true; path: ParsedPath } | { ok: false; problem: 'syntax' } | { ok: false; problem: 'parameter'; text: string };

// Control characters plus zero-width space, word joiner and BOM: never legitimate in an address,
// and a way to forge log lines, headers, or addresses that look like others.
const ADDRESS_UNSAFE = /[\x00-\x1f\x7f-\x9f\u200b\u2060\ufeff]/;
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
const NON_ASCII = /[^\x00-\x7f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** RFC 3461 xtext: "+XX" is a hex escape. */
export function decodeXtext(value: string): string {
  return value.replace(/\+([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * `verb` is "MAIL FROM" or "RCPT TO"; `line` the whole command line without CRLF. Parameters
 * that need a value (`valued`) and repeated parameters are refused (501), as RFC 3461 says.
 */
export function parsePath(verb: 'MAIL FROM' | 'RCPT TO', line: Buffer, valued: readonly string[]): PathResult {
  let text: string;
  try {
    text = utf8.decode(line);
  } catch {
    return { ok: false, problem: 'syntax' }; // not UTF-8: no address of any kind
  }
  const colon = text.indexOf(':');
  if (colon < 0 || text.slice(0, colon).trim().toUpperCase() !== verb) return { ok: false, problem: 'syntax' };
  const parts = text.slice(colon + 1).trim().split(/\s+/);
  let address = parts.shift() ?? '';
  if (!/^<[^<>]*>$/.test(address)) return { ok: false, problem: 'syntax' };
  address = address.slice(1, -1).replace(/^@[^\s,:@]+(?:,@[^\s,:@]+)*:/, '');

  const params = new Map<string, string | true>();
  let duplicate: string | null = null;
  for (const p of parts) {
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).toUpperCase();
    if (!key) continue;
    const raw = eq < 0 ? '' : p.slice(eq + 1);
    const value: string | true = raw ? decodeXtext(raw) : true;
    if (typeof value === 'string' && CONTROL.test(value)) return { ok: false, problem: 'syntax' };
    if (params.has(key)) duplicate ??= key;
    params.set(key, value);
  }
  if (!validAddress(verb, address)) return { ok: false, problem: 'syntax' };
  if (duplicate) return { ok: false, problem: 'parameter', text: `Error: duplicate ${duplicate} parameter` };
  for (const key of valued) if (params.get(key) === true) return { ok: false, problem: 'parameter', text: `Error: ${key} parameter requires a value` };
  return { ok: true, path: { address, eightBit: NON_ASCII.test(address), params } };
}

function validAddress(verb: string, address: string): boolean {
  if (!address) return true; // <>: the null sender (RCPT refuses it itself)
  if (ADDRESS_UNSAFE.test(address)) return false;
  if (verb === 'RCPT TO' && address.toLowerCase() === 'postmaster') return true;
  const parts = address.split('@');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return false;
  const [local, domain] = parts as [string, string];
  if (Buffer.byteLength(address) > 253) return false;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
  if (domain.startsWith('[') && domain.endsWith(']')) {
    const ip = domain.slice(1, -1);
    return /^ipv6:/i.test(ip) ? isIPv6(ip.slice(5)) : isIPv4(ip);
  }
  return !(domain.startsWith('.') || domain.endsWith('.') || domain.includes('..') || domain.includes('.-') || domain.includes('-.') || !/^[a-zA-Z0-9\u0080-\uffff.-]+$/.test(domain));
}
