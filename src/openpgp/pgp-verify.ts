/**
 * OpenPGP signature verdicts, as S/MIME states them (smime/verify.ts): one report per signature,
 * with the signer, its trust and its binding to the From: (and Date:) header. openpgp.js resolves
 * each signature's `verified` promise separately and does not fail a message for a bad or
 * unverifiable signature, so every promise is awaited here and turned into a status:
 * 'invalid' (does not match the content, wrong hash, key not valid when it signed), 'unknown'
 * (no key of ours has that id), 'untrusted' (good, by a key nobody vouched for), 'mismatch' (good,
 * but the key's user ids name no From: address, or the Date: header is far from the signing time),
 * 'valid'.
 */
import * as openpgp from 'openpgp';
import { bindSigner, type FromBinding } from '../mime/index.js';
import { bytes, enumName, type PgpVerificationKey } from './prepared.js';

export interface PgpSignatureReport {
  status: 'valid' | 'invalid' | 'untrusted' | 'mismatch' | 'unknown';
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

function invalidReason(err: unknown): string {
  const m = (err instanceof Error ? err.message : String(err)).replace(/^Error: /, '');
  if (/digest did not match|signature did not match|hash/i.test(m) && /match/i.test(m)) return 'the signature does not match the signed content (changed after signing, or a wrong hash)';
  if (/insecure|weak|sha-?1|md5/i.test(m)) return `the signature uses an algorithm refused as insecure: ${m}`;
  if (/expired/i.test(m)) return `the signature or its key had expired: ${m}`;
  if (/revoked/i.test(m)) return `the signing key is revoked: ${m}`;
  return `the signature is not valid: ${m}`;
}

/** Turn openpgp.js's per-signature results into reports; `scope` as the caller determined it. */
export async function verdicts(results: openpgp.VerifyMessageResult['signatures'], keys: PgpVerificationKey[], ctx: VerifyContext, scope: PgpSignatureReport['scope']): Promise<PgpSignatureReport[]> {
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
    const key = keys.find((k) => k.keyIds.includes(keyId));
    try {
      await r.verified;
    } catch (err) {
      if (!key) {
        out.push({ ...base, status: 'unknown', reason: `the signer's key (ID ${keyId}) is not known here` });
      } else {
        out.push({ ...base, status: 'invalid', fingerprint: key.fingerprint, ...(key.addresses[0] ? { address: key.addresses[0] } : {}), reason: invalidReason(err) });
      }
      continue;
    }
    if (!key) {
      // openpgp.js found the key, so it came from the list we gave it: cannot happen, but say so.
      out.push({ ...base, status: 'unknown', reason: `the signer's key (ID ${keyId}) is not known here` });
      continue;
    }
    const bound = bindSigner(key.addresses, from, 'key');
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

/** A detached signature (armored or binary) over `content` exactly. */
export async function verifyDetached(signatureData: Buffer | string, content: Buffer, ctx: VerifyContext, scope: PgpSignatureReport['scope']): Promise<PgpSignatureReport[]> {
  const text = typeof signatureData === 'string' ? signatureData : signatureData.toString('latin1');
  const signature = text.includes('-----BEGIN PGP SIGNATURE-----')
    ? await openpgp.readSignature({ armoredSignature: text })
    : await openpgp.readSignature({ binarySignature: bytes(signatureData as Buffer) });
  const keys = await ctx.keysFor(signature.getSigningKeyIDs().map(hex));
  const message = await openpgp.createMessage({ binary: bytes(content) });
  const r = await openpgp.verify({ message, signature, verificationKeys: keys.map((k) => k.key), config: IN_CONFIG, ...(ctx.now ? { date: ctx.now } : {}) });
  return verdicts(r.signatures, keys, ctx, scope);
}
