/**
 * OpenPGP below the message as opened (open.ts opens only what the whole message is): signed
 * parts, clear-signed text in a text or HTML body or in an attachment, a signed-only armoured or
 * binary message in a file, a detached signature file beside the file it signs — each checked
 * and reported as partial, naming its part and the content parts it does not cover; ciphertext
 * anywhere (PGP/MIME parts, armour, .pgp/.gpg files) left as it is and listed (EFAIL).
 *
 * Untrusted input: every part (found by mime/crypto-tree.ts, bounded). A signature that cannot be
 * read is an invalid signer of its part, never a throw.
 */
import { cryptoTree, decodeBody, multipartLayout, outside, readEntity, toCrlf, type CryptoNode } from '../mime/index.js';
import { htmlText, inlineKind, parseCleartext, textOf } from './inline.js';
import { isSignedOnly, readPgpMessage, verifySignedPgp } from './pgp-decrypt.js';
import { verifyDetached, type PgpSignatureReport as VerifiedReport, type VerifyContext } from './pgp-verify.js';

/** A signature's verdict, and for one over a part: which part, and the content parts outside it. */
export type PgpSignatureReport = VerifiedReport & { part?: string; unsigned?: string[] };

/** Signatures of parts checked per message; more are reported as not checked. */
const MAX_NESTED_SIGNATURES = 8;
/** Armour read to tell a signed-only message from ciphertext. */
const ARMOUR_LIMIT = 4 << 20;

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/^Error: /, '');

/** Inline clear-signed text: the signature over the text as sent, or else as UTF-8 (what the signer's client may have hashed). */
export async function verifyCleartext(block: string, raw: Buffer, charset: string | undefined, ctx: VerifyContext, scope: PgpSignatureReport['scope']): Promise<PgpSignatureReport[]> {
  const asText = parseCleartext(block);
  if (!asText) throw new Error('the clear-signed text is not well-formed');
  const utf8 = Buffer.from(asText.signedText, 'utf8');
  let reports = await verifyDetached(asText.armoredSignature, utf8, ctx, scope);
  if (reports.some((r) => r.status === 'invalid')) {
    // A binary-mode signature in a cleartext frame (git signs commits so) covers the lines as they are.
    const again = await verifyDetached(asText.armoredSignature, Buffer.from(asText.rawText, 'utf8'), ctx, scope);
    if (!again.some((r) => r.status === 'invalid')) reports = again;
  }
  if (reports.some((r) => r.status === 'invalid') && !['utf-8', 'utf8', 'us-ascii', undefined].includes(charset)) {
    // The same text in the bytes of the declared charset (a signer that hashed what it sent).
    const inCharset = parseCleartext(raw.toString('latin1'));
    if (inCharset) {
      const again = await verifyDetached(inCharset.armoredSignature, Buffer.from(inCharset.signedText, 'latin1'), ctx, scope);
      if (!again.some((r) => r.status === 'invalid')) reports = again;
    }
  }
  return reports;
}

/** The text of a part as a reader sees it (HTML: its visible text), in its declared charset. */
function partText(n: CryptoNode): { text: string; raw: Buffer; charset: string | undefined } {
  const e = readEntity(n.raw);
  const raw = decodeBody(e);
  const charset = e.type.params.get('charset')?.trim().toLowerCase() || undefined;
  const text = textOf(raw, charset);
  // A clear-signed text keeps its empty lines: they are part of what was signed.
  return { text: n.html ? htmlText(text, n.kind === 'pgp-cleartext') : text, raw, charset };
}

/** The armoured block of a text, or the binary message of a file. */
function armourOf(n: CryptoNode): string | Buffer | null {
  const e = readEntity(n.raw);
  if (e.body.length > ARMOUR_LIMIT) return null;
  const data = decodeBody(e);
  if (n.kind === 'pgp-armour' && !data.subarray(0, 200).toString('latin1').includes('-----BEGIN') && data[0] !== undefined && data[0] & 0x80) return data;
  const text = partText(n).text;
  const begin = text.indexOf('-----BEGIN PGP MESSAGE-----');
  const end = text.indexOf('-----END PGP MESSAGE-----', begin);
  return begin >= 0 && end > begin ? inlineKindArmour(text.slice(begin, end + 25)) : null;
}

const inlineKindArmour = (block: string): string | null => {
  const k = inlineKind(block);
  return k?.kind === 'encrypted' ? k.armored : null;
};

export interface NestedFindings {
  signatures: PgpSignatureReport[];
  /** Ciphertext left as it is, by part number. */
  nested: string[];
  problems: string[];
}

export interface NestedOptions {
  verify: boolean;
  /** Encrypted .pgp/.gpg/.asc files outside signed parts are decrypted as attachments (attachments.ts): not listed here. */
  leaveAttachmentFiles: boolean;
  /** Signed-only armour inflates while it is read: at most this far (worker.max_decompressed_size). */
  maxDecompressedSize?: number;
}

/** OpenPGP found below `entity` (part number `prefix` in the delivered message). */
export async function openNested(entity: Buffer, prefix: string, ctx: VerifyContext, opts: NestedOptions): Promise<NestedFindings> {
  const out: NestedFindings = { signatures: [], nested: [], problems: [] };
  const tree = cryptoTree(entity, prefix);
  const attachmentFile = (n: CryptoNode) => opts.leaveAttachmentFiles && !n.insideSigned && /\.(pgp|gpg|asc)$/i.test(n.name);
  let checked = 0;
  let read = 0;
  for (const n of tree.nodes.filter((x) => x.method === 'pgp')) {
    if (n.kind === 'pgp-encrypted') {
      if (!attachmentFile(n)) out.nested.push(n.part);
      continue;
    }
    const signedPart = n.kind === 'pgp-signature-file' ? n.target!.part : n.part;
    const unsigned = outside(tree.leaves, signedPart);
    // Clear-signed text with text around it: that part is not wholly signed either.
    if (n.kind === 'pgp-cleartext' && !n.whole) unsigned.push(n.part);
    const where = { part: signedPart, unsigned };
    try {
      if (n.kind === 'pgp-armour') {
        // Reading armour costs a parse: past the limit, armour counts as what it usually is, ciphertext.
        const armour = read++ < MAX_NESTED_SIGNATURES ? armourOf(n) : null;
        const message = armour === null ? null : await readPgpMessage(armour, opts.maxDecompressedSize).catch(() => null);
        // Ciphertext, or armour we cannot read (it might be ciphertext): left as it is.
        if (!message || !isSignedOnly(message)) {
          if (!attachmentFile(n)) out.nested.push(n.part);
          continue;
        }
        if (!opts.verify || checked++ >= MAX_NESTED_SIGNATURES) continue;
        out.signatures.push(...(await verifySignedPgp(message, ctx)).signatures.map((s) => ({ ...s, scope: 'partial' as const, ...where })));
        continue;
      }
      if (!opts.verify || checked++ >= MAX_NESTED_SIGNATURES) continue;
      if (n.kind === 'pgp-cleartext') {
        const { text, raw, charset } = partText(n);
        const k = inlineKind(text);
        if (!k || !('text' in k)) throw new Error('the clear-signed text is not well-formed');
        out.signatures.push(...(await verifyCleartext(k.text, raw, charset, ctx, 'partial')).map((s) => ({ ...s, ...where })));
      } else if (n.kind === 'pgp-signed') {
        const s = readEntity(n.raw);
        const { parts } = multipartLayout(s.body, s.type.params.get('boundary') ?? '', 3);
        if (parts.length !== 2) throw new Error(`multipart/signed with ${parts.length} parts instead of 2`);
        out.signatures.push(...(await verifyDetached(decodeBody(readEntity(parts[1]!)), toCrlf(parts[0]!), ctx, 'partial')).map((s) => ({ ...s, ...where })));
      } else if (n.kind === 'pgp-signature-file') {
        // A detached signature over a file covers its bytes as they are (binary), after the transfer encoding.
        const sig = decodeBody(readEntity(n.raw));
        const file = decodeBody(readEntity(n.target!.raw));
        out.signatures.push(...(await verifyDetached(sig, file, ctx, 'partial')).map((s) => ({ ...s, ...where })));
      }
    } catch (err) {
      out.signatures.push({ status: 'invalid', keyId: '', scope: 'partial', reason: `the signature of part ${n.part} cannot be read: ${errText(err)}`, ...where });
    }
  }
  if (checked > MAX_NESTED_SIGNATURES || tree.truncated) out.problems.push(`the message has more signed parts or more parts than are checked (${MAX_NESTED_SIGNATURES} signatures): the rest were not checked`);
  return out;
}
