/**
 * HKP look-ups (draft-shaw-openpgp-hkp §3–5, as gpg's dirmngr asks them) for our users' keys:
 *   GET /pks/lookup?op=get&search=…      the keys, ASCII-armored (application/pgp-keys)
 *   GET /pks/lookup?op=index|vindex&…    with options=mr the machine-readable index (§5.2),
 *                                        otherwise a page for people (keyserver-pages.ts)
 * `search` is an exact e-mail address (any spelling that canonicalises to one of ours, bare, in
 * angle brackets, or "Name <address>") or a key id / fingerprint of a primary key or subkey
 * (0x + 16, 40 or 64 hex digits). No substring or name search: it would let anyone harvest our
 * addresses. 404 when nothing matches, 400 for a malformed query, 501 for other operations.
 *
 * Untrusted input: the query string. Secrets: none — each key's packets are checked for secret
 * material before it is armored (packets.ts); a stored key that fails it is never sent.
 */
import { enums } from 'openpgp';
import { canonicalAddress, inDomains } from '../core/address.js';
import type { Logger } from '../log/index.js';
import { armorPublicKeys } from '../openpgp/index.js';
import type { DescribedKey, KeyIndex, PublishedKey } from './key-index.js';
import { publicPacketsOnly } from './packets.js';

/** Longer than any address (254), fingerprint or "Name <address>" a client sends. */
export const MAX_SEARCH = 512;

export type HkpQuery = { op: 'get' | 'index' | 'vindex'; machine: boolean; search: HkpSearch };
export type HkpSearch = { kind: 'address'; address: string } | { kind: 'id'; id: string };

/** A reply as status, type and body; the route sends it. */
export interface HkpAnswer {
  status: number;
  type: string;
  body: string;
}

const text = (status: number, body: string): HkpAnswer => ({ status, type: 'text/plain; charset=utf-8', body: `${body}\n` });

export class StoredKeyNotPublicError extends Error {
  override readonly name = 'StoredKeyNotPublicError';
}

/** The query, or the answer that refuses it. Parameters other than op, search and options are ignored (fingerprint=on, exact=on). */
export function parseHkpQuery(query: Record<string, unknown>): HkpQuery | HkpAnswer {
  const { op, search, options } = query;
  if (typeof op !== 'string' || typeof search !== 'string' || (options !== undefined && typeof options !== 'string')) {
    return text(400, 'op and search are required, each once');
  }
  if (op !== 'get' && op !== 'index' && op !== 'vindex') return text(501, 'not implemented: this key server answers op=get, index and vindex');
  if (search.length > MAX_SEARCH) return text(400, 'search is too long');
  if (/[\p{Cc}\u2028\u2029]/u.test(search)) return text(400, 'search holds control characters');
  const machine = (options ?? '').split(',').includes('mr');
  const s = search.trim();
  const hex = /^(?:0x)?([0-9a-f]+)$/i.exec(s);
  if (hex) {
    const digits = hex[1]!;
    if (digits.length === 16 || digits.length === 40 || digits.length === 64) return { op, machine, search: { kind: 'id', id: digits.toUpperCase() } };
    return text(400, 'a key id is 16 hex digits, a fingerprint 40 or 64 (short key ids are ambiguous)');
  }
  // "Name <address>", "<address>" or the address alone; the last bracket pair holds the mailbox.
  const bracketed = /<([^<>]*)>\s*$/.exec(s);
  const address = canonicalAddress(bracketed ? bracketed[1]! : s);
  if (!address) return text(400, 'search by exact e-mail address or key id only');
  return { op, machine, search: { kind: 'address', address } };
}

/** The keys a search finds: an address only in internal_domains; a key id among our users' keys. */
export async function findKeys(index: KeyIndex, search: HkpSearch, internalDomains: ReadonlySet<string>): Promise<PublishedKey[]> {
  if (search.kind === 'id') return index.byId(search.id);
  // Looked up either way, so an outside address costs what one of ours does.
  const keys = await index.byAddress(search.address);
  return inDomains(search.address, internalDomains) ? keys : [];
}

/** op=get: the keys, armored, after the packet check. */
export async function armoredKeys(keys: readonly PublishedKey[]): Promise<HkpAnswer> {
  for (const k of keys) {
    if (!publicPacketsOnly(k.publicKey)) throw new StoredKeyNotPublicError(`stored public key ${k.fingerprint} does not look like a public key; refusing to serve it`);
  }
  return { status: 200, type: 'application/pgp-keys', body: await armorPublicKeys(keys.map((k) => k.publicKey)) };
}

/** Percent-escape what may not stand in an index field: ':' '%', controls, and every non-ASCII byte (§5.2). */
export function escapeField(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b < 0x20 || b > 0x7e || b === 0x25 || b === 0x3a ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/** RFC 9580 §9.1 algorithm number of openpgp.js' name for it ("eddsaLegacy" → 22). */
const algorithmId = (name: string): number | '' => {
  const id = (enums.publicKey as Record<string, unknown>)[name];
  return typeof id === 'number' ? id : '';
};
/** Key sizes of the curves, for the index's keylen field (RSA and DSA carry their own). */
const CURVE_BITS: Record<string, number> = {
  ed25519Legacy: 255, curve25519Legacy: 255, nistP256: 256, nistP384: 384, nistP521: 521,
  secp256k1: 256, brainpoolP256r1: 256, brainpoolP384r1: 384, brainpoolP512r1: 512,
};
const ALGORITHM_BITS: Record<string, number> = { x25519: 255, ed25519: 255, x448: 448, ed448: 448 };
const seconds = (d: Date | null) => (d ? String(Math.floor(d.getTime() / 1000)) : '');

function keyFlags(k: DescribedKey, now: number): string {
  const expired = k.info.expires !== null && k.info.expires.getTime() <= now;
  return `${k.info.revoked ? 'r' : ''}${expired ? 'e' : ''}`;
}

/** op=index with options=mr (§5.2): info, then pub and uid lines per key. */
export function machineIndex(keys: readonly DescribedKey[], now: number): HkpAnswer {
  const lines = [`info:1:${keys.length}`];
  for (const k of keys) {
    const i = k.info;
    const bits = i.bits ?? (i.curve ? CURVE_BITS[i.curve] : undefined) ?? ALGORITHM_BITS[i.algorithm];
    lines.push(`pub:${i.fingerprint}:${algorithmId(i.algorithm)}:${bits ?? ''}:${seconds(i.created)}:${seconds(i.expires)}:${keyFlags(k, now)}`);
    for (const uid of i.userIds) lines.push(`uid:${escapeField(uid)}:::`);
  }
  return { status: 200, type: 'text/plain; charset=utf-8', body: `${lines.join('\n')}\n` };
}

/** An index for people: the keys, for the page in the portal's layout. */
export interface HkpIndexForPeople {
  status: 200;
  keys: DescribedKey[];
}

/** The whole look-up: query → answer; logs each served key by address and fingerprint only. */
export async function hkpLookup(
  query: Record<string, unknown>,
  ctx: { index: KeyIndex; domains: ReadonlySet<string>; log: Logger; now: () => number },
): Promise<HkpAnswer | HkpIndexForPeople> {
  const q = parseHkpQuery(query);
  if ('status' in q) return q;
  const found = await findKeys(ctx.index, q.search, ctx.domains);
  if (!found.length) return text(404, 'no key found');
  let answer: HkpAnswer | HkpIndexForPeople;
  let served: readonly PublishedKey[];
  if (q.op === 'get') {
    // Sent as published: only an index needs what is inside the keys (user ids, dates).
    answer = await armoredKeys((served = found));
  } else {
    const described = await ctx.index.describe(found);
    served = described;
    answer = q.machine ? machineIndex(described, ctx.now()) : { status: 200, keys: described };
  }
  // Found but not readable by openpgp/: nothing to show in an index.
  if (!served.length) return text(404, 'no key found');
  ctx.log.info(
    { event: 'portal.hkp.served', op: q.op, ...(q.search.kind === 'address' ? { address: q.search.address } : {}), fingerprints: served.map((k) => k.fingerprint) },
    'HKP key served',
  );
  return answer;
}
