/**
 * Inbound OpenPGP: decrypt and verify what the whole message is — PGP/MIME (RFC 3156) layer by
 * layer, the Exchange-mangled form of it, inline PGP in a text body — and say what was found, in
 * the report shapes and result-header grammar of smime/open.ts.
 *
 * Untrusted input: the whole message. The rules that resist the known attacks live here:
 * - EFAIL direct exfiltration: only ciphertext that IS the message body (possibly inside one
 *   signature) is decrypted — a multipart/encrypted body, or a text body that is exactly one
 *   armored message. Ciphertext inside a multipart/mixed or alternative, or armor among other
 *   text, is left as it is and reported 'not-decrypted', so decrypted text is never spliced into
 *   content an attacker wrote around it.
 * - EFAIL malleability: messages without integrity protection are refused (pgp-decrypt.ts).
 * - Signature spoofing ("Johnny, you are fired"): content outside the signed entity never counts
 *   as signed; a signed part among unsigned siblings has scope "partial", a signature over
 *   ciphertext scope "outer"; a good signature by a key whose user ids do not name the (first)
 *   From: address is 'mismatch'.
 * Any failure is a report, never an exception: the message is then passed on as it came — except
 * a message past a limit (MIME nesting, parts, a header field, decompressed size: core/limits.ts),
 * which throws LimitExceededError for the worker to hold it with the reason.
 */
import { LimitExceededError } from '../core/limits.js';
import { checkMimeLimits, signedMessageContext, decodeBody, encryptionFields, joinMessage, multipartLayout, readEntity, resultFields, splitHeader, splitMessage, toCrlf, type Entity, type MethodResults } from '../mime/index.js';
import { htmlText, inlineKind, textEntity, textOf } from './inline.js';
import { openNested, verifyCleartext, type PgpSignatureReport } from './nested.js';
import { decryptPgp, isSignedOnly, PgpDecryptError, readPgpMessage, verifySignedPgp, type PgpDecrypted } from './pgp-decrypt.js';
import { verifyDetached, type VerifyContext } from './pgp-verify.js';
import { preparePgpVerificationKey, type PgpDecryptionKey, type PgpVerificationKey } from './prepared.js';

const MAX_LAYERS = 6;
const NESTED_DETAIL = 'encrypted content inside another MIME part, or among other text, was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)';
/** Bodies larger than this are not decoded just to look for armor in a nested part. */
const SNIFF_LIMIT = 4 << 20;

export interface PgpOpenOptions {
  /** Our secret keys for these PKESK key ids ('0000000000000000' = a hidden recipient: any key may be it). */
  keysFor(keyIds: string[]): Promise<PgpDecryptionKey[]>;
  /** Public keys for these signing key ids: raw (read here, trusted) or prepared (cached, with their trust). */
  verificationKeysFor(keyIds: string[], fromAddresses: string[]): Promise<(Buffer | PgpVerificationKey)[]>;
  decrypt?: boolean;
  verify?: boolean;
  now?: Date;
  /** Also read an armored message in a text/html body (Outlook-style inline PGP). */
  inlineHtml?: boolean;
  /** Encrypted .pgp/.gpg/.asc files are decrypted as attachments afterwards (attachments.ts): not reported as nested. */
  attachmentFiles?: boolean;
  /** Compressed data inflated past this many bytes is refused (worker.max_decompressed_size). */
  maxDecompressedSize?: number;
}

export interface PgpEncryptionReport {
  /** unsupported: well-formed, but an algorithm Postern does not decrypt (IDEA, Camellia, an unknown public-key algorithm). */
  status: 'decrypted' | 'failed' | 'not-decrypted' | 'unsupported';
  /** 'aes256', 'aes128-ocb' … */
  cipher?: string;
  packet?: PgpDecrypted['packet'];
  /** Integrity was checked before the data was released (MDC or AEAD): always so when decrypted. */
  authenticated?: boolean;
  /** The fingerprint of our key that decrypted it. */
  key?: string;
  form?: 'pgp-mime' | 'inline';
  reason?: string;
  /** Not decrypted because of where it is (among other text, inside two signatures): reported as reason=nested. */
  nested?: boolean;
}

export type { PgpSignatureReport };

export interface PgpOpenResult {
  /** The message after decryption (the input, byte for byte, when nothing changed). */
  message: Buffer;
  encryption: PgpEncryptionReport | null;
  signatures: PgpSignatureReport[];
  /** Malformed signatures and similar findings, one sentence each. */
  problems: string[];
  /** Ciphertext left as it is inside the delivered message (EFAIL), by IMAP part number. */
  nested: string[];
  /** As smime/open.ts: the innermost content's header block as written, when a layer was opened (RFC 9788). */
  protectedHeader?: Buffer;
}

const lower = (s: string | undefined) => (s ?? '').trim().toLowerCase();
/**
 * The text of a PGP/MIME data part, whatever its size: the structure around it already says it is
 * the whole message's ciphertext (SNIFF_LIMIT is for looking into parts that may hold none; cut
 * here, a message over 4 MB of armour could not be decrypted at all).
 */
const bodyText = (e: Entity) => decodeBody(e).toString('latin1');

/** The ciphertext of a PGP/MIME body (RFC 3156 §4), or of the form Exchange rewrites it into. */
function pgpMimeCiphertext(e: Entity): { armored: string } | { malformed: string } | null {
  const boundary = e.type.params.get('boundary');
  if (!boundary) return null;
  if (e.type.type === 'multipart/encrypted') {
    if (lower(e.type.params.get('protocol')) !== 'application/pgp-encrypted') return null;
    const { parts } = multipartLayout(e.body, boundary, 3);
    if (parts.length !== 2) return { malformed: `PGP/MIME multipart/encrypted with ${parts.length} parts instead of 2` };
    return { armored: bodyText(readEntity(parts[1]!, 'application/octet-stream')) };
  }
  if (e.type.type !== 'multipart/mixed') return null;
  // Exchange/Outlook: multipart/mixed of [an empty text/plain,] application/pgp-encrypted, application/octet-stream.
  let parts = multipartLayout(e.body, boundary, 4).parts.map((p) => readEntity(p));
  if (parts.length === 3 && parts[0]!.type.type === 'text/plain' && decodeBody(parts[0]!).toString('latin1').trim() === '') parts = parts.slice(1);
  if (parts.length !== 2 || parts[0]!.type.type !== 'application/pgp-encrypted' || parts[1]!.type.type !== 'application/octet-stream') return null;
  if (!/Version:\s*1/.test(decodeBody(parts[0]!).toString('latin1'))) return null;
  const armored = bodyText(parts[1]!);
  return armored.includes('-----BEGIN PGP MESSAGE-----') ? { armored } : null;
}

/** The decrypted entity's Content-* fields and body (its other fields: the outer header stays authoritative). */
function contentOnly(entity: Buffer): Buffer {
  const startsWithField = /^[!-9;-~]+:/.test(entity.subarray(0, 200).toString('latin1'));
  return splitMessage(startsWithField ? entity : Buffer.concat([Buffer.from('\r\n'), entity])).entity;
}

/** An entity's header block; empty when it does not start with a header field. */
const headerOf = (entity: Buffer): Buffer => (/^[!-9;-~]+:/.test(entity.subarray(0, 200).toString('latin1')) ? splitHeader(entity).header : Buffer.alloc(0));

const isUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

export async function pgpOpenMessage(message: Buffer, opts: PgpOpenOptions): Promise<PgpOpenResult> {
  const problems: string[] = [];
  try {
    return await open(message, opts, problems);
  } catch (err) {
    if (err instanceof LimitExceededError) throw err;
    // A bug or an input nothing above foresaw: still a report, and the message as it came.
    problems.push(`the message could not be examined for OpenPGP: ${(err as Error).message}`);
    return { message, encryption: null, signatures: [], problems, nested: [] };
  }
}

async function open(message: Buffer, opts: PgpOpenOptions, problems: string[]): Promise<PgpOpenResult> {
  const doDecrypt = opts.decrypt ?? true;
  const doVerify = opts.verify ?? true;
  checkMimeLimits(message);
  const { split, from, messageDate } = signedMessageContext(message);

  const prepared = new Map<Buffer, PgpVerificationKey | null>();
  const ctx: VerifyContext = {
    fromAddresses: from.addresses,
    ...(from.problem ? { fromProblem: from.problem } : {}),
    ...(messageDate ? { messageDate } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    keysFor: async (ids) => {
      const out: PgpVerificationKey[] = [];
      for (const k of await opts.verificationKeysFor(ids, from.addresses)) {
        if (!Buffer.isBuffer(k)) {
          out.push(k);
          continue;
        }
        if (!prepared.has(k)) prepared.set(k, await preparePgpVerificationKey(k, opts.now ? { now: opts.now } : {}).catch((err: Error) => (problems.push(`a verification key was not usable: ${err.message}`), null)));
        const p = prepared.get(k);
        if (p) out.push(p);
      }
      return out;
    },
  };

  let current = split.entity;
  let deliver = split.entity;
  /** The part number of `current` in the delivered message ('' when it is the body itself). */
  let prefix = '';
  let changed = false;
  let encryption: PgpEncryptionReport | null = null;
  const signatures: PgpSignatureReport[] = [];
  const nested: string[] = [];
  let signatureLayers = 0;
  /** The header `current` had before contentOnly() (null: `current` still has its own). */
  let rootHeader: Buffer | null = null;

  /** Decrypt ciphertext that is the whole of `current`; false when the walk stops here. */
  const decryptLayer = async (armored: string, form: 'pgp-mime' | 'inline', charset?: string): Promise<boolean> => {
    if (!doDecrypt) return false;
    if (signatureLayers > 1) {
      encryption = { status: 'not-decrypted', nested: true, reason: 'encrypted content nested inside more than one signature was left as it is' };
      nested.push(prefix || '1');
      return false;
    }
    try {
      const pgp = await readPgpMessage(armored, opts.maxDecompressedSize);
      if (form === 'inline' && isSignedOnly(pgp)) {
        // Inline "opaque" signing (gpg --sign --armor): verified and unwrapped, as S/MIME's signed-data.
        if (!doVerify) return false;
        const v = await verifySignedPgp(pgp, ctx);
        signatures.push(...v.signatures);
        const data = toCrlf(v.data);
        current = deliver = textEntity(data, isUtf8(data) ? 'utf-8' : (charset ?? 'utf-8'));
        prefix = '';
        changed = true;
        signatureLayers++;
        return true;
      }
      const d = await decryptPgp(pgp, opts.keysFor, doVerify ? ctx : null, opts.now);
      // A signature made over ciphertext vouches for the envelope, not for the text.
      for (const s of signatures) s.scope = 'outer';
      signatures.push(...d.signatures);
      encryption = { status: 'decrypted', cipher: d.cipher, packet: d.packet, authenticated: true, key: d.key, form };
      const data = toCrlf(d.data);
      rootHeader = form === 'inline' ? Buffer.alloc(0) : headerOf(data);
      current = deliver = form === 'inline' ? textEntity(data, isUtf8(data) ? 'utf-8' : (charset ?? 'utf-8')) : contentOnly(data);
      prefix = '';
      changed = true;
      signatureLayers = 0;
      return true;
    } catch (err) {
      if (err instanceof LimitExceededError) throw err;
      const unsupported = err instanceof PgpDecryptError && err.code === 'unsupported';
      encryption = { status: unsupported ? 'unsupported' : 'failed', form, reason: err instanceof PgpDecryptError ? err.message : 'the encrypted content could not be read' };
      return false;
    }
  };

  for (let layer = 0; layer < MAX_LAYERS; layer++) {
    const e = readEntity(current);
    const t = e.type.type;
    const boundary = e.type.params.get('boundary');
    const cipher = pgpMimeCiphertext(e);
    if (cipher && 'malformed' in cipher) {
      encryption = { status: 'failed', form: 'pgp-mime', reason: cipher.malformed };
      break;
    }
    if (cipher && !cipher.armored.includes('-----BEGIN PGP MESSAGE-----') && cipher.armored.includes('-----BEGIN PGP SIGNED MESSAGE-----')) {
      // A clear-signed text where the ciphertext belongs (the "git commit" spoof): not encrypted,
      // and whatever it is signed for, it is not this message.
      encryption = { status: 'failed', form: 'pgp-mime', reason: 'the PGP/MIME encrypted part holds no encrypted data but a clear-signed text' };
      const k = inlineKind(cipher.armored);
      if (doVerify && k && 'text' in k) {
        try {
          for (const s of await verifyCleartext(k.text, Buffer.from(cipher.armored, 'latin1'), undefined, ctx, 'whole')) {
            signatures.push(s.status === 'valid' || s.status === 'untrusted' || s.status === 'mismatch' ? { ...s, status: 'mismatch', reason: 'a good signature over a clear-signed text put where PGP/MIME ciphertext belongs: it was made for something else, not this message' } : s);
          }
        } catch (err) {
          problems.push(`inline OpenPGP signature not readable: ${(err as Error).message.replace(/^Error: /, '')}`);
        }
      }
      break;
    }
    if (cipher) {
      if (await decryptLayer(cipher.armored, 'pgp-mime')) continue;
      break;
    }
    if (t === 'multipart/signed' && boundary) {
      const { parts } = multipartLayout(e.body, boundary, 3);
      const pgp = lower(e.type.params.get('protocol')) === 'application/pgp-signature';
      if (parts.length !== 2) {
        if (pgp) problems.push(`multipart/signed with ${parts.length} parts instead of 2`);
        break;
      }
      const [content, sigPart] = parts as [Buffer, Buffer];
      if (pgp && doVerify) {
        try {
          // Canonical CRLF (RFC 3156 §5): a message stored with LF still verifies, binary-mode signatures too.
          signatures.push(...(await verifyDetached(decodeBody(readEntity(sigPart)), toCrlf(content), ctx, 'whole')));
        } catch (err) {
          problems.push(`OpenPGP signature not readable: ${(err as Error).message.replace(/^Error: /, '')}`);
        }
      }
      // Another protocol's signature (S/MIME) is that module's to check; either way the signature
      // stays in the delivered message unless what it covers is decrypted below.
      signatureLayers++;
      current = content;
      rootHeader = null;
      prefix = prefix ? `${prefix}.1` : '1';
      continue;
    }
    if (t === 'multipart/mixed' && boundary) {
      // A mixed of one part adds nothing around it: look at the part (Outlook wraps inline PGP so).
      const { parts } = multipartLayout(e.body, boundary, 2);
      if (parts.length === 1) {
        // The mixed stays the payload root (its header is where protected fields are).
        rootHeader ??= headerOf(current);
        current = parts[0]!;
        prefix = prefix ? `${prefix}.1` : '1';
        continue;
      }
    }
    if (t === 'text/plain' || (t === 'text/html' && opts.inlineHtml)) {
      const charset = lower(e.type.params.get('charset')) || undefined;
      const raw = e.body.length > SNIFF_LIMIT ? Buffer.alloc(0) : decodeBody(e);
      const text = t === 'text/html' ? htmlText(textOf(raw, charset)) : textOf(raw, charset);
      const kind = inlineKind(text);
      if (kind?.kind === 'encrypted') {
        if (await decryptLayer(kind.armored, 'inline', charset)) continue;
      } else if (kind?.kind === 'partial-encrypted') {
        encryption = { status: 'not-decrypted', form: 'inline', nested: true, reason: 'an inline PGP message among other text was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)' };
        nested.push(prefix || '1');
      } else if ((kind?.kind === 'signed' || kind?.kind === 'partial-signed') && doVerify) {
        try {
          const part = prefix || '1';
          const reports = await verifyCleartext(kind.text, raw, charset, ctx, kind.kind === 'signed' ? 'whole' : 'partial');
          // Clear-signed text among other text: the signed block is part of this part, the text around it is not signed.
          signatures.push(...(kind.kind === 'signed' ? reports : reports.map((r) => ({ ...r, part, unsigned: [part] }))));
        } catch (err) {
          problems.push(`inline OpenPGP signature not readable: ${(err as Error).message.replace(/^Error: /, '')}`);
        }
      }
      break;
    }
    // Anything else (a multipart, an HTML body, a file, a forwarded message): OpenPGP below it is reported, never opened.
    const found = await openNested(current, prefix, ctx, { verify: doVerify, leaveAttachmentFiles: opts.attachmentFiles === true && doDecrypt, ...(opts.maxDecompressedSize ? { maxDecompressedSize: opts.maxDecompressedSize } : {}) });
    signatures.push(...found.signatures);
    nested.push(...found.nested);
    problems.push(...found.problems);
    break;
  }
  if (nested.length && !encryption) encryption = { status: 'not-decrypted', nested: true, reason: NESTED_DETAIL };
  const layers = changed || signatureLayers > 0;
  return { message: changed ? joinMessage(split.outer, deliver) : message, encryption, signatures, problems, nested, ...(layers ? { protectedHeader: rootHeader ?? headerOf(current) } : {}) };
}

/** What OpenPGP found, in the shapes of the result-field grammar (mime/results.ts). */
export function pgpResults(r: Pick<PgpOpenResult, 'encryption' | 'signatures' | 'problems'> & Partial<Pick<PgpOpenResult, 'nested'>>): MethodResults {
  const e = r.encryption;
  const encryption = encryptionFields('pgp', e, r.nested ?? [], () => `decrypted; method=pgp; cipher=${e!.cipher}; packet=${e!.packet}; integrity=${e!.packet === 'seipdv1' ? 'mdc' : 'aead'}${e!.key ? `; key=${e!.key}` : ''}`, NESTED_DETAIL);
  const signatures = r.signatures.map((s) => ({
    status: s.status,
    scope: s.scope,
    signer: s.address ?? s.fingerprint ?? (s.keyId ? `0x${s.keyId}` : 'unknown'),
    extra: s.fingerprint ? [`key=${s.fingerprint}`] : s.keyId ? [`key-id=${s.keyId}`] : [],
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.part ? { part: s.part, unsigned: s.unsigned ?? [] } : {}),
  }));
  return { method: 'pgp', encryption, signatures, problems: r.problems };
}

/** The X-Postern-Encryption / X-Postern-Signature fields, method=pgp (grammar: mime/results.ts). */
export function pgpResultHeaders(r: Pick<PgpOpenResult, 'encryption' | 'signatures' | 'problems'> & Partial<Pick<PgpOpenResult, 'nested'>>): [string, string][] {
  return resultFields([pgpResults(r)]);
}
