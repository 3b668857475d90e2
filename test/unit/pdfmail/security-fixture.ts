/**
 * A small document with a known plaintext in every place a PDF can hold text: a content stream,
 * the Info dictionary, an XMP metadata stream, an embedded file made by pdf-lib (flate stream) and
 * one made by hand (PDFRawStream deflated with node:zlib, with a string in its stream dictionary),
 * a link annotation's URI, and a string deep in a dictionary inside an array.
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { PDFDocument, PDFHexString, PDFName, PDFRef, PDFString, StandardFonts } from 'pdf-lib';

export const SECRETS = {
  pageText: 'Quarterly figures for Fjordholm',
  title: 'Merger with Sandvik Brothers',
  metadata: 'Confidential XMP description Lumenwald',
  attachmentName: 'figures-kvartal.txt',
  payload: 'PAYLOAD: account 4711-0815 balance 99 thousand',
  rawPayload: 'RAW PAYLOAD: deflated by node zlib, Oberwiesenthal',
  rawParam: 'raw-stream-dictionary-string Ystad',
  uri: 'https://portal.example.com/reply/tok-Zq81fWmRkT',
  nested: 'nested string in an array of Trondheim',
} as const;

export interface Fixture {
  doc: PDFDocument;
  /** The indirect object of the hand-made embedded file, for `mutool show`. */
  rawFileRef: PDFRef;
  payload: Buffer;
  rawPayload: Buffer;
}

export async function buildFixture(): Promise<Fixture> {
  const doc = await PDFDocument.create();
  doc.setTitle(SECRETS.title);
  const page = doc.addPage([400, 300]);
  const font = await doc.embedFont(StandardFonts.Helvetica);
  page.drawText(SECRETS.pageText, { x: 20, y: 250, size: 12, font });
  const ctx = doc.context;

  const xmp = `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>${SECRETS.metadata}</dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`;
  const metadata = ctx.register(ctx.stream(Buffer.from(xmp), { Type: 'Metadata', Subtype: 'XML' }));
  doc.catalog.set(PDFName.of('Metadata'), metadata);

  const payload = Buffer.from(SECRETS.payload);
  await doc.attach(payload, SECRETS.attachmentName, { mimeType: 'text/plain', description: 'figures' });

  // An embedded file as pdfrender may make it: deflated outside pdf-lib, attached by annotation.
  const rawPayload = Buffer.from(SECRETS.rawPayload);
  const rawFileRef = ctx.register(
    ctx.stream(deflateSync(rawPayload), {
      Type: 'EmbeddedFile',
      Subtype: 'text/plain',
      Filter: 'FlateDecode',
      Params: {
        Size: rawPayload.length,
        CheckSum: PDFHexString.of(createHash('md5').update(rawPayload).digest('hex')),
        ModDate: PDFString.fromDate(new Date('2026-12-01T10:00:00Z')),
      },
      Desc: PDFString.of(SECRETS.rawParam),
    }),
  );
  const fileSpec = ctx.obj({
    Type: 'Filespec',
    F: PDFString.of('raw.txt'),
    UF: PDFHexString.fromText('raw.txt'),
    EF: { F: rawFileRef, UF: rawFileRef },
  });
  page.node.addAnnot(ctx.register(ctx.obj({ Type: 'Annot', Subtype: 'FileAttachment', Rect: [20, 100, 40, 120], FS: fileSpec, Contents: PDFString.of('raw.txt'), Name: 'Paperclip' })));
  page.node.addAnnot(
    ctx.register(ctx.obj({ Type: 'Annot', Subtype: 'Link', Rect: [20, 200, 200, 220], Border: [0, 0, 0], A: { S: 'URI', URI: PDFString.of(SECRETS.uri) } })),
  );
  page.node.set(PDFName.of('PieceInfo'), ctx.obj({ Postern: { Private: [1, { Note: PDFString.of(SECRETS.nested) }] } }));
  return { doc, rawFileRef, payload, rawPayload };
}
