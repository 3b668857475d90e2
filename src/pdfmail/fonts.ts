/**
 * The fonts a mail PDF is drawn with, in fallback order: a character is drawn with the first font
 * that has it (DejaVu Sans for Latin, Greek and Cyrillic — from npm — then Droid Sans Fallback for Chinese and
 * Japanese, then Nanum Gothic for Korean), so mail
 * in any of those scripts comes out of a PDF reader's text extraction as it was sent.
 *
 * A font file is read and parsed once per process: parsing DejaVu or the 4 MB Droid Sans Fallback
 * for every message would cost more than the rest of the rendering. pdf-lib parses the bytes it is
 * given again on each embedFont(); `fontkitFor` hands it the parsed font instead (fontkit fonts are
 * read-only, a subset is made per document).
 *
 * Untrusted input: none (the font files are the machine's). Secrets: none.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import fontkit from '@pdf-lib/fontkit';
import type { Font, Fontkit } from 'pdf-lib/cjs/types/fontkit.js';

/** One font file, parsed, with the advance widths looked up so far. */
export interface FontFace {
  /** The file's base name, for logs ("DejaVuSans.ttf"). */
  name: string;
  bytes: Uint8Array;
  font: Font;
  /** Code point → advance width in 1/1000 em (-1 when the font lacks it); filled as text is measured. */
  widths: Map<number, number>;
}

/** One typeface in its styles: the bold face falls back to the regular one when the family has none. */
export interface FontFamily {
  regular: FontFace;
  bold: FontFace;
}

export interface FontSet {
  /** In fallback order. Empty when no font file was found: pdf-lib's Helvetica (WinAnsi) is used. */
  families: readonly FontFamily[];
  /** What an admin should know once (a font file missing), or empty. Names files, never content. */
  warnings: readonly string[];
}

/** DejaVu Sans as the npm package dejavu-fonts-ttf brings it (so `npm ci` alone gives Latin, Greek and Cyrillic), else the system's. */
function dejaVuSans(): string {
  try {
    return createRequire(import.meta.url).resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
  } catch {
    return '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
  }
}

/**
 * CJK fonts are the system's (Debian fonts-droid-fallback, fonts-nanum): the npm packages that carry
 * them bring every weight, 60–150 MB for one script. Without them CJK characters are drawn as a
 * visible replacement and the admin is told once.
 */
export const DEFAULT_FONT_PATHS: readonly string[] = [
  dejaVuSans(),
  '/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf',
  // Droid Sans Fallback has Chinese and Japanese but no Hangul: Korean needs a font of its own.
  '/usr/share/fonts/truetype/nanum/NanumGothic.ttf',
];

const parsed = new Map<string, FontFace>();
const sets = new Map<string, FontSet>();
const byBytes = new WeakMap<Uint8Array, Font>();

function face(path: string): FontFace {
  const known = parsed.get(path);
  if (known) return known;
  const bytes = new Uint8Array(readFileSync(path));
  const font = fontkit.create(bytes);
  const f: FontFace = { name: basename(path), bytes, font, widths: new Map() };
  byBytes.set(bytes, font);
  parsed.set(path, f);
  return f;
}

/** "DejaVuSans.ttf" → "DejaVuSans-Bold.ttf" (or "NanumGothicBold.ttf") beside it, when there is one. */
function boldSibling(path: string): string | null {
  const ext = extname(path);
  for (const suffix of ['-Bold', 'Bold']) {
    const bold = join(dirname(path), `${basename(path, ext)}${suffix}${ext}`);
    if (existsSync(bold)) return bold;
  }
  return null;
}

/**
 * The fonts to embed, in fallback order; default: DejaVu Sans (+ Bold) for Latin/Greek/Cyrillic,
 * then Droid Sans Fallback for CJK and Nanum Gothic for Hangul, from the Debian paths; bytes read once per process. A bold face
 * is taken from "<name>-Bold.<ext>" beside a file. Files that are missing or unreadable are left
 * out and named in `warnings`. The same list gives the same FontSet for the life of the process.
 */
export function loadFonts(paths: readonly string[] = DEFAULT_FONT_PATHS): FontSet {
  // Callers may ask per message: the answer for the same list is the same object, without a look at the disk.
  const key = paths.join('\0');
  const known = sets.get(key);
  if (known) return known;
  const families: FontFamily[] = [];
  const warnings: string[] = [];
  for (const path of paths) {
    try {
      const regular = face(path);
      const boldPath = boldSibling(path);
      let bold = regular;
      try {
        if (boldPath) bold = face(boldPath);
      } catch {
        warnings.push(`PDF font ${basename(boldPath!)} is unreadable; bold text uses ${regular.name}`);
      }
      families.push({ regular, bold });
    } catch {
      warnings.push(`PDF font ${basename(path)} is missing or unreadable`);
    }
  }
  if (families.length === 0) warnings.push('no PDF font file found: mail PDFs use Helvetica and show characters outside Western European scripts as "?"');
  const set: FontSet = { families, warnings };
  sets.set(key, set);
  return set;
}

/**
 * Advance width of a code point in 1/1000 em; -1 when the face has no glyph for it. Remembered for
 * the life of the process, except a miss outside the BMP: a hostile mail could otherwise fill the
 * cache with a million code points no font has.
 */
export function advance(f: FontFace, cp: number): number {
  let w = f.widths.get(cp);
  if (w === undefined) {
    w = f.font.hasGlyphForCodePoint(cp) ? (f.font.glyphForCodePoint(cp).advanceWidth * 1000) / f.font.unitsPerEm : -1;
    if (w >= 0 || cp <= 0xffff) f.widths.set(cp, w);
  }
  return w;
}

/** The fontkit pdf-lib is given: fonts this module parsed are handed over, not parsed again. */
export const cachedFontkit: Fontkit = {
  create(buffer: Uint8Array, postscriptName?: string): Font {
    return byBytes.get(buffer) ?? fontkit.create(buffer, postscriptName);
  },
};
