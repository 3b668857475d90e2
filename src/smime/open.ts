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
 * Any failure is a report, never an exception: the message is then passed on as it came — except
 * a message past a limit (MIME nesting, parts, a header field; a CMS length, depth or count:
 * core/limits.ts), which throws LimitExceededError for the worker to hold it with the reason.
 */
import { LimitExceededError } from '../core/limits.js';
import { checkMimeLimits, cryptoTree, decodeBody, encryptionFields, joinMessage, multipartLayout, outside, readEntity, resultFields, resultText, signedMessageContext, splitHeader, splitMessage, stripRemoteContent, toCrlf, type Entity, type MethodResults } from '../mime/index.js';
import { decrypt, envelopeRecipients, type Decrypted } from './decrypt.js';
import { SmimeError } from './errors.js';
import { checkCmsLimits } from './ber-limits.js';
import type { SmimeDecryptionKey } from './recipient-keys.js';
import type { TrustStore } from './chain.js';
import { verifyDetached, verifyOpaque, type RevocationCheck, type SignerResult } from './verify.js';

const PKCS7_MIME = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);
const PKCS7_SIGNATURE = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const MAX_LAYERS = 6;
/** Signatures of parts checked per message; more are reported as not checked. */
const MAX_NESTED_SIGNATURES = 8;
export const NESTED_DETAIL = 'encrypted content inside another MIME part was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)';

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
  /** Not decrypted because of where it is (inside two signatures): reported as reason=nested. */
  nested?: boolean;
  /** Remote references neutralised in its HTML (see mime/html.ts). */
  remoteContentRemoved?: number;
}

export interface SignatureReport extends SignerResult {
  form: 'detached' | 'opaque';
  /** whole: the message content; partial: one part among unsigned ones; outer: over ciphertext. */
  scope: 'whole' | 'partial' | 'outer';
  /** A partial signature's part (IMAP number in the delivered message) and the content parts outside it. */
  part?: string;
  unsigned?: string[];
}

export interface OpenResult {
  /** The message after decryption / unwrapping of opaque signatures (the input when nothing changed). */
  message: Buffer;
  encryption: EncryptionReport | null;
  signatures: SignatureReport[];
  /** Malformed signatures and similar findings, one sentence each. */
  problems: string[];
  /** Ciphertext left as it is inside the delivered message (EFAIL), by IMAP part number. */
  nested: string[];
  /**
   * The header block of the innermost content when at least one layer was opened, as it was
   * written before its non-Content fields were dropped: where a protected header section (RFC 9788) is.
   */
  protectedHeader?: Buffer;
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

/**
 * Drop the non-Content fields a decrypted or unwrapped entity may carry (its outer header stays
 * authoritative). Content that does not start with a header field at all (openssl cms without
 * -text encrypts bare text) is a body without a header: text/plain by RFC 2045's default.
 */
function contentOnly(entity: Buffer): Buffer {
  const startsWithField = /^[!-9;-~]+:/.test(entity.subarray(0, 200).toString('latin1'));
  return splitMessage(startsWithField ? entity : Buffer.concat([Buffer.from('\r\n'), entity])).entity;
}

/** An entity's header block; empty when it does not start with a header field. */
const headerOf = (entity: Buffer): Buffer => (/^[!-9;-~]+:/.test(entity.subarray(0, 200).toString('latin1')) ? splitHeader(entity).header : Buffer.alloc(0));

/** A signature that could not be read, where a signed part was found: an invalid signer, reported with its part. */
const unreadable = (part: string, unsigned: string[], err: unknown): SignatureReport => ({
  status: 'invalid',
  reason: `the signature of part ${part} cannot be read: ${(err as Error).message}`,
  emails: [],
  subject: '',
  fingerprint: '',
  chainDer: [],
  digest: '',
  form: 'detached',
  scope: 'partial',
  part,
  unsigned,
});

/** A CMS object from the message, after the limits of ber-limits.ts (LimitExceededError past one). */
function checked(der: Buffer): Buffer {
  checkCmsLimits(der);
  return der;
}

export async function openMessage(message: Buffer, opts: OpenOptions): Promise<OpenResult> {
  const doDecrypt = opts.decrypt ?? true;
  const doVerify = opts.verify ?? true;
  checkMimeLimits(message);
  const { split, from, messageDate } = signedMessageContext(message);
  const verifyOpts = {
    trust: opts.trust,
    fromAddresses: from.addresses,
    ...(from.problem ? { fromProblem: from.problem } : {}),
    allowSha1: opts.allowSha1 ?? false,
    ...(opts.now ? { now: opts.now } : {}),
    ...(messageDate ? { messageDate } : {}),
    ...(opts.revocation ? { revocation: opts.revocation } : {}),
  };

  /** The entity being looked at, and the one that will be delivered (a kept signature wraps the former). */
  let current = split.entity;
  let deliver = split.entity;
  /** The part number of `current` in the delivered message ('' when it is the body itself). */
  let prefix = '';
  let changed = false;
  let encryption: EncryptionReport | null = null;
  const signatures: SignatureReport[] = [];
  const problems: string[] = [];
  const nested: string[] = [];
  let signatureLayers = 0;
  let afterOpaque = false;
  /** The header `current` had before contentOnly() (null: `current` still has its own). */
  let rootHeader: Buffer | null = null;
  const unwrapped = (content: Buffer) => {
    rootHeader = headerOf(content);
    return contentOnly(content);
  };

  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    const e = readEntity(current);
    if (isPkcs7(e)) {
      const der = checked(decodeBody(e));
      const kind = (smimeTypeOf(e) || sniffCms(der) || '').toLowerCase();
      if (kind === 'enveloped-data' || kind === 'authenveloped-data') {
        if (!doDecrypt) break;
        if (signatureLayers > 1) {
          // Someone wrapped ciphertext in more than one signature: whoever signed did not write it.
          encryption = { status: 'not-decrypted', nested: true, reason: 'encrypted content nested inside more than one signature was left as it is' };
          nested.push(prefix || '1');
          break;
        }
        try {
          const keys = await opts.keysFor(envelopeRecipients(der));
          if (!keys.length) throw new SmimeError('the message is not encrypted to any key of ours', 'no-recipient');
          const d: Decrypted = await decrypt(der, keys);
          // A signature made over ciphertext vouches for the envelope, not for the text.
          for (const s of signatures) s.scope = 'outer';
          encryption = { status: 'decrypted', cipher: d.cipher, keyTransport: d.keyTransport, authenticated: d.authenticated };
          current = deliver = unwrapped(toCrlf(d.content));
          prefix = '';
          changed = true;
          signatureLayers = 0;
          afterOpaque = false;
          continue;
        } catch (err) {
          if (err instanceof LimitExceededError) throw err;
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
          current = deliver = unwrapped(toCrlf(r.content));
          prefix = '';
          changed = true;
          signatureLayers++;
          afterOpaque = true;
          continue;
        } catch (err) {
          if (err instanceof LimitExceededError) throw err;
          problems.push(`opaque S/MIME signature not readable: ${(err as Error).message}`);
          break;
        }
      }
      break; // certs-only, compressed-data …: nothing to open
    }
    afterOpaque = false;
    const boundary = e.type.params.get('boundary');
    const protocol = (e.type.params.get('protocol') ?? '').trim().toLowerCase();
    if (e.type.type === 'multipart/signed' && boundary) {
      const { parts } = multipartLayout(e.body, boundary, 3);
      const ours = PKCS7_SIGNATURE.has(protocol);
      if (parts.length !== 2) {
        if (ours) problems.push(`multipart/signed with ${parts.length} parts instead of 2`);
        break;
      }
      const [content, sigPart] = parts as [Buffer, Buffer];
      if (ours && doVerify) {
        try {
          const r = await verifyDetached(checked(decodeBody(readEntity(sigPart))), content, verifyOpts);
          signatures.push(...r.signers.map((s) => ({ ...s, form: 'detached' as const, scope: 'whole' as const })));
        } catch (err) {
          if (err instanceof LimitExceededError) throw err;
          problems.push(`S/MIME signature not readable: ${(err as Error).message}`);
        }
      }
      // Another protocol's signature (OpenPGP) is that module's to check, as openpgp/open.ts leaves
      // ours: either way its content is what the message is. The signature stays in the delivered
      // message (a client can check it too) unless what it covers is opened below.
      signatureLayers++;
      current = content;
      rootHeader = null;
      prefix = prefix ? `${prefix}.1` : '1';
      continue;
    }
    if ((e.type.type.startsWith('multipart/') && boundary) || e.type.type === 'message/rfc822') await lookInside(current, prefix);
    break;
  }

  /** S/MIME below the message as opened: ciphertext is left as it is, signed parts are checked as partial. */
  async function lookInside(entity: Buffer, at: string): Promise<void> {
    const tree = cryptoTree(entity, at);
    const found = tree.nodes.filter((n) => n.method === 'smime');
    nested.push(...found.filter((n) => n.kind === 'smime-encrypted').map((n) => n.part));
    if (!doVerify) return;
    const signed = found.filter((n) => n.kind !== 'smime-encrypted');
    if (signed.length > MAX_NESTED_SIGNATURES || tree.truncated) problems.push(`the message has more signed parts or more parts than are checked (${MAX_NESTED_SIGNATURES} signatures): the rest were not checked`);
    for (const n of signed.slice(0, MAX_NESTED_SIGNATURES)) {
      const where = { scope: 'partial' as const, part: n.part, unsigned: outside(tree.leaves, n.part) };
      try {
        const s = readEntity(n.raw);
        if (n.kind === 'smime-signed') {
          const { parts } = multipartLayout(s.body, s.type.params.get('boundary') ?? '', 3);
          if (parts.length !== 2) throw new Error(`multipart/signed with ${parts.length} parts instead of 2`);
          const r = await verifyDetached(checked(decodeBody(readEntity(parts[1]!))), parts[0]!, verifyOpts);
          signatures.push(...r.signers.map((x) => ({ ...x, form: 'detached' as const, ...where })));
        } else {
          const r = await verifyOpaque(checked(decodeBody(s)), verifyOpts);
          signatures.push(...r.signers.map((x) => ({ ...x, form: 'opaque' as const, ...where })));
        }
      } catch (err) {
        if (err instanceof LimitExceededError) throw err;
        signatures.push(unreadable(n.part, where.unsigned, err));
      }
    }
  }

  if (nested.length && !encryption) encryption = { status: 'not-decrypted', nested: true, reason: NESTED_DETAIL };
  if (opts.stripRemoteContent && encryption?.status === 'decrypted' && !encryption.authenticated && !signatures.some((x) => x.scope === 'whole' && x.status === 'valid')) {
    const stripped = stripRemoteContent(deliver);
    if (stripped.removed) {
      deliver = stripped.entity;
      encryption.remoteContentRemoved = stripped.removed;
    }
  }
  const layers = changed || signatureLayers > 0;
  return { message: changed ? joinMessage(split.outer, deliver) : message, encryption, signatures, problems, nested, ...(layers ? { protectedHeader: rootHeader ?? headerOf(current) } : {}) };
}

/** What S/MIME found, in the shapes of the result-field grammar (mime/results.ts). */
export function smimeResults(r: Pick<OpenResult, 'encryption' | 'signatures' | 'problems'> & Partial<Pick<OpenResult, 'nested'>>): MethodResults {
  const e = r.encryption;
  const encryption = encryptionFields('smime', e, r.nested ?? [], () => {
    const integrity = e!.authenticated ? 'authenticated' : r.signatures.some((s) => s.status === 'valid' && s.scope === 'whole') ? 'signed' : 'unauthenticated';
    const removed = e!.remoteContentRemoved ? `; remote-content-removed=${e!.remoteContentRemoved}` : '';
    return `decrypted; method=smime; cipher=${e!.cipher}; key-transport="${resultText(e!.keyTransport ?? '')}"; integrity=${integrity}${removed}`;
  }, NESTED_DETAIL);
  const signatures = r.signatures.map((s) => ({
    status: s.status,
    scope: s.scope,
    signer: s.address ?? s.emails[0] ?? (s.subject || 'unknown'),
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.part ? { part: s.part, unsigned: s.unsigned ?? [] } : {}),
  }));
  return { method: 'smime', encryption, signatures, problems: r.problems };
}

/** The X-Postern-Encryption / X-Postern-Signature fields stating a result (grammar: mime/results.ts). */
export function resultHeaders(r: Pick<OpenResult, 'encryption' | 'signatures' | 'problems'> & Partial<Pick<OpenResult, 'nested'>>): [string, string][] {
  return resultFields([smimeResults(r)]);
}
