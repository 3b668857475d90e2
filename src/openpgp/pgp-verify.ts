/**
 * OpenPGP signature verdicts, as S/MIME states them (smime/verify.ts): one report per signature,
 * with the signer, its trust and its binding to the From: (and Date:) header. openpgp.js resolves
 * each signature's `verified` promise separately and does not fail a message for a bad or
 * unverifiable signature, so every promise is awaited here and turned into a status:
 * 'invalid' (does not match the content, wrong hash, key not valid when it signed), 'unknown'
 * (no key of ours has that id), 'unsupported' (a signature version, public-key or hash algorithm
 * Postern cannot check: neither good nor bad), 'untrusted' (good, by a key nobody vouched for),
 * 'mismatch' (good, but the key's user ids name no From: address, or the Date: header is far from
 * the signing time), 'valid'.
 *
 * Time: the key is judged as it was when it signed (openpgp.js checks validity at the signature's
 * creation time), and so are its user ids here: a soft revocation (superseded, retired, user id no
 * longer valid) leaves earlier signatures standing, a hard one (compromised, no or unknown reason)
 * voids them all (RFC 9580 §5.2.3.31).
 */
import * as openpgp from 'openpgp';
import type { PublicKey } from 'openpgp';
import { bindSigner, type FromBinding } from '../mime/index.js';
import { revocationFacts } from './key-semantics.js';
import { bytes, enumName, keyAddresses, type PgpVerificationKey } from './prepared.js';

export interface PgpSignatureReport {
  status: 'valid' | 'invalid' | 'untrusted' | 'mismatch' | 'unknown' | 'unsupported';
  /** The signing (sub)key's id, upper-case hex. */
  keyId: string;
  /** The primary key's fingerprint, when the key is known. */
  fingerprint?: string;
  /** The key's address that matched From:, else its first. */
  address?: string;
  reason?: string;
  /** whole: the message content; partial: one part among unsigned ones; outer: over ciphertext. */
  scope: 'whole' | 'partial' | 'outer';
  signedAt?: Date;
  hash?: string;
}

export interface VerifyContext {
  /** As smime/verify.ts: the address(es) a signer may be bound to, and why none may (several From: …). */
  fromAddresses: string[];
  fromProblem?: string;
  messageDate?: Date;
  now?: Date;
  /** Looks the keys up for these key ids (and the From: addresses). */
  keysFor(keyIds: string[]): Promise<PgpVerificationKey[]>;
}

const DATE_TOLERANCE_MS = 60 * 60 * 1000;
/** openpgp 6 defaults, stated: SHA-1 and weaker hashes in data signatures are refused ('invalid'). */
export const IN_CONFIG = { constantTimePKCS1Decryption: true } as const;

const hex = (k: openpgp.KeyID) => k.toHex().toUpperCase();

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/^Error: /, '');
/** openpgp.js' words for an algorithm it does not implement (a hash, a public-key algorithm). */
const UNSUPPORTED = /unsupported (hash|public key|signature)|unknown (hash|public key)|not implemented/i;

function invalidReason(m: string): string {
  if (/digest did not match|signature did not match|hash/i.test(m) && /match/i.test(m)) return 'the signature does not match the signed content (changed after signing, or a wrong hash)';
  if (/insecure|weak|sha-?1|md5/i.test(m)) return `the signature uses an algorithm refused as insecure: ${m}`;
  if (/expired/i.test(m)) return `the signature or its key had expired: ${m}`;
  if (/revoked/i.test(m)) return `the signing key is revoked: ${m}`;
  if (/could not find valid signing key/i.test(m)) return `the key had no key allowed to sign when it signed (key flags, expiry or binding): ${m}`;
  return `the signature is not valid: ${m}`;
}

/**
 * A revoked key's verdict in words: which revocation, when, and why it reaches this signature —
 * of the key itself or of the subkey that signed (a revoked user id makes a binding fail, not a signature).
 */
async function revokedReason(key: PublicKey, keyId: string, signedAt: Date | undefined, fallback: string): Promise<string> {
  const facts = (await revocationFacts(key).catch(() => [])).filter((f) => f.target === 'the key' || f.target === `subkey 0x${keyId}`);
  const day = (d: Date) => d.toISOString().slice(0, 10);
  const f = facts.find((x) => x.hard) ?? facts.find((x) => !signedAt || x.at.getTime() <= signedAt.getTime());
  if (!f) return fallback;
  return f.hard
    ? `${f.target} was revoked on ${day(f.at)} (${f.reason}): a hard revocation voids every signature, also those made before it`
    : `${f.target} was revoked on ${day(f.at)} (${f.reason}), before this signature was made${signedAt ? ` (${day(signedAt)})` : ''}`;
}

/** The key objects to verify with: a key with a soft revocation is read afresh each time (key-semantics.ts). */
export function verificationInstances(keys: PgpVerificationKey[]): Promise<PublicKey[]> {
  return Promise.all(keys.map((k) => (k.fresh ? k.fresh() : Promise.resolve(k.key))));
}

/**
 * Turn openpgp.js's per-signature results into reports; `scope` as the caller determined it.
 * `instances`: the key objects openpgp.js verified with (verificationInstances), in the order of `keys`.
 */
export async function verdicts(results: openpgp.VerifyMessageResult['signatures'], keys: PgpVerificationKey[], ctx: VerifyContext, scope: PgpSignatureReport['scope'], instances: PublicKey[] = keys.map((k) => k.key)): Promise<PgpSignatureReport[]> {
  const out: PgpSignatureReport[] = [];
  const from: FromBinding = { addresses: ctx.fromAddresses, ...(ctx.fromProblem ? { problem: ctx.fromProblem } : {}) };
  for (const r of results) {
    const keyId = hex(r.keyID);
    let packet: openpgp.SignaturePacket | undefined;
    try {
      packet = (await r.signature).packets[0] as openpgp.SignaturePacket | undefined;
    } catch {
      // the signature packet itself did not parse: verified below rejects too
    }
    const signedAt = packet?.created instanceof Date ? packet.created : undefined;
    const hash = packet ? enumName(openpgp.enums.hash, packet.hashAlgorithm) : undefined;
    const base = { keyId, scope, ...(signedAt ? { signedAt } : {}), ...(hash ? { hash } : {}) };
    const index = keys.findIndex((k) => k.keyIds.includes(keyId));
    const key = keys[index];
    const instance = instances[index] ?? key?.key;
    try {
      await r.verified;
    } catch (err) {
      const m = errText(err);
      if (!key) {
        out.push({ ...base, status: 'unknown', reason: `the signer's key (ID ${keyId}) is not known here` });
      } else if (UNSUPPORTED.test(m)) {
        out.push({ ...base, status: 'unsupported', fingerprint: key.fingerprint, reason: `the signature uses an algorithm Postern cannot check (${m}): neither good nor bad` });
      } else {
        const reason = /revoked/i.test(m) && instance ? await revokedReason(instance, keyId, signedAt, invalidReason(m)) : invalidReason(m);
        out.push({ ...base, status: 'invalid', fingerprint: key.fingerprint, ...(key.addresses[0] ? { address: key.addresses[0] } : {}), reason });
      }
      continue;
    }
    if (!key || !instance) {
      // openpgp.js found the key, so it came from the list we gave it: cannot happen, but say so.
      out.push({ ...base, status: 'unknown', reason: `the signer's key (ID ${keyId}) is not known here` });
      continue;
    }
    // The user ids valid when it signed: one revoked since (softly) still binds this signature.
    const bound = bindSigner(signedAt ? await keyAddresses(instance, signedAt) : key.addresses, from, 'key');
    const who = { fingerprint: key.fingerprint, ...(bound.address ? { address: bound.address } : {}) };
    if (!key.trusted) {
      out.push({ ...base, ...who, status: 'untrusted', reason: 'good signature, but by a key nobody here vouched for' });
    } else if (bound.mismatch) {
      out.push({ ...base, ...who, status: 'mismatch', reason: `good signature, but ${bound.mismatch}` });
    } else if (ctx.messageDate && signedAt && (Number.isNaN(ctx.messageDate.getTime()) || Math.abs(ctx.messageDate.getTime() - signedAt.getTime()) > DATE_TOLERANCE_MS)) {
      // As Thunderbird: a signature made hours away from the Date: shown belongs to another message.
      out.push({ ...base, ...who, status: 'mismatch', reason: `good signature, but made at ${signedAt.toISOString()}, more than an hour from the Date: header` });
    } else {
      out.push({ ...base, ...who, status: 'valid' });
    }
  }
  return out;
}

/** The issuer key id of a v4/v6 signature body openpgp.js could not parse (issuer or issuer-fingerprint subpacket). */
function rawIssuer(body: Uint8Array): string | undefined {
  const b = Buffer.from(body);
  if (b[0] !== 4 && b[0] !== 6) return b[0] === 3 && b.length >= 15 ? b.subarray(7, 15).toString('hex').toUpperCase() : undefined;
  const lenBytes = b[0] === 6 ? 4 : 2;
  let pos = 4;
  for (let area = 0; area < 2 && pos + lenBytes <= b.length; area++) {
    const len = lenBytes === 4 ? b.readUInt32BE(pos) : b.readUInt16BE(pos);
    pos += lenBytes;
    const end = Math.min(pos + len, b.length);
    while (pos < end) {
      const first = b[pos]!;
      const [size, skip] = first < 192 ? [first, 1] : first < 255 ? [((first - 192) << 8) + (b[pos + 1] ?? 0) + 192, 2] : [b.readUInt32BE(pos + 1), 5];
      const type = (b[pos + skip] ?? 0) & 0x7f;
      const data = b.subarray(pos + skip + 1, pos + skip + size);
      if (type === 16 && data.length === 8) return data.toString('hex').toUpperCase();
      // Issuer fingerprint: a v4 key id is the fingerprint's last 8 octets, a v6 one its first 8.
      if (type === 33 && data.length === 21) return data.subarray(13).toString('hex').toUpperCase();
      if (type === 33 && data.length === 33) return data.subarray(1, 9).toString('hex').toUpperCase();
      if (size === 0) break;
      pos += skip + size;
    }
    pos = end;
  }
  return undefined;
}

/**
 * Signature packets openpgp.js set aside as unparseable — an unknown signature version or
 * public-key algorithm (it throws on malformed ones): reported 'unsupported', never dropped, so a
 * signature Postern cannot read does not vanish from the verdict.
 */
export function unsupportedSignatures(packets: Iterable<unknown>, scope: PgpSignatureReport['scope']): PgpSignatureReport[] {
  const out: PgpSignatureReport[] = [];
  for (const p of packets) {
    if (!(p instanceof openpgp.UnparseablePacket) || p.tag !== openpgp.enums.packet.signature) continue;
    const body = (p as unknown as { rawContent: Uint8Array }).rawContent;
    const version = body[0];
    const algo = version === 3 ? body[15] : body[2];
    const what = version !== 3 && version !== 4 && version !== 6 ? `a version ${version} signature` : `public-key algorithm ${algo}`;
    out.push({ status: 'unsupported', keyId: rawIssuer(body) ?? '0000000000000000', scope, reason: `the signature uses ${what}, which Postern cannot check: neither good nor bad` });
  }
  return out;
}

/** A detached signature (armored or binary) over `content` exactly. */
export async function verifyDetached(signatureData: Buffer | string, content: Buffer, ctx: VerifyContext, scope: PgpSignatureReport['scope']): Promise<PgpSignatureReport[]> {
  const text = typeof signatureData === 'string' ? signatureData : signatureData.toString('latin1');
  const signature = text.includes('-----BEGIN PGP SIGNATURE-----')
    ? await openpgp.readSignature({ armoredSignature: text })
    : await openpgp.readSignature({ binarySignature: bytes(signatureData as Buffer) });
  const unsupported = unsupportedSignatures(signature.packets, scope);
  // Only signatures openpgp.js could not read: nothing for it to verify (it would throw).
  if (unsupported.length === signature.packets.length) return unsupported;
  const keys = await ctx.keysFor(signature.getSigningKeyIDs().map(hex));
  const message = await openpgp.createMessage({ binary: bytes(content) });
  const instances = await verificationInstances(keys);
  const r = await openpgp.verify({ message, signature, verificationKeys: instances, config: IN_CONFIG, ...(ctx.now ? { date: ctx.now } : {}) });
  return [...(await verdicts(r.signatures, keys, ctx, scope, instances)), ...unsupported];
}
