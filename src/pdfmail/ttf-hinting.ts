/**
 * TrueType hinting removed from a font subset before it is embedded. Hinting (the glyph programs,
 * `fpgm`, `prep` and `cvt `) fits outlines to a screen's pixel grid at small sizes; PDF readers
 * render unhinted or hint on their own, and in DejaVu Sans the glyph programs are more than half
 * of the glyph data — of every PDF Postern sends. What stays is what a reader draws and extracts
 * with: the outlines, metrics and character maps, byte for byte.
 *
 * Input: a subset fontkit encoded from a font file of this machine (not mail). A font this code
 * does not understand (not TrueType outlines, a table past the end) is returned as it came.
 */

const HINTING_TABLES = new Set(['fpgm', 'prep', 'cvt ']);

/** Composite glyph flags (OpenType glyf table). */
const ARG_1_AND_2_ARE_WORDS = 0x0001;
const WE_HAVE_A_SCALE = 0x0008;
const MORE_COMPONENTS = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE = 0x0040;
const WE_HAVE_A_TWO_BY_TWO = 0x0080;
const WE_HAVE_INSTRUCTIONS = 0x0100;

interface Table {
  tag: string;
  data: Buffer;
}

/** One glyph without its instructions (a copy; the input is not changed). */
function glyphWithoutInstructions(g: Buffer): Buffer {
  if (g.length < 10) return g;
  const contours = g.readInt16BE(0);
  if (contours >= 0) {
    // Simple glyph: header (10), end points (2 per contour), instruction length, instructions, flags and coordinates.
    const at = 10 + 2 * contours;
    const length = g.readUInt16BE(at);
    const out = Buffer.concat([g.subarray(0, at), Buffer.alloc(2), g.subarray(at + 2 + length)]);
    return out;
  }
  // Composite glyph: components, then (if the last says so) instructions; the flag is cleared.
  const out = Buffer.from(g);
  let p = 10;
  for (;;) {
    const flags = out.readUInt16BE(p);
    out.writeUInt16BE(flags & ~WE_HAVE_INSTRUCTIONS, p);
    p += 4 + (flags & ARG_1_AND_2_ARE_WORDS ? 4 : 2);
    if (flags & WE_HAVE_A_SCALE) p += 2;
    else if (flags & WE_HAVE_AN_X_AND_Y_SCALE) p += 4;
    else if (flags & WE_HAVE_A_TWO_BY_TWO) p += 8;
    if (!(flags & MORE_COMPONENTS)) break;
  }
  return out.subarray(0, p);
}

function checksum(b: Buffer): number {
  let sum = 0;
  const padded = b.length % 4 ? Buffer.concat([b, Buffer.alloc(4 - (b.length % 4))]) : b;
  for (let i = 0; i < padded.length; i += 4) sum = (sum + padded.readUInt32BE(i)) >>> 0;
  return sum;
}

export function stripTrueTypeHinting(ttf: Buffer): Buffer {
  try {
    // TrueType outlines: version 1.0, or 'true' as fontkit's subsetter writes it.
    const version = ttf.readUInt32BE(0);
    if (version !== 0x00010000 && version !== 0x74727565) return ttf;
    const count = ttf.readUInt16BE(4);
    const tables: Table[] = [];
    for (let i = 0; i < count; i++) {
      const rec = 12 + 16 * i;
      const offset = ttf.readUInt32BE(rec + 8);
      const length = ttf.readUInt32BE(rec + 12);
      if (offset + length > ttf.length) return ttf;
      tables.push({ tag: ttf.toString('latin1', rec, rec + 4), data: ttf.subarray(offset, offset + length) });
    }
    const byTag = new Map(tables.map((t) => [t.tag, t]));
    const head = byTag.get('head');
    const loca = byTag.get('loca');
    const glyf = byTag.get('glyf');
    const maxp = byTag.get('maxp');
    if (!head || !loca || !glyf || !maxp) return ttf;
    const longLoca = head.data.readInt16BE(50) === 1;
    const glyphs = maxp.data.readUInt16BE(4);
    const offsetAt = (i: number) => (longLoca ? loca.data.readUInt32BE(4 * i) : loca.data.readUInt16BE(2 * i) * 2);
    const parts: Buffer[] = [];
    const offsets: number[] = [0];
    let size = 0;
    for (let i = 0; i < glyphs; i++) {
      const from = offsetAt(i);
      const to = offsetAt(i + 1);
      if (to < from || to > glyf.data.length) return ttf;
      let g = to > from ? glyphWithoutInstructions(glyf.data.subarray(from, to)) : Buffer.alloc(0);
      // Glyphs start on even offsets (short loca stores offset / 2); 4 keeps them word-aligned.
      if (g.length % 4) g = Buffer.concat([g, Buffer.alloc(4 - (g.length % 4))]);
      parts.push(g);
      size += g.length;
      offsets.push(size);
    }
    const newGlyf = Buffer.concat(parts, size);
    const short = !longLoca && size <= 0x1fffe;
    const newLoca = Buffer.alloc(offsets.length * (short ? 2 : 4));
    offsets.forEach((o, i) => (short ? newLoca.writeUInt16BE(o / 2, 2 * i) : newLoca.writeUInt32BE(o, 4 * i)));
    const newHead = Buffer.from(head.data);
    newHead.writeInt16BE(short ? 0 : 1, 50);
    newHead.writeUInt32BE(0, 8); // checkSumAdjustment, set below
    const kept = tables
      .filter((t) => !HINTING_TABLES.has(t.tag))
      .map((t) => ({ tag: t.tag, data: t.tag === 'glyf' ? newGlyf : t.tag === 'loca' ? newLoca : t.tag === 'head' ? newHead : t.data }))
      .sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
    const n = kept.length;
    const entrySelector = Math.floor(Math.log2(n));
    const searchRange = 2 ** entrySelector * 16;
    const directory = Buffer.alloc(12 + 16 * n);
    directory.writeUInt32BE(version, 0);
    directory.writeUInt16BE(n, 4);
    directory.writeUInt16BE(searchRange, 6);
    directory.writeUInt16BE(entrySelector, 8);
    directory.writeUInt16BE(n * 16 - searchRange, 10);
    const body: Buffer[] = [];
    let offset = directory.length;
    kept.forEach((t, i) => {
      const rec = 12 + 16 * i;
      directory.write(t.tag, rec, 4, 'latin1');
      directory.writeUInt32BE(checksum(t.data), rec + 4);
      directory.writeUInt32BE(offset, rec + 8);
      directory.writeUInt32BE(t.data.length, rec + 12);
      const padded = t.data.length % 4 ? Buffer.concat([t.data, Buffer.alloc(4 - (t.data.length % 4))]) : t.data;
      body.push(padded);
      offset += padded.length;
    });
    const font = Buffer.concat([directory, ...body]);
    // head.checkSumAdjustment makes the whole file sum to 0xB1B0AFBA (OpenType head table).
    const headAt = directory.readUInt32BE(12 + 16 * kept.findIndex((t) => t.tag === 'head') + 8);
    font.writeUInt32BE((0xb1b0afba - checksum(font)) >>> 0, headAt + 8);
    return font;
  } catch {
    // A layout this code does not follow: embedded with its hinting, as fontkit made it.
    return ttf;
  }
}
