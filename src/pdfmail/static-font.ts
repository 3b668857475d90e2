/**
 * A fixed subset of the main font for the characters nearly every Western mail uses (ASCII,
 * Latin-1, the typographic quotes and dashes, €), built, encoded and deflated once per process and
 * embedded as the same bytes in every PDF. Subsetting per document (fontkit encodes the font
 * tables anew, pako deflates them) was half the CPU time of a 4 KB text mail; this costs a few
 * dictionaries. Characters outside the set go to the per-document subset (faces.ts) as before.
 *
 * The set is fixed, not learnt from mail: a subset that grew with what other messages contained
 * would tell every recipient which characters this gateway had seen.
 *
 * Untrusted input: the text drawn. Secrets: none.
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { CustomFontEmbedder, PDFFont, PDFHexString, PDFRef, type PDFContext, type PDFDocument } from 'pdf-lib';
import type { Glyph } from 'pdf-lib/cjs/types/fontkit.js';
import type { FontFace } from './fonts.js';
import { stripTrueTypeHinting } from './ttf-hinting.js';

/** ASCII, Latin-1, and the punctuation word processors put in: ‘ ’ ‚ “ ” „ – — • … € ™ and U+FFFD. */
const STATIC_CHARS: readonly number[] = [
  ...range(0x20, 0x7e),
  ...range(0xa0, 0xff),
  0x2018, 0x2019, 0x201a, 0x201c, 0x201d, 0x201e, 0x2013, 0x2014, 0x2022, 0x2026, 0x20ac, 0x2122, 0xfffd,
];

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

interface StaticSubset {
  /** Code point → CID (the glyph's index in the subset). */
  cids: Map<number, number>;
  /** Code point → its CID as four hex digits, as a content stream shows it. */
  hex: Map<number, string>;
  /** Advance widths in 1/1000 em by CID. */
  widths: number[];
  /** The TrueType subset, deflated, and its length before (/Length1). */
  fontFile: Buffer;
  fontFileLength: number;
  toUnicode: Buffer;
  name: string;
}

const built = new WeakMap<FontFace, Promise<StaticSubset>>();

interface Subsetter {
  includeGlyph(id: number): number;
  encodeStream(): { on(name: string, cb: (chunk?: Uint8Array) => void): unknown };
  _addGlyph(gid: number): number;
  glyf: Uint8Array[];
  offset: number;
}

async function encodeSubset(subset: Subsetter): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  await new Promise<void>((resolve, reject) => {
    const s = subset.encodeStream();
    s.on('data', (c) => parts.push(c!));
    s.on('end', () => resolve());
    s.on('error', () => reject(new Error('font subset could not be encoded')));
  });
  return Buffer.concat(parts);
}

/** The ToUnicode CMap (ISO 32000 9.10.3) of the subset: CID → the code point it was made for. */
function toUnicodeCMap(cids: Map<number, number>): string {
  const entries = [...cids].map(([cp, cid]) => `<${cid.toString(16).padStart(4, '0')}> <${cp.toString(16).padStart(4, '0')}>`);
  const blocks: string[] = [];
  for (let i = 0; i < entries.length; i += 100) blocks.push(`${Math.min(100, entries.length - i)} beginbfchar\n${entries.slice(i, i + 100).join('\n')}\nendbfchar`);
  return `/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000><ffff>\nendcodespacerange\n${blocks.join('\n')}\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend`;
}

/** The static subset of a face, built on first use (once, however many documents wait for it). */
export function staticSubset(face: FontFace, pad: (s: Subsetter) => void): Promise<StaticSubset> {
  let s = built.get(face);
  if (!s) {
    built.set(face, (s = build(face, pad)));
    // A failure is not remembered: the next document tries again.
    s.catch(() => built.delete(face));
  }
  return s;
}

/** The subset encoded, with `pad` applied to its glyphs first (faces.ts), deflated, with its CMap. */
async function build(face: FontFace, pad: (s: Subsetter) => void): Promise<StaticSubset> {
  const subset = face.font.createSubset() as unknown as Subsetter;
  pad(subset);
  const cids = new Map<number, number>();
  const widths: number[] = [0];
  for (const cp of STATIC_CHARS) {
    if (!face.font.hasGlyphForCodePoint(cp)) continue;
    const glyph: Glyph = face.font.glyphForCodePoint(cp);
    const cid = subset.includeGlyph(glyph.id);
    cids.set(cp, cid);
    widths[cid] = (glyph.advanceWidth * 1000) / face.font.unitsPerEm;
  }
  // Without the hinting programs (more than half of DejaVu's glyph data; readers do not need them).
  const fontFile = stripTrueTypeHinting(await encodeSubset(subset));
  // The subset tag (ISO 32000 9.6.4) from the set itself: the same bytes get the same name.
  const digest = createHash('sha256').update(fontFile).digest();
  const tag = Array.from(digest.subarray(0, 6), (b) => String.fromCharCode(65 + (b % 26))).join('');
  return {
    cids,
    hex: new Map([...cids].map(([cp, cid]) => [cp, cid.toString(16).padStart(4, '0')])),
    widths: Array.from(widths, (w) => w ?? 0),
    fontFile: deflateSync(fontFile, { level: 9 }),
    fontFileLength: fontFile.length,
    toUnicode: deflateSync(Buffer.from(toUnicodeCMap(cids), 'latin1'), { level: 9 }),
    name: `${tag}+${face.font.postscriptName || 'Font'}`,
  };
}

/** pdf-lib's own font dictionaries (Type0, CIDFontType2, descriptor) around the prebuilt streams. */
class StaticFontEmbedder extends CustomFontEmbedder {
  constructor(
    face: FontFace,
    private readonly subset: StaticSubset,
  ) {
    super(face.font as never, face.bytes, subset.name, undefined);
  }

  override encodeText(text: string): PDFHexString {
    let hex = '';
    for (const ch of text) hex += this.subset.hex.get(ch.codePointAt(0)!) ?? '0000';
    return PDFHexString.of(hex);
  }

  override widthOfTextAtSize(text: string, size: number): number {
    let w = 0;
    for (const ch of text) w += this.subset.widths[this.subset.cids.get(ch.codePointAt(0)!) ?? 0] ?? 0;
    return (w * size) / 1000;
  }

  protected override embedFontStream(context: PDFContext): Promise<PDFRef> {
    return Promise.resolve(context.register(context.stream(this.subset.fontFile, { Filter: 'FlateDecode', Length1: this.subset.fontFileLength })));
  }

  protected override embedUnicodeCmap(context: PDFContext): PDFRef {
    return context.register(context.stream(this.subset.toUnicode, { Filter: 'FlateDecode' }));
  }

  protected override computeWidths(): (number | number[])[] {
    return [0, this.subset.widths];
  }
}

/** The face's static subset as a font of `doc`. */
export function embedStaticFont(doc: PDFDocument, face: FontFace, subset: StaticSubset): PDFFont {
  const font = PDFFont.of(doc.context.nextRef(), doc, new StaticFontEmbedder(face, subset));
  // What PDFDocument.embedFont does with the fonts it makes: embedded when the document is saved.
  (doc as unknown as { fonts: PDFFont[] }).fonts.push(font);
  return font;
}

/** Whether a code point is drawn from the static subset. */
export const inStaticSubset = (s: StaticSubset, cp: number) => s.cids.has(cp);

export type { StaticSubset, Subsetter };
