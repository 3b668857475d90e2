/**
 * Inbound S/MIME: decrypt and verify what the whole message is, layer by layer (a signature
 * around encryption, encryption around a signature, opaque signed-data), and say what was found.
 *
 * Untrusted input: the whole message. The rules that resist the known attacks live here:
 * - EFAIL direct exfiltration: only an encrypted entity that IS the message body (possibly inside
 *   a signature) is decrypted. Ciphertext inside a multipart/mixed or alternative is left as it is
 *   and reported, so decrypted text is never spliced into content an attacker wrote around it.
 * - Signature spoofing ("Johnny, you are fired"): content outside the signed entity never counts
 *   as signed; a signed part among unsigned siblings is reported with scope "partial".
 * - A signature over ciphertext says who encrypted, not who wrote the text: scope "outer".
 * Any failure is a report, never an exception: the message is then passed on as it came.
 */
import { signedMessageContext, decodeBody, encryptionNotDoneField, joinMessage, multipartLayout, readEntity, resultText, signatureField, splitMessage, stripRemoteContent, toCrlf, unreadableSignatureField, type Entity } from '../mime/index.js';
import { decrypt, envelopeRecipients, type Decrypted } from './decrypt.js';
import { SmimeError } from './errors.js';
import type { SmimeDecryptionKey } from './recipient-keys.js';
import type { TrustStore } from './chain.js';
import { verifyDetached, verifyOpaque, type RevocationCheck, type SignerResult } from './verify.js';

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const PKCS7_SIGNATURE = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const MAX_LAYERS = 6;
const MAX_WALK = 200;

export interface OpenOptions {
  /** Our private keys that a CMS EnvelopedData may be addressed to (looked up from its RecipientInfos). */
  keysFor(recipients: ReturnType<typeof envelopeRecipients>): Promise<SmimeDecryptionKey[]>;
  trust: TrustStore;
  allowSha1?: boolean;
  decrypt?: boolean;
  verify?: boolean;
  now?: Date;
  /** Neutralise automatic remote loads in the HTML of decrypted content nothing authenticates (EFAIL CBC gadgets). */
  stripRemoteContent?: boolean;
  /** Revocation check of each verified signer's path (pki's revocationSeam). */
  revocation?: RevocationCheck;
}

export interface EncryptionReport {
  status: 'decrypted' | 'failed' | 'not-decrypted';
  cipher?: string;
  keyTransport?: string;
  /** AuthEnvelopedData with a good tag; CBC content is malleable (EFAIL) unless signed inside. */
  authenticated?: boolean;
  reason?: string;
  /** Remote references neutralised in its HTML (see mime/html.ts). */
  remoteContentRemoved?: number;
}

export interface SignatureReport extends SignerResult {
  form: 'detached' | 'opaque';
  /** whole: the message content; partial: one part among unsigned ones; outer: over ciphertext. */
  scope: 'whole' | 'partial' | 'outer';
}

export interface OpenResult {
  /** The message after decryption / unwrapping of opaque signatures (the input when nothing changed). */
  message: Buffer;
  encryption: EncryptionReport | null;
  signatures: SignatureReport[];
  /** Malformed signatures and similar findings, one sentence each. */
  problems: string[];
}

function smimeTypeOf(e: Entity): string {
  return (e.type.params.get('smime-type') ?? '').trim().toLowerCase();
}

/** The ContentInfo type OID's short name, for untyped .p7m parts. */
function sniffCms(der: Buffer): 'signed-data' | 'enveloped-data' | 'authEnveloped-data' | null {
  const hex = der.subarray(0, 32).toString('hex');
  if (hex.includes('06092a864886f70d010702')) return 'signed-data';
  if (hex.includes('06092a864886f70d010703')) return 'enveloped-data';
  if (hex.includes('060b2a864886f70d0109100117')) return 'authEnveloped-data';
  return null;
}

function isPkcs7(e: Entity): boolean {
  if (PKCS7_MIME.has(e.type.type)) return true;
  const name = (e.type.params.get('name') ?? '').toLowerCase();
  return e.type.type === 'application/octet-stream' && /\.p7m$/.test(name.trim());
}

/** Does a (non-signed) multipart hold S/MIME ciphertext or signatures somewhere inside? */
function findNested(entity: Buffer): { encrypted: boolean; signed: Buffer[] } {
  const found = { encrypted: false, signed: [] as Buffer[] };
  const stack: { raw: Buffer; depth: number }[] = [{ raw: entity, depth: 0 }];
  let seen = 0;
  while (stack.length && seen++ < MAX_WALK) {
    const { raw, depth } = stack.pop()!;
    const e = readEntity(raw);
    const boundary = e.type.params.get('boundary');
    if (depth > 0 && isPkcs7(e)) {
      const st = smimeTypeOf(e) || sniffCms(decodeBody(e).subarray(0, 64)) || '';
      if (st.includes('enveloped')) found.encrypted = true;
      else if (st === 'signed-data') found.signed.push(raw);
      continue;
    }
    if (e.type.type === 'multipart/signed' && depth > 0) {
      found.signed.push(raw);
      continue;
    }
    if (e.type.type.startsWith('multipart/') && boundary && depth < 20) {
      for (const p of multipartLayout(e.body, boundary, MAX_WALK).parts) stack.push({ raw: p, depth: depth + 1 });
    }
  }
  return found;
}

/**
 * Drop the non-Content fields a decrypted or unwrapped entity may carry (its outer header stays
 * authoritative). Content that does not start with a header field at all (openssl cms without
 * -text encrypts bare text) is a body without a header: text/plain by RFC 2045's default.
 */
function contentOnly(entity: Buffer): Buffer {
  const startsWithField = /^[!-9;-~]+:/.test(entity.subarray(0, 200).toString('latin1'));
  return splitMessage(startsWithField ? entity : Buffer.concat([Buffer.from('\r\n'), entity])).entity;
}

export async function openMessage(message: Buffer, opts: OpenOptions): Promise<OpenResult> {
  const doDecrypt = opts.decrypt ?? true;
  const doVerify = opts.verify ?? true;
  const { split, from, messageDate } = signedMessageContext(message);
  const verifyOpts = {
    trust: opts.trust,
    fromAddresses: from,
    allowSha1: opts.allowSha1 ?? false,
    ...(opts.now ? { now: opts.now } : {}),
    ...(messageDate ? { messageDate } : {}),
    ...(opts.revocation ? { revocation: opts.revocation } : {}),
  };

  /** The entity being looked at, and the one that will be delivered (a kept signature wraps the former). */
  let current = split.entity;
  let deliver = split.entity;
  let changed = false;
  let encryption: EncryptionReport | null = null;
  const signatures: SignatureReport[] = [];
  const problems: string[] = [];
  let signatureLayers = 0;
  let afterOpaque = false;

  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    const e = readEntity(current);
    if (isPkcs7(e)) {
      const der = decodeBody(e);
      const kind = (smimeTypeOf(e) || sniffCms(der) || '').toLowerCase();
      if (kind === 'enveloped-data' || kind === 'authenveloped-data') {
        if (!doDecrypt) break;
        if (signatureLayers > 1) {
          // Someone wrapped ciphertext in more than one signature: whoever signed did not write it.
          encryption = { status: 'not-decrypted', reason: 'encrypted content nested inside more than one signature was left as it is' };
          break;
        }
        try {
          const keys = await opts.keysFor(envelopeRecipients(der));
          if (!keys.length) throw new SmimeError('the message is not encrypted to any key of ours', 'no-recipient');
          const d: Decrypted = await decrypt(der, keys);
          // A signature made over ciphertext vouches for the envelope, not for the text.
          for (const s of signatures) s.scope = 'outer';
          encryption = { status: 'decrypted', cipher: d.cipher, keyTransport: d.keyTransport, authenticated: d.authenticated };
          current = deliver = contentOnly(toCrlf(d.content));
          changed = true;
          signatureLayers = 0;
          afterOpaque = false;
          continue;
        } catch (err) {
          encryption = { status: 'failed', reason: err instanceof SmimeError ? err.message : 'the encrypted content could not be read' };
          break;
        }
      }
      if (kind === 'signed-data') {
        if (!doVerify) break;
        if (afterOpaque) {
          // An opaque signature directly inside another is not a layer of this message's own
          // structure (sign-encrypt-sign is); it stays as it is for a client to look at.
          problems.push('an opaque signature nested directly inside another was left as it is');
          break;
        }
        try {
          const r = await verifyOpaque(der, verifyOpts);
          signatures.push(...r.signers.map((s) => ({ ...s, form: 'opaque' as const, scope: 'whole' as const })));
          // Unwrapped, so that mail clients without S/MIME can read it; the result is in our headers.
          current = deliver = contentOnly(toCrlf(r.content));
          changed = true;
          signatureLayers++;
          afterOpaque = true;
          continue;
        } catch (err) {
          problems.push(`opaque S/MIME signature not readable: ${(err as Error).message}`);
          break;
        }
      }
      break; // certs-only, compressed-data …: nothing to open
    }
    afterOpaque = false;
    const boundary = e.type.params.get('boundary');
    const protocol = (e.type.params.get('protocol') ?? '').trim().toLowerCase();
    if (e.type.type === 'multipart/signed' && boundary && PKCS7_SIGNATURE.has(protocol)) {
      const { parts } = multipartLayout(e.body, boundary, 3);
      if (parts.length !== 2) {
        problems.push(`multipart/signed with ${parts.length} parts instead of 2`);
        break;
      }
      const [content, sigPart] = parts as [Buffer, Buffer];
      if (doVerify) {
        try {
          const r = await verifyDetached(decodeBody(readEntity(sigPart)), content, verifyOpts);
          signatures.push(...r.signers.map((s) => ({ ...s, form: 'detached' as const, scope: 'whole' as const })));
        } catch (err) {
          problems.push(`S/MIME signature not readable: ${(err as Error).message}`);
        }
      }
      // The signature stays in the delivered message (a client can check it too) unless what it
      // covers is opened below, which it then no longer matches.
      signatureLayers++;
      current = content;
      continue;
    }
    if (e.type.type.startsWith('multipart/') && boundary) {
      const nested = findNested(current);
      if (nested.encrypted && !encryption) {
        encryption = { status: 'not-decrypted', reason: 'an encrypted part inside another MIME part was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)' };
      }
      if (doVerify) {
        for (const raw of nested.signed.slice(0, 5)) {
          const s = readEntity(raw);
          try {
            if (s.type.type === 'multipart/signed') {
              const b = s.type.params.get('boundary');
              const { parts } = multipartLayout(s.body, b ?? '', 3);
              if (!b || parts.length !== 2) continue;
              const r = await verifyDetached(decodeBody(readEntity(parts[1]!)), parts[0]!, verifyOpts);
              signatures.push(...r.signers.map((x) => ({ ...x, form: 'detached' as const, scope: 'partial' as const })));
            } else {
              const r = await verifyOpaque(decodeBody(s), verifyOpts);
              signatures.push(...r.signers.map((x) => ({ ...x, form: 'opaque' as const, scope: 'partial' as const })));
            }
          } catch (err) {
            problems.push(`S/MIME signature of a part not readable: ${(err as Error).message}`);
          }
        }
      }
    }
    break;
  }
  if (opts.stripRemoteContent && encryption?.status === 'decrypted' && !encryption.authenticated && !signatures.some((x) => x.scope === 'whole' && x.status === 'valid')) {
    const stripped = stripRemoteContent(deliver);
    if (stripped.removed) {
      deliver = stripped.entity;
      encryption.remoteContentRemoved = stripped.removed;
    }
  }
  return { message: changed ? joinMessage(split.outer, deliver) : message, encryption, signatures, problems };
}

/** The X-Postern-Encryption / X-Postern-Signature fields stating a result (grammar: mime/results.ts). */
export function resultHeaders(r: Pick<OpenResult, 'encryption' | 'signatures' | 'problems'>): [string, string][] {
  const out: [string, string][] = [];
  const e = r.encryption;
  if (e?.status === 'decrypted') {
    const integrity = e.authenticated ? 'authenticated' : r.signatures.some((s) => s.status === 'valid' && s.scope === 'whole') ? 'signed' : 'unauthenticated';
    const removed = e.remoteContentRemoved ? `; remote-content-removed=${e.remoteContentRemoved}` : '';
    out.push(['X-Postern-Encryption', `decrypted; method=smime; cipher=${e.cipher}; key-transport="${resultText(e.keyTransport ?? '')}"; integrity=${integrity}${removed}`]);
  } else if (e) {
    out.push(encryptionNotDoneField('smime', e.status, e.reason));
  }
  for (const s of r.signatures) out.push(signatureField('smime', { status: s.status, scope: s.scope, signer: s.address ?? s.emails[0] ?? s.subject, ...(s.reason ? { reason: s.reason } : {}) }));
  if (!r.signatures.length && r.problems.length) out.push(unreadableSignatureField('smime', r.problems[0]!));
  return out;
}
