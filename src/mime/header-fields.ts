/**
 * Header fields and parameters as MIME defines them: the header block, unfolded fields (RFC 5322,
 * raw UTF-8 kept per RFC 6532), encoded-words (RFC 2047) and parameters with continuations and
 * charsets (RFC 2045, RFC 2231). Linear in the input, whatever it holds.
 */
import { isUtf8 } from 'node:buffer';

/**
 * The header block (its last line ending included) and where the body starts: after the first empty
 * line, CRLF or LF (also a mix, "\n\r\n"); a message starting with an empty line has no header.
 */
export function splitHeader(message: Buffer): { header: Buffer; bodyOffset: number } {
  if (message[0] === 0x0a) return { header: message.subarray(0, 0), bodyOffset: 1 };
  if (message[0] === 0x0d && message[1] === 0x0a) return { header: message.subarray(0, 0), bodyOffset: 2 };
  for (let nl = message.indexOf(0x0a); nl >= 0; nl = message.indexOf(0x0a, nl + 1)) {
    if (message[nl + 1] === 0x0a) return { header: message.subarray(0, nl + 1), bodyOffset: nl + 2 };
    if (message[nl + 1] === 0x0d && message[nl + 2] === 0x0a) return { header: message.subarray(0, nl + 1), bodyOffset: nl + 3 };
  }
  return { header: message, bodyOffset: message.length };
}

/** A header line as text: UTF-8 where it is valid (RFC 6532), Latin-1 (byte for byte) otherwise. */
function lineText(line: Buffer): string {
  return isUtf8(line) ? line.toString('utf8') : line.toString('latin1');
}

/**
 * Unfolded header fields (RFC 5322 2.2.3: the line breaks go, the white space stays), names
 * lower-cased, values trimmed and otherwise raw, every occurrence in order. Lines that are not
 * fields (an mbox "From " line, garbage) are skipped with their continuations.
 */
export function parseHeaders(header: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let name: string | null = null;
  let value = '';
  const flush = () => {
    if (name === null) return;
    const list = out.get(name);
    if (list) list.push(value.trim());
    else out.set(name, [value.trim()]);
  };
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(0x0a, start);
    if (end < 0) end = header.length;
    const line = lineText(header.subarray(start, end > start && header[end - 1] === 0x0d ? end - 1 : end));
    start = end + 1;
    if ((line.startsWith(' ') || line.startsWith('\t')) && name !== null) {
      value += line;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    const field = colon > 0 ? line.slice(0, colon).trim() : '';
    name = field && /^[!-9;-~]+$/.test(field) ? field.toLowerCase() : null;
    value = name === null ? '' : line.slice(colon + 1);
  }
  flush();
  return out;
}

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.trim().toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    // An unknown charset: Latin-1 keeps every byte visible rather than dropping the text.
    return bytes.toString('latin1');
  }
}

/** Text with hex escapes ("=E2" or "%E2") as bytes; the rest as its UTF-8 (ASCII when well formed). */
export function unescapeBytes(text: string, escape: RegExp): Buffer {
  const chunks: Buffer[] = [];
  let last = 0;
  for (const m of text.matchAll(escape)) {
    chunks.push(Buffer.from(text.slice(last, m.index), 'utf8'), Buffer.from([parseInt(m[1]!, 16)]));
    last = m.index + m[0].length;
  }
  chunks.push(Buffer.from(text.slice(last), 'utf8'));
  return Buffer.concat(chunks);
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * RFC 2047 encoded-words ("=?utf-8?Q?caf=C3=A9?="). White space between adjacent words goes, and
 * adjacent words in the same charset are decoded together, because encoders do split a multi-byte
 * character across two words.
 */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = () => {
    if (pending) out += decodeBytes(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  for (const m of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, m.index);
    if (!(pending && /^[ \t\r\n]*$/.test(between))) {
      flush();
      out += between;
    }
    // RFC 2231 5: "charset*language".
    const charset = m[1]!.replace(/\*.*$/, '').toLowerCase();
    const text = m[3]!;
    const bytes = m[2]!.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : unescapeBytes(text.replace(/_/g, ' '), /=([0-9A-Fa-f]{2})/g);
    const p = pending as { charset: string; bytes: Buffer[] } | null;
    if (p && p.charset === charset) p.bytes.push(bytes);
    else {
      flush();
      pending = { charset, bytes: [bytes] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + value.slice(last);
}

export interface ContentType {
  type: string;
  params: Map<string, string>;
}

/**
 * The first token and the "key=value" pairs after it, split at semicolons outside quoted strings;
 * a quoted value is unquoted (backslash escapes too) and keeps its inner white space.
 */
function splitParams(value: string): { first: string; pairs: [string, string][] } {
  const pairs: [string, string][] = [];
  let i = value.indexOf(';');
  const first = i < 0 ? value : value.slice(0, i);
  // The next "=" is remembered, so a run of pieces without one stays linear.
  let eq = -1;
  while (i >= 0 && i < value.length) {
    if (eq <= i) eq = value.indexOf('=', i + 1);
    if (eq < 0) break;
    const semi = value.indexOf(';', i + 1);
    if (semi >= 0 && semi < eq) {
      i = semi; // a piece without "=": skipped
      continue;
    }
    const key = value.slice(i + 1, eq).trim();
    let j = eq + 1;
    while (value[j] === ' ' || value[j] === '\t') j++;
    let val = '';
    const quoted = value[j] === '"';
    if (quoted) for (j++; j < value.length && value[j] !== '"'; j++) val += value[j] === '\\' && j + 1 < value.length ? value[++j] : value[j];
    const next = value.indexOf(';', j);
    if (!quoted) val = (next < 0 ? value.slice(j) : value.slice(j, next)).trim();
    pairs.push([key, val]);
    i = next;
  }
  return { first, pairs };
}

/**
 * "type/subtype; a=b; c*0*=utf-8''x; c*1=y" → the lower-cased first token and the parameters
 * (RFC 2045, RFC 2231 continuations and charsets). An extended "name*" wins over a plain "name"
 * (RFC 6266 4.3: senders give both, the plain one as an ASCII fallback).
 */
export function parseParams(value: string): ContentType {
  const { first, pairs } = splitParams(value);
  const type = first.trim().toLowerCase();
  const plain = new Map<string, string>();
  type Extended = { charset?: string; pieces: Map<number, { text: string; encoded: boolean }> };
  const extended = new Map<string, Extended>();
  for (const [key, rawVal] of pairs) {
    let val = rawVal;
    const m = /^([^*]+)(?:\*(\d{1,6}))?(\*)?$/.exec(key.toLowerCase());
    if (!m) continue;
    const name = m[1]!.trim();
    if (m[2] === undefined && m[3] === undefined) {
      if (!plain.has(name)) plain.set(name, val);
      continue;
    }
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const encoded = m[3] === '*';
    const entry: Extended = extended.get(name) ?? { pieces: new Map() };
    if (encoded && index === 0) {
      const q = /^([^']*)'[^']*'([^]*)$/.exec(val);
      if (q) {
        entry.charset = q[1] || 'us-ascii';
        val = q[2]!;
      }
    }
    if (!entry.pieces.has(index)) entry.pieces.set(index, { text: val, encoded });
    extended.set(name, entry);
  }
  const params = new Map<string, string>();
  for (const [name, v] of plain) params.set(name, decodeWords(v));
  for (const [name, e] of extended) {
    const ordered = [...e.pieces.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const bytes = Buffer.concat(ordered.map((p) => (p.encoded ? unescapeBytes(p.text, /%([0-9A-Fa-f]{2})/g) : Buffer.from(p.text, 'utf8'))));
    params.set(name, e.charset ? decodeBytes(bytes, e.charset) : decodeWords(bytes.toString('utf8')));
  }
  return { type, params };
}

/** Content-Type, with RFC 2045 5.2's default for a missing or unusable one. */
export function contentTypeOf(headers: Map<string, string[]>, fallback: string): ContentType {
  const ct = parseParams(headers.get('content-type')?.[0] ?? '');
  return /^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(ct.type) ? ct : { type: fallback, params: ct.params };
}

