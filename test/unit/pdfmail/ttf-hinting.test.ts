/**
 * TrueType hinting taken out of the static font subset (pdfmail/ttf-hinting.ts): the hinting
 * tables and glyph programs go, every glyph's outline and metrics stay as they were (read back
 * by fontkit, glyph by glyph), and what the code does not understand is returned as it came.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fontkit from '@pdf-lib/fontkit';
import { describe, expect, it } from 'vitest';
import { stripTrueTypeHinting } from '../../../src/pdfmail/ttf-hinting.js';

const DEJAVU = createRequire(import.meta.url).resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');

async function subsetOf(chars: string): Promise<{ ttf: Buffer; ids: number[] }> {
  const font = fontkit.create(readFileSync(DEJAVU));
  const subset = font.createSubset() as unknown as { includeGlyph(id: number): number; encodeStream(): NodeJS.EventEmitter };
  // 'Ä' and 'é' are composites in DejaVu (a base glyph and an accent).
  const ids = [...chars].map((c) => subset.includeGlyph(font.glyphForCodePoint(c.codePointAt(0)!).id));
  const parts: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const s = subset.encodeStream();
    s.on('data', (c: Buffer) => parts.push(c));
    s.on('end', () => resolve());
  });
  return { ttf: Buffer.concat(parts), ids };
}

const tags = (ttf: Buffer) => Array.from({ length: ttf.readUInt16BE(4) }, (_, i) => ttf.toString('latin1', 12 + 16 * i, 16 + 16 * i));

describe('TrueType hinting removed from a subset', () => {
  it('drops fpgm, prep, cvt and the glyph programs, keeping every outline and advance', async () => {
    const { ttf, ids } = await subsetOf('AbgÄé€—1?');
    const out = stripTrueTypeHinting(ttf);
    expect(tags(ttf)).toEqual(expect.arrayContaining(['fpgm', 'prep', 'cvt ']));
    expect(tags(out)).not.toEqual(expect.arrayContaining(['fpgm']));
    expect(tags(out).filter((t) => ['fpgm', 'prep', 'cvt '].includes(t))).toEqual([]);
    expect(out.length).toBeLessThan(ttf.length * 0.7);
    const before = fontkit.create(ttf);
    const after = fontkit.create(out);
    for (const id of [0, ...ids]) {
      const a = before.getGlyph(id);
      const b = after.getGlyph(id);
      expect(b.path.toSVG(), `glyph ${id}`).toBe(a.path.toSVG());
      expect(b.advanceWidth).toBe(a.advanceWidth);
    }
    // The file's checksum adjustment holds (OpenType: the whole font sums to 0xB1B0AFBA).
    let sum = 0;
    for (let i = 0; i < out.length; i += 4) sum = (sum + out.readUInt32BE(i)) >>> 0;
    expect(sum).toBe(0xb1b0afba);
  });

  it('returns what it does not understand as it came', () => {
    const cff = Buffer.concat([Buffer.from('OTTO'), Buffer.alloc(60)]);
    expect(stripTrueTypeHinting(cff)).toBe(cff);
    const truncated = Buffer.from('0001000000050000000000006865616400000000000000ff00000010', 'hex');
    expect(stripTrueTypeHinting(truncated)).toBe(truncated);
  });
});
