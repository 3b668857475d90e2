/**
 * The PDF standard security handler (ISO 32000-2 §7.6.4) on pdf-lib, which writes PDFs but does not
 * encrypt: AES-256 (V 5 / R 6) by default, AES-128 (V 4 / R 4, the AESV2 crypt filter) for old
 * readers. Every string and stream is encrypted, metadata and embedded files included; the
 * exceptions are the standard's own (the /Encrypt dictionary, the trailer /ID). The owner password
 * is random and forgotten at once: nobody can lift the permissions, which only say what a reader
 * should allow the addressee anyway.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { PDFArray, PDFContext, PDFDict, PDFDocument, PDFHexString, PDFName, PDFRef, PDFWriter, type PDFForm } from 'pdf-lib';
import { PdfSecurityError } from './security-errors.js';
import { ObjectEncrypter, type KeyForObject } from './security-objects.js';
import { r4PasswordBytes, r6PasswordBytes } from './security-password.js';
import { computeR4FileKey, computeR4O, computeR4U, r4ObjectKey } from './security-r4.js';
import { computeR6Entries } from './security-r6.js';

export { PdfSecurityError, type PdfSecurityErrorCode } from './security-errors.js';
export { normalisePdfPassword } from './security-password.js';

export type PdfCipher = 'aes-256' | 'aes-128';

export interface PdfSecurity {
  /** The password the addressee types (the open/user password). */
  userPassword: string;
  cipher: PdfCipher; // default the caller passes: 'aes-256'
  /** Print and copy allowed by default (the reader is the addressee). */
  permissions?: { print?: boolean; copy?: boolean; modify?: boolean; annotate?: boolean };
}

/**
 * /P per Table 22 (bit 1 is the lowest): 7–8 and 13–32 always set, 1–2 always clear; 10
 * (extraction for accessibility) always set, as ISO 32000-2 asks of writers. Print grants normal
 * and high-quality (3, 12), copy grants extraction (5), modify grants editing and assembling
 * (4, 11), annotate grants comments and form filling (6, 9). A signed 32-bit integer, as stored.
 */
export function permissionBits(p: PdfSecurity['permissions'] = {}): number {
  const bit = (n: number): number => 1 << (n - 1);
  let bits = 0xfffff000 | bit(7) | bit(8) | bit(10);
  if (p.print ?? true) bits |= bit(3) | bit(12);
  if (p.copy ?? true) bits |= bit(5);
  if (p.modify ?? false) bits |= bit(4) | bit(11);
  if (p.annotate ?? false) bits |= bit(6) | bit(9);
  return bits | 0;
}

/**
 * Throws PdfSecurityError ('password-unusable') if `password` cannot open a `cipher` PDF in every
 * reader: empty, not in its normalised form, prohibited characters, or (aes-128) beyond Latin-1.
 * For `postern pdf password set`, so an admin hears it then and not when mail is held.
 */
export function assertPdfPasswordUsable(password: string, cipher: PdfCipher): void {
  if (cipher === 'aes-128') r4PasswordBytes(password);
  else r6PasswordBytes(password);
}

/**
 * R6 key material per password, made once per process. Algorithm 2.B is slow on purpose (four
 * hashes of ~1.3 ms for U, UE, O and OE), which is most of the cost of encrypting a small mail;
 * a pair's PDFs are all opened with one password, so they may share one random file key — whoever
 * has the password opens all of them anyway, and every string and stream still gets its own
 * random IV. The map is keyed by an HMAC under a per-process secret, never by the password; it
 * is bounded, oldest out first.
 */
const R6_CACHE_MAX = 1024;
const r6Cache = new Map<string, { fileKey: Buffer; entries: Record<string, Uint8Array> }>();
const cacheSecret = randomBytes(32);

function r6Material(userPassword: Buffer, P: number): { fileKey: Buffer; entries: Record<string, Uint8Array> } {
  const k = createHmac('sha256', cacheSecret).update(Buffer.from(Int32Array.of(P).buffer)).update(userPassword).digest('base64');
  let m = r6Cache.get(k);
  if (m) {
    r6Cache.delete(k);
  } else {
    const fileKey = randomBytes(32);
    // A random owner password, never kept: nobody can lift the permissions.
    const ownerPassword = Buffer.from(randomBytes(32).toString('base64url'), 'latin1');
    m = { fileKey, entries: computeR6Entries(fileKey, userPassword, ownerPassword, P, true) };
    if (r6Cache.size >= R6_CACHE_MAX) r6Cache.delete(r6Cache.keys().next().value!);
  }
  r6Cache.set(k, m);
  return m;
}

/** Objects the writer yields to the event loop after (pdf-lib's default, 50, costs a timer per 50). */
const OBJECTS_PER_TICK = 500;

/**
 * Encrypts every string and stream of `doc` (incl. metadata, embedded files, annotations) and
 * returns the saved file. The owner password is random and never returned or stored.
 *
 * Like `doc.save()` it first embeds pending fonts, images and files (and adds a page to an empty
 * document); the document's objects are otherwise left as they were — the encrypted copy is made
 * in a context of its own — so `doc` may be saved again.
 */
export async function saveEncrypted(doc: PDFDocument, security: PdfSecurity): Promise<Uint8Array> {
  const { cipher } = security;
  if (cipher !== 'aes-256' && cipher !== 'aes-128') {
    throw new PdfSecurityError(`unknown PDF cipher ${JSON.stringify(String(cipher)).slice(0, 40)}: aes-256 or aes-128`, 'unsupported-document');
  }
  const userPassword = cipher === 'aes-256' ? r6PasswordBytes(security.userPassword) : r4PasswordBytes(security.userPassword);
  const P = permissionBits(security.permissions);
  const source = doc.context;
  if (source.trailerInfo.Encrypt !== undefined) {
    throw new PdfSecurityError('the PDF is already encrypted (loaded with ignoreEncryption); it cannot be encrypted again', 'unsupported-document');
  }
  await prepareForSave(doc);

  const target = PDFContext.create();
  const id0 = randomBytes(16);
  let keyFor: KeyForObject;
  let encrypt: PDFDict;
  if (cipher === 'aes-256') {
    const { fileKey, entries } = r6Material(userPassword, P);
    keyFor = () => ({ algorithm: 'aes-256-cbc', key: fileKey });
    encrypt = encryptDictionary(target, { V: 5, R: 6, bits: 256, cfm: 'AESV3' }, P, entries);
  } else {
    const ownerPassword = Buffer.from(randomBytes(32).toString('base64url'), 'latin1');
    const O = computeR4O(ownerPassword, userPassword);
    const fileKey = computeR4FileKey(userPassword, O, P, id0, true);
    keyFor = (ref) => ({ algorithm: 'aes-128-cbc', key: r4ObjectKey(fileKey, ref.objectNumber, ref.generationNumber) });
    encrypt = encryptDictionary(target, { V: 4, R: 4, bits: 128, cfm: 'AESV2' }, P, { O, U: computeR4U(fileKey, id0) });
  }

  const encrypter = new ObjectEncrypter(target, keyFor);
  for (const [ref, object] of source.enumerateIndirectObjects()) target.assign(ref, encrypter.indirect(ref, object));
  // References allocated but never assigned stay free: new objects go above all of them.
  target.largestObjectNumber = Math.max(target.largestObjectNumber, source.largestObjectNumber);

  const { Root, Info } = source.trailerInfo;
  if (!(Root instanceof PDFRef) || !(target.lookup(Root) instanceof PDFDict)) {
    throw new PdfSecurityError('the PDF has no document catalog to encrypt', 'unsupported-document');
  }
  if (cipher === 'aes-256') declareAdobeExtension(target, target.lookup(Root, PDFDict));
  let infoRef: PDFRef | undefined;
  if (Info instanceof PDFRef) infoRef = Info;
  else if (Info instanceof PDFDict) {
    // A direct Info dictionary has no object number to key its strings: make it indirect.
    infoRef = target.nextRef();
    target.assign(infoRef, encrypter.indirect(infoRef, Info));
  }
  const encryptRef = target.nextRef();
  target.assign(encryptRef, encrypt);
  const id = PDFArray.withContext(target);
  id.push(hex(id0));
  id.push(hex(randomBytes(16)));
  target.trailerInfo = { Root, Info: infoRef, Encrypt: encryptRef, ID: id };
  return PDFWriter.forContext(target, OBJECTS_PER_TICK).serializeToBuffer();
}

/**
 * The /Encrypt dictionary: one crypt filter (StdCF) for strings and streams alike, metadata
 * encrypted too. Its own strings (O, U, …) are the ones the standard leaves in clear.
 */
function encryptDictionary(
  target: PDFContext,
  v: { V: number; R: number; bits: number; cfm: string },
  P: number,
  entries: Record<string, Uint8Array>,
): PDFDict {
  const dict = target.obj({
    Filter: 'Standard',
    V: v.V,
    R: v.R,
    Length: v.bits,
    CF: { StdCF: { AuthEvent: 'DocOpen', CFM: v.cfm, Length: v.bits / 8 } },
    StmF: 'StdCF',
    StrF: 'StdCF',
    P,
    EncryptMetadata: true,
  });
  for (const [name, bytes] of Object.entries(entries)) dict.set(PDFName.of(name), hex(bytes));
  return dict;
}

function hex(bytes: Uint8Array): PDFHexString {
  return PDFHexString.of(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));
}

/**
 * What doc.save() does before writing: a page for an empty document, fresh form field
 * appearances, pending fonts/images/files embedded. pdf-lib keeps its form cache private; reading
 * it (instead of getForm(), which would create an AcroForm) matches save() exactly.
 */
async function prepareForSave(doc: PDFDocument): Promise<void> {
  if (doc.getPageCount() === 0) doc.addPage();
  const form = (doc as unknown as { formCache?: { getValue(): PDFForm | undefined } }).formCache?.getValue();
  form?.updateFieldAppearances();
  await doc.flush();
}

/**
 * AES-256 R6 belongs to PDF 2.0; pdf-lib writes a 1.7 header, and 1.7 readers recognise R6 by
 * Adobe's extension level 8 in the catalog (as Acrobat and qpdf write it).
 */
function declareAdobeExtension(context: PDFContext, catalog: PDFDict): void {
  const adbe = context.obj({ BaseVersion: '1.7', ExtensionLevel: 8 });
  const existing = catalog.get(PDFName.of('Extensions'));
  if (existing instanceof PDFDict) existing.set(PDFName.of('ADBE'), adbe);
  else if (existing === undefined) catalog.set(PDFName.of('Extensions'), context.obj({ ADBE: adbe }));
}
