/**
 * Files embedded in the PDF so a reader can save them: an embedded-file stream (with MIME type,
 * size and dates), a file specification naming it, the document's EmbeddedFiles name tree (the
 * reader's attachment panel), and a file-attachment annotation for the paperclip on the
 * Attachments page.
 *
 * pdf-lib's doc.attach() deflates with pako, which takes seconds for tens of megabytes; here
 * node:zlib does it, and data that does not shrink (JPEG, ZIP, PDF, ciphertext) is stored as it is,
 * which costs nothing and keeps the one copy the message already holds. Attachments are bytes
 * only: a PDF or an encrypted file inside is never parsed.
 *
 * Untrusted input: names, types and bytes from the message (names made safe by file-names.ts).
 */
import { deflateSync } from 'node:zlib';
import { PDFArray, PDFDict, PDFHexString, PDFName, PDFNumber, PDFString, type PDFDocument, type PDFPage, type PDFRef } from 'pdf-lib';

export interface EmbeddableFile {
  name: string;
  type: string;
  data: Uint8Array;
  created: Date;
  modified: Date;
}

export interface EmbeddedFile {
  name: string;
  spec: PDFRef;
}

/** Below this, compressing costs more than it saves anyone. */
const SMALL = 512;
/** What is tried first to see whether the data compresses at all. */
const SAMPLE = 64 * 1024;
/** Above this a faster deflate level: a big file compressed well enough beats one compressed slowly. */
const LARGE = 1024 * 1024;

/** The data deflated, or null when deflating does not save at least a tenth (already compressed data). */
function deflated(data: Uint8Array): Buffer | null {
  if (data.length < SMALL) return null;
  const sample = data.subarray(0, Math.min(data.length, SAMPLE));
  if (deflateSync(sample, { level: 1 }).length > sample.length * 0.9) return null;
  const out = deflateSync(data, { level: data.length > LARGE ? 1 : 6 });
  return out.length < data.length * 0.9 ? out : null;
}

/** A MIME type as a PDF name may carry it: "type/subtype" in lower case, else application/octet-stream. */
function mimeType(type: string): string {
  const t = type.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$/.test(t) ? t : 'application/octet-stream';
}

/** A PDF byte string of ASCII (the /F name older readers use): other characters as "_". */
function asciiString(text: string): PDFHexString {
  const bytes = Buffer.from(text.replace(/[^\x20-\x7e]/g, '_'), 'latin1');
  return PDFHexString.of(bytes.toString('hex'));
}

/** One file embedded (stream and file specification); the name tree is made by `nameFiles`. */
export function embedFile(doc: PDFDocument, file: EmbeddableFile): EmbeddedFile {
  const ctx = doc.context;
  const packed = deflated(file.data);
  const params = ctx.obj({
    Size: PDFNumber.of(file.data.length),
    CreationDate: PDFString.fromDate(file.created),
    ModDate: PDFString.fromDate(file.modified),
  });
  const streamDict: Record<string, unknown> = { Type: 'EmbeddedFile', Subtype: PDFName.of(mimeType(file.type)), Params: params };
  if (packed) streamDict.Filter = 'FlateDecode';
  const stream = ctx.register(ctx.stream(packed ?? file.data, streamDict as never));
  const spec = ctx.register(
    ctx.obj({
      Type: 'Filespec',
      F: asciiString(file.name),
      UF: PDFHexString.fromText(file.name),
      EF: { F: stream, UF: stream },
      AFRelationship: 'Data',
    }),
  );
  return { name: file.name, spec };
}

/**
 * The EmbeddedFiles name tree: one leaf node, keys sorted by their bytes (ISO 32000-2 7.9.6) and
 * unique (the names are distinct already). Also the document's /AF array (PDF 2.0 associated files).
 */
export function nameFiles(doc: PDFDocument, files: readonly EmbeddedFile[]): void {
  if (!files.length) return;
  const ctx = doc.context;
  const keyed = files.map((f) => ({ key: PDFHexString.fromText(f.name), spec: f.spec }));
  keyed.sort((a, b) => (a.key.asString() < b.key.asString() ? -1 : a.key.asString() > b.key.asString() ? 1 : 0));
  const names = PDFArray.withContext(ctx);
  for (const k of keyed) {
    names.push(k.key);
    names.push(k.spec);
  }
  const tree = ctx.obj({ Names: names });
  const catalog = doc.catalog;
  const existing = catalog.lookupMaybe(PDFName.of('Names'), PDFDict);
  const namesDict = existing ?? ctx.obj({});
  namesDict.set(PDFName.of('EmbeddedFiles'), ctx.register(tree));
  if (!existing) catalog.set(PDFName.of('Names'), ctx.register(namesDict));
  catalog.set(PDFName.of('AF'), ctx.obj(files.map((f) => f.spec)));
}

/** A paperclip at (x, y) on the page that opens or saves the file in readers that show annotations. */
export function fileAnnotation(doc: PDFDocument, page: PDFPage, file: EmbeddedFile, x: number, y: number, size: number): void {
  const annot = doc.context.obj({
    Type: 'Annot',
    Subtype: 'FileAttachment',
    Rect: [x, y, x + size, y + size],
    FS: file.spec,
    Contents: PDFHexString.fromText(file.name),
    Name: 'Paperclip',
    // Print, and neither zoom nor rotate with the page: the icon stays beside its name.
    F: 4 | 8 | 16,
    C: [0.16, 0.31, 0.5],
  });
  page.node.addAnnot(doc.context.register(annot));
}
