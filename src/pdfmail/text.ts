/**
 * Text from a mail made fit to draw: control characters and bidi overrides out (an override would
 * let a sender reorder what the reader sees, as in "gpj.exe"), tabs expanded, and lines wrapped to
 * a width with the widths the font itself gives, long words broken where they must be.
 *
 * Untrusted input: every string here comes from the message. All functions are linear in it.
 */

/** Shown where the mail had a character that cannot be drawn (a control character, a broken surrogate). */
export const REPLACEMENT = '\uFFFD';

/** Explicit bidi embeddings, overrides and isolates, and the invisible marks: dropped, never drawn. */
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
/** C0 controls but tab and line ends, DEL, C1 controls, lone surrogates, non-characters. */
const CONTROL = /[\x00-\x08\x0B\x0E-\x1F\x7F-\x9F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const TAB_STOP = 8;

/** One line of text from a field (a header value, a file name): line ends become spaces. */
export function oneLine(text: string): string {
  return drawable(text).replace(/[\r\n\t\f]+/g, ' ');
}

/** Bidi controls and the byte-order mark dropped, other controls replaced; line ends kept. */
export function drawable(text: string): string {
  return text.replace(BIDI, '').replace(/\uFEFF/g, '').replace(/\f/g, '\n').replace(CONTROL, REPLACEMENT);
}

/** The lines of a text (CRLF, LF or CR), tabs expanded to stops every eight characters. */
export function textLines(text: string): string[] {
  return drawable(text)
    .split(/\r\n|\r|\n/)
    .map((line) => {
      if (!line.includes('\t')) return line;
      let out = '';
      let col = 0;
      for (const ch of line) {
        if (ch === '\t') {
          const n = TAB_STOP - (col % TAB_STOP);
          out += ' '.repeat(n);
          col += n;
        } else {
          out += ch;
          col++;
        }
      }
      return out;
    });
}

/** Width of a string at a size, in points. */
export type Measure = (text: string) => number;

/**
 * One line broken into lines no wider than `width`: at spaces where it can, inside a word where a
 * word is wider than the line (a URL, a base64 blob, CJK text without spaces). Leading spaces
 * (indentation, quoted text) are kept; the space a line is broken at is not carried over.
 */
export function wrapLine(line: string, width: number, measure: Measure): string[] {
  if (line === '' || measure(line) <= width) return [line];
  const out: string[] = [];
  const tokens = line.match(/ +|[^ ]+/g) ?? [];
  let current = '';
  let currentWidth = 0;
  for (const token of tokens) {
    const w = measure(token);
    if (currentWidth + w <= width) {
      current += token;
      currentWidth += w;
      continue;
    }
    if (token.startsWith(' ')) {
      // The break goes here; the spaces vanish with it.
      out.push(current);
      current = '';
      currentWidth = 0;
      continue;
    }
    if (current !== '' && w <= width) {
      out.push(current.trimEnd());
      current = token;
      currentWidth = w;
      continue;
    }
    // A word wider than what is left: fill the line with it character by character.
    for (const ch of token) {
      const cw = measure(ch);
      if (currentWidth + cw > width && current !== '') {
        out.push(current);
        current = '';
        currentWidth = 0;
      }
      current += ch;
      currentWidth += cw;
    }
  }
  if (current !== '' || out.length === 0) out.push(current);
  return out;
}

/**
 * RFC 3676 format=flowed: soft line breaks (a line ending in a space) joined, space-stuffing
 * undone, DelSp=yes honoured; quoted lines keep their ">" prefix and join only with lines of the
 * same depth.
 */
export function unflow(text: string, delSp: boolean): string {
  const out: string[] = [];
  let open: { depth: number; text: string } | null = null;
  for (const raw of text.split(/\r\n|\n/)) {
    const m = /^>*/.exec(raw)!;
    const depth = m[0].length;
    let body = raw.slice(depth);
    if (body.startsWith(' ')) body = body.slice(1);
    // "-- " is the signature separator: never a soft break.
    const soft = body.endsWith(' ') && body !== '-- ';
    if (soft && delSp) body = body.slice(0, -1);
    if (open && open.depth === depth) open.text += body;
    else {
      if (open) out.push(prefixed(open));
      open = { depth, text: body };
    }
    if (!soft) {
      out.push(prefixed(open));
      open = null;
    }
  }
  if (open) out.push(prefixed(open));
  return out.join('\n');
}

const prefixed = (l: { depth: number; text: string }) => (l.depth ? `${'>'.repeat(l.depth)} ${l.text}` : l.text);
