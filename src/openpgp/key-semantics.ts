/**
 * What openpgp.js 6 leaves to its caller when a key is read as RFC 9580 and gpg read it. openpgp.js
 * itself already judges key validity at a signature's creation time and tells soft revocations
 * (superseded, retired, user id no longer valid: only what came after) from hard ones (compromised,
 * no reason, an unknown reason: everything). The gaps closed here:
 *
 * - A v4 key's key flags, expiry, preferences and features are read from the primary user id's
 *   self-signature only. A key whose user-id certifications lack them and whose direct-key
 *   self-signature (0x1F) carries them (RFC 4880 §5.2.3.3, RFC 9580 §5.2.3.10: "subpackets on the
 *   direct-key signature apply to the entire key") would have no key flags at all — openpgp.js then
 *   refuses it for signing and encrypting. `withKeySemantics` gives each key object a primary
 *   self-signature that falls back, field by field, to the direct-key self-signature valid at the
 *   same date (the user id's own value first, as Sequoia does; gpg prefers the direct-key one when
 *   both carry a value, which only a self-contradicting key tells apart).
 * - openpgp.js caches "revoked" on each self-signature the first time it finds it revoked, at
 *   whatever date it was asked for. With a soft revocation that cache is wrong for earlier dates: a
 *   key object asked about "now" then calls a signature made before the revocation revoked too.
 *   A key with a soft revocation is therefore never shared between dates: `hasSoftRevocation` tells
 *   the callers to read a fresh object for each verification (prepared.ts). A hard revocation is
 *   the same at every date, so the cache is right for it.
 */
import * as openpgp from 'openpgp';
import type { Key, SignaturePacket } from 'openpgp';

/** Fields of a self-signature that describe the key as a whole (not in openpgp.js' typings: the last two). */
const KEY_FIELDS = ['keyFlags', 'preferredSymmetricAlgorithms', 'preferredHashAlgorithms', 'preferredCompressionAlgorithms', 'preferredAEADAlgorithms', 'preferredCipherSuites', 'features'] as const;

type Sig = SignaturePacket & Record<string, unknown>;
type WithDirect = Key & { directSignatures: SignaturePacket[] };
type GetSelfSig = (date?: Date | null, userID?: openpgp.UserID, config?: openpgp.Config) => Promise<SignaturePacket>;

const patched = new WeakSet<Key>();

/** The newest direct-key self-signature that verifies and is in force at `date` (null: any time). */
async function directKeySignature(key: Key, date: Date | null | undefined, config?: openpgp.Config): Promise<SignaturePacket | null> {
  let best: SignaturePacket | null = null;
  for (const sig of (key as WithDirect).directSignatures ?? []) {
    try {
      // A null date (openpgp.js' getExpirationTime asks so) checks no time at all, as openpgp.js does.
      await sig.verify(key.keyPacket, openpgp.enums.signature.key, { key: key.keyPacket }, date as Date, undefined, config);
      if (!best || (sig.created?.getTime() ?? 0) >= (best.created?.getTime() ?? 0)) best = sig;
    } catch {
      // not by this key, expired, in the future, or a weak hash: not the key's word
    }
  }
  return best;
}

/** The user id's self-signature, with what it lacks taken from the direct-key self-signature. */
function merged(cert: SignaturePacket, direct: SignaturePacket): SignaturePacket {
  const c = cert as Sig;
  const d = direct as Sig;
  const over: PropertyDescriptorMap = {};
  for (const f of KEY_FIELDS) if (c[f] == null && d[f] != null) over[f] = { value: d[f], enumerable: true, writable: true };
  if (c.keyNeverExpires == null && d.keyNeverExpires != null) {
    over.keyNeverExpires = { value: d.keyNeverExpires, enumerable: true, writable: true };
    over.keyExpirationTime = { value: d.keyExpirationTime, enumerable: true, writable: true };
  }
  // Everything else (created, verify, isExpired …) is the certification's own, through the prototype.
  return Object.keys(over).length ? (Object.create(cert, over) as SignaturePacket) : cert;
}

/**
 * The key with direct-key self-signature semantics (see above); the same object, changed in place
 * once. v6 keys need nothing: openpgp.js reads them from their direct-key signature already.
 */
export function withKeySemantics<K extends Key>(key: K): K {
  if (patched.has(key) || key.keyPacket.version === 6) return key;
  patched.add(key);
  if (!(key as unknown as WithDirect).directSignatures?.length) return key;
  // Not in openpgp.js' typings, but a public method of every Key (RFC 9580's "primary self-signature").
  const own = ((key as unknown as { getPrimarySelfSignature: GetSelfSig }).getPrimarySelfSignature).bind(key);
  const replacement: GetSelfSig = async (date = new Date(), userID = {}, config) => {
    const cert = await own(date, userID, config);
    const direct = await directKeySignature(key, date, config);
    return direct ? merged(cert, direct) : cert;
  };
  Object.defineProperty(key, 'getPrimarySelfSignature', { value: replacement, configurable: true, writable: true });
  return key;
}

const SOFT = new Set<number>([openpgp.enums.reasonForRevocation.keySuperseded, openpgp.enums.reasonForRevocation.keyRetired, openpgp.enums.reasonForRevocation.userIDInvalid]);

/** RFC 9580 §5.2.3.31: only these three reasons leave earlier signatures standing; no reason or any other is hard. */
export const isSoftRevocation = (sig: SignaturePacket): boolean => sig.reasonForRevocationFlag != null && SOFT.has(sig.reasonForRevocationFlag);

/** Does any part of the key carry a soft revocation (verified or not: it only decides how the key is read)? */
export function hasSoftRevocation(key: Key): boolean {
  const all = [...key.revocationSignatures, ...key.users.flatMap((u) => u.revocationSignatures), ...key.subkeys.flatMap((s) => s.revocationSignatures)];
  return all.some(isSoftRevocation);
}

export interface RevocationFact {
  /** What was revoked: 'the key', 'subkey 0x…', 'user id "…"'. */
  target: string;
  at: Date;
  hard: boolean;
  /** The reason in words, with the holder's own text when there is one. */
  reason: string;
}

const REASONS: Record<number, string> = { 0: 'no reason given', 1: 'key superseded', 2: 'key compromised', 3: 'key retired', 32: 'user id no longer valid' };

function reasonText(sig: SignaturePacket): string {
  const flag = sig.reasonForRevocationFlag;
  const base = flag == null ? 'no reason given' : (REASONS[flag] ?? `unknown reason ${flag}`);
  const own = sig.reasonForRevocationString?.replace(/[\r\n"]+/g, ' ').trim().slice(0, 80);
  return own ? `${base}: ${own}` : base;
}

/**
 * The key's own revocations that verify (third-party ones are not supported by openpgp.js, and
 * not counted here either), for the words of a verdict: what, when, why, hard or soft.
 */
export async function revocationFacts(key: Key): Promise<RevocationFact[]> {
  const out: RevocationFact[] = [];
  const primary = key.keyPacket;
  const check = async (sigs: SignaturePacket[], type: openpgp.enums.signature, data: object, target: string) => {
    for (const sig of sigs) {
      try {
        // No date: a revocation counts from its own creation time, whenever it is looked at.
        await sig.verify(primary, type, data, undefined, undefined);
        out.push({ target, at: sig.created ?? new Date(0), hard: !isSoftRevocation(sig), reason: reasonText(sig) });
      } catch {
        // not by the key itself, or broken: openpgp.js ignores it too
      }
    }
  };
  await check(key.revocationSignatures, openpgp.enums.signature.keyRevocation, { key: primary }, 'the key');
  for (const s of key.subkeys) await check(s.revocationSignatures, openpgp.enums.signature.subkeyRevocation, { key: primary, bind: s.keyPacket }, `subkey 0x${s.getKeyID().toHex().toUpperCase()}`);
  for (const u of key.users) {
    if (u.userID) await check(u.revocationSignatures, openpgp.enums.signature.certRevocation, { key: primary, userID: u.userID }, `user id ${JSON.stringify(u.userID.userID.slice(0, 80))}`);
  }
  return out;
}
