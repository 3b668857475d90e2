/**
 * Writing untrusted strings into header fields and text lines safely: one line each (no CR/LF,
 * so nothing can start a header of its own), folded so no line passes 998 octets, and ASCII-only
 * unless the notice is SMTPUTF8. Also the checks on the returned original's bytes.
 */

import { rfc5322Date } from '../core/index.js';

export { rfc5322Date };

/** Folding target for header fields and text lines (RFC 5322 2.1.1 "SHOULD" limit). */
const SOFT = 78;
/** Longest unbreakable piece; longer words are cut (adding a space where cut) to stay under 998. */
const HARD = 900;
/** A remote reply of more than this is cut: it is a diagnostic, not a document. */
export const MAX_VALUE = 2000;


export function validDate(d: Date | undefined): d is Date {
  return d instanceof Date && !Number.isNaN(d.getTime());
}

export function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

export function hasEightBit(b: Buffer): boolean {
  for (const x of b) if (x >= 0x80) return true;
  return false;
}

/**
 * One line of printable text: line breaks and tabs become spaces, runs of spaces collapse (so
 * folding never leaves a blank continuation line), other control characters become "?" (as
 * Postfix's printable() does), and non-ASCII becomes "?" unless `utf8`. Cut at MAX_VALUE.
 */
export function oneLine(s: string, utf8: boolean): string {
  let out = s
    .replace(/[\r\n\t\v\f]+/g, ' ')
    .replace(/[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029\ufeff]/g, '?')
    .replace(/ {2,}/g, ' ')
    .trim();
  if (!utf8) out = out.replace(/[^\x20-\x7e]/gu, '?');
  else out = out.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '?'); // lone surrogates
  if (out.length > MAX_VALUE) out = out.slice(0, MAX_VALUE).replace(/[\ud800-\udbff]$/, '') + '...';
  return out;
}

/** A host name for "dns;" fields, From: and Message-ID: DNS name or address-literal characters only. */
export function hostToken(s: string): string {
  const t = s.trim().replace(/[^A-Za-z0-9.\-_:[\]]/g, '-');
  return t || 'localhost';
}

function octets(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Cuts a word into pieces of at most HARD octets, on code point boundaries. */
function pieces(word: string): string[] {
  if (octets(word) <= HARD) return [word];
  const out: string[] = [];
  let cur = '';
  for (const ch of word) {
    if (octets(cur) + octets(ch) > HARD) {
      out.push(cur);
      cur = '';
    }
    cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Greedy word wrap: `first` starts the first line, later lines start with `indent`. Breaks only
 * at spaces, except inside words longer than HARD octets. Lines returned without CRLF.
 */
export function wrap(first: string, text: string, indent: string, width = SOFT): string[] {
  const lines: string[] = [];
  let cur = first;
  let empty = true; // nothing after `first` yet: the first word always goes on the current line
  for (const word of text.split(' ')) {
    if (!word) continue;
    for (const p of pieces(word)) {
      if (empty || octets(cur) + 1 + octets(p) <= width) {
        cur += empty && first === '' ? p : ' ' + p;
      } else {
        lines.push(cur);
        cur = indent + p;
      }
      empty = false;
    }
  }
  lines.push(cur);
  return lines;
}

/**
 * "Name: value\r\n", folded at spaces. Unfolding (RFC 5322 2.2.3) gives back the value, apart
 * from a space inserted where an over-long word had to be cut. `value` must come from oneLine()
 * or be ours.
 */
export function field(name: string, value: string): string {
  return wrap(`${name}:`, value, ' ').join('\r\n') + '\r\n';
}

/**
 * Can these bytes go into the notice unchanged? CRLF line ends only, no NUL, no line over 998
 * octets. The spool should only hold such messages (smtpd refuses bare CR/LF and NUL), but a
 * notice must not become unsendable if one slips through.
 */
export function smtpSafe(b: Buffer): boolean {
  let len = 0;
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (x === 0) return false;
    if (x === 0x0d) {
      if (b[i + 1] !== 0x0a) return false;
      i++;
      len = 0;
    } else if (x === 0x0a) {
      return false;
    } else if (++len > 998) {
      return false;
    }
  }
  return true;
}

/**
 * Quoted-printable (RFC 2045 6.7) with CRLF kept as hard line breaks. Only for the header block
 * of a message whose lines are not SMTP-safe: text/rfc822-headers may be encoded, message/rfc822
 * may not (RFC 2046 5.2.1), so a full return is never encoded — it falls back to headers only.
 */
export function quotedPrintable(b: Buffer): string {
  const lines: string[] = [];
  let line = '';
  const put = (tok: string) => {
    if (line.length + tok.length > 75) {
      lines.push(line + '=');
      line = '';
    }
    line += tok;
  };
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (x === 0x0d && b[i + 1] === 0x0a) {
      lines.push(line);
      line = '';
      i++;
      continue;
    }
    const next = b[i + 1];
    const trailingSpace = (x === 0x20 || x === 0x09) && (next === undefined || next === 0x0d);
    const literal = ((x >= 0x21 && x <= 0x7e && x !== 0x3d) || x === 0x20 || x === 0x09) && !trailingSpace;
    put(literal ? String.fromCharCode(x) : '=' + x.toString(16).toUpperCase().padStart(2, '0'));
  }
  lines.push(line); // "" after a final CRLF, so the decoded block keeps its last line end
  return lines.join('\r\n');
}
