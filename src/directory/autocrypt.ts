/**
 * Autocrypt Level 1 (https://autocrypt.org/level1.html): read the `Autocrypt:` header of incoming
 * mail, store its key (source 'autocrypt') with key-change safety, and write the header for
 * outgoing mail. The sender's From: is not authenticated, so a header is only ever a hint: it
 * binds a key to its own `addr` (which must be the From: address and a user id of the key), never
 * to an internal address (our users' keys are ours), and a key that differs from the one we had
 * is stored but audited as a key change and ranked below the known key (preferredPgpKeys), never
 * preferred silently.
 *
 * Untrusted input: the header value (attributes, base64) and the key inside it.
 */
import * as openpgp from 'openpgp';
import type { Logger } from '../log/index.js';
import type { ImportStatus, StoredPgpKey } from '../keystore/index.js';
import type { ParsedPgpKey } from '../openpgp/index.js';
import { sameAddress, splitAddress } from './address.js';
import { importCandidate, keysForAddress, type DirectoryStore } from './keys.js';

export type PreferEncrypt = 'mutual' | 'nopreference';

export interface AutocryptHeader {
  /** The header's addr (= the From: address). */
  addr: string;
  preferEncrypt: PreferEncrypt;
  /** base64 of the binary key, whitespace removed. */
  keydata: string;
  /** The key, public only, bound to `addr` alone. */
  key: ParsedPgpKey;
  /** Every address the key itself claims (kept when the keystore already binds it to them). */
  claimed: string[];
}

export class AutocryptError extends Error {
  override readonly name = 'AutocryptError';
}

/** Autocrypt keys are small (ed25519 ≈ 300 bytes, RSA-4096 ≈ 2 KB); anything huge is not one. */
const MAX_KEYDATA = 64 * 1024;

/**
 * One `Autocrypt:` header value (folded or not) against the message's From: address (bare
 * addr-spec). Ignored, with a reason: addr missing, repeated or not the From: address; an unknown
 * critical attribute (one not starting with "_", as Level 1 §2.1 says); keydata that is not base64
 * of exactly one key with a valid user id for addr.
 */
export async function parseAutocrypt(headerValue: string, fromAddress: string): Promise<{ ok: true; header: AutocryptHeader } | { ok: false; reason: string }> {
  const attrs = new Map<string, string>();
  for (const part of headerValue.replace(/\r?\n[ \t]/g, ' ').split(';')) {
    const s = part.trim();
    if (!s) continue;
    const eq = s.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `malformed attribute ${JSON.stringify(s.slice(0, 40))}` };
    const name = s.slice(0, eq).trim().toLowerCase();
    if (attrs.has(name)) return { ok: false, reason: `attribute ${name} given twice` };
    attrs.set(name, s.slice(eq + 1).trim());
  }
  for (const name of attrs.keys()) {
    if (name !== 'addr' && name !== 'prefer-encrypt' && name !== 'keydata' && !name.startsWith('_')) return { ok: false, reason: `unknown critical attribute ${JSON.stringify(name)}` };
  }
  const addr = attrs.get('addr');
  const keydata = attrs.get('keydata')?.replace(/\s+/g, '');
  if (!addr) return { ok: false, reason: 'no addr attribute' };
  if (!keydata) return { ok: false, reason: 'no keydata attribute' };
  const a = splitAddress(addr);
  if (!a) return { ok: false, reason: `addr ${JSON.stringify(addr)} is not an address` };
  if (!sameAddress(a.address, splitAddress(fromAddress)?.address ?? fromAddress)) return { ok: false, reason: `addr ${a.address} is not the From: address ${fromAddress}` };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keydata) || keydata.length % 4 !== 0) return { ok: false, reason: 'keydata is not base64' };
  if (keydata.length > (MAX_KEYDATA * 4) / 3) return { ok: false, reason: `keydata larger than ${MAX_KEYDATA} bytes` };
  const { keys, problems } = await keysForAddress(Buffer.from(keydata, 'base64'), a.address);
  if (keys.length !== 1 || problems.some((p) => /dropped|not an OpenPGP key/.test(p))) {
    return { ok: false, reason: problems[0] ?? (keys.length ? 'keydata holds more than one key' : 'keydata holds no key') };
  }
  const c = keys[0]!;
  const preferEncrypt: PreferEncrypt = attrs.get('prefer-encrypt')?.toLowerCase() === 'mutual' ? 'mutual' : 'nopreference';
  return { ok: true, header: { addr: a.address, preferEncrypt, keydata, key: c.key, claimed: c.claimed } };
}

/**
 * Level 1 §2.3: several Autocrypt headers for the From: address make all of them invalid (which
 * one would be the sender's is unknowable). Headers for other addresses do not count.
 */
export async function parseAutocryptHeaders(values: readonly string[], fromAddress: string): Promise<{ ok: true; header: AutocryptHeader } | { ok: false; reason: string }> {
  if (!values.length) return { ok: false, reason: 'no Autocrypt header' };
  const parsed = await Promise.all(values.map((v) => parseAutocrypt(v, fromAddress)));
  const valid = parsed.filter((p): p is { ok: true; header: AutocryptHeader } => p.ok);
  if (valid.length > 1) return { ok: false, reason: `${valid.length} Autocrypt headers for ${fromAddress}` };
  return valid[0] ?? parsed[0]!;
}

export interface AutocryptImport {
  status: ImportStatus;
  /** The store held another key for addr: this one is stored, audited as "key-change", not preferred. */
  keyChange: boolean;
  key: StoredPgpKey;
  preferEncrypt: PreferEncrypt;
}

/**
 * Store the key of a parsed header. Returns null (with a log event) for addresses of internal
 * domains. The store's own errors propagate (the caller decides whether mail waits for them).
 */
export async function importAutocrypt(
  store: DirectoryStore,
  header: AutocryptHeader,
  opts: { internalDomains: readonly string[]; actor?: string; log?: Logger },
): Promise<AutocryptImport | null> {
  const actor = opts.actor ?? 'worker';
  const domain = splitAddress(header.addr)?.domain;
  if (!domain || opts.internalDomains.some((d) => d.toLowerCase() === domain)) {
    opts.log?.warn({ event: 'directory.autocrypt.internal', address: header.addr }, 'Autocrypt header for an internal address ignored');
    return null;
  }
  const fpr = header.key.info.fingerprint;
  const known = await store.pgpKeysFor(header.addr);
  const others = known.filter((k) => k.info.fingerprint !== fpr);
  // A change is a key new to this address while it had another; the known key again is not.
  const change = others.length > 0 && !known.some((k) => k.info.fingerprint === fpr);
  const { status, key } = await importCandidate(store, { key: header.key, claimed: header.claimed }, { source: 'autocrypt', actor });
  if (change) {
    await store.audit({ actor, action: 'key-change', object: `pgp:${fpr}`, detail: `new OpenPGP key from an Autocrypt header for ${header.addr}; known before: ${others.map((k) => k.info.fingerprint).join(', ')}` });
    opts.log?.warn({ event: 'directory.autocrypt.key_change', address: header.addr, fingerprint: fpr, previous: others.map((k) => k.info.fingerprint) }, 'Autocrypt header brought another key for a known address');
  } else if (status !== 'duplicate') {
    opts.log?.info({ event: 'directory.autocrypt.imported', address: header.addr, fingerprint: fpr, status }, 'Autocrypt key stored');
  }
  return { status, keyChange: change || (await isKeyChange(store, fpr)), key, preferEncrypt: header.preferEncrypt };
}

/** The audit log says this key arrived as a key change (and no admin has imported it since). */
async function isKeyChange(store: Pick<DirectoryStore, 'auditLog'>, fingerprint: string): Promise<boolean> {
  const log = await store.auditLog(`pgp:${fingerprint}`);
  let flagged = false;
  for (const e of log) {
    if (e.action === 'key-change') flagged = true;
    // An admin's own import (CLI) of the same key is a confirmation.
    else if (e.action === 'import' && e.actor.startsWith('cli')) flagged = false;
  }
  return flagged;
}

/**
 * An address's keys as a sender should prefer them: keys not under a key-change flag first, then
 * usable for encryption, then the newest. The keystore orders by creation date only, which would
 * let a newer key from an unauthenticated header take over silently. `keyChange` marks the
 * flagged ones (they need an admin's eye before they are trusted like the others).
 */
export async function preferredPgpKeys(store: Pick<DirectoryStore, 'pgpKeysFor' | 'auditLog'>, address: string): Promise<(StoredPgpKey & { keyChange: boolean })[]> {
  const keys = await store.pgpKeysFor(address);
  const marked = await Promise.all(keys.map(async (k) => ({ ...k, keyChange: await isKeyChange(store, k.info.fingerprint) })));
  const score = (k: (typeof marked)[number]) => (k.keyChange ? 0 : 4) + (k.info.canEncrypt ? 2 : 0) + (k.info.revoked ? 0 : 1);
  return marked.sort((a, b) => score(b) - score(a) || b.info.created.getTime() - a.info.created.getTime());
}

/**
 * The `Autocrypt:` header value for outgoing mail from `address` (Level 1 §2.1): addr,
 * prefer-encrypt=mutual when asked, and keydata folded at 76 columns. The key is cut down to what
 * Level 1 asks for (§2.1.1): the primary key, the user id for `address` with its self-signature,
 * and the current encryption subkey with its binding — no third-party certifications, no other
 * identities (they would leak to every correspondent and bloat every mail).
 */
export async function autocryptHeader(address: string, publicKey: Buffer, opts: { preferEncrypt?: PreferEncrypt; fold?: string } = {}): Promise<string> {
  const a = splitAddress(address);
  if (!a) throw new AutocryptError(`${JSON.stringify(address)} is not an address`);
  let key: openpgp.Key;
  try {
    key = (await openpgp.readKey({ binaryKey: new Uint8Array(publicKey) })).toPublic();
  } catch (err) {
    throw new AutocryptError(`not an OpenPGP public key: ${(err as Error).message}`);
  }
  const users: openpgp.User[] = [];
  for (const u of key.users) {
    if (!u.userID?.email || !sameAddress(u.userID.email, a.address)) continue;
    // A revoked or unsigned user id would make peers drop the key (or keep a dead identity).
    if (await u.verify().then(() => true, () => false)) users.push(u);
  }
  if (!users.length) throw new AutocryptError(`key ${key.getFingerprint().toUpperCase()} has no user id for ${a.address}`);
  let enc: openpgp.Key | openpgp.Subkey;
  try {
    enc = await key.getEncryptionKey();
  } catch (err) {
    throw new AutocryptError(`key ${key.getFingerprint().toUpperCase()} cannot encrypt: ${(err as Error).message}`);
  }
  for (const u of users) u.otherCertifications = [];
  key.users = users;
  key.subkeys = enc === key ? [] : key.subkeys.filter((s) => s.getKeyID().equals(enc.getKeyID()));
  const data = Buffer.from(key.write()).toString('base64');
  const fold = opts.fold ?? '\r\n ';
  const lines = data.match(/.{1,76}/g) ?? [];
  const prefer = opts.preferEncrypt === 'mutual' ? ' prefer-encrypt=mutual;' : '';
  return `addr=${a.address};${prefer} keydata=${fold}${lines.join(fold)}`;
}
