/**
 * Editing the top-level header block of a message while leaving every other byte as it was (the
 * body may be signed). Fields are kept as written, folding included; removed fields vanish with
 * their continuation lines; added fields go on top, after the trace headers a receiving MTA put
 * there (Received:, Return-Path:), as RFC 5321 4.4 keeps trace fields first.
 */
import { splitHeader } from './header-fields.js';

export interface HeaderEdits {
  /** Field names to remove (case-insensitive), every occurrence. */
  remove?: readonly string[];
  /** Fields to add. */
  add?: readonly [name: string, value: string][];
  /** Fields to replace (first occurrence keeps its place; added when absent). */
  set?: readonly [name: string, value: string][];
  /** Fields Postern built itself, already folded (CRLF + white space only), ASCII: added as written. */
  addFolded?: readonly [name: string, value: string][];
}

const TRACE = new Set(['received', 'return-path']);

/** Encode a value that is not plain ASCII as RFC 2047 encoded-words (UTF-8, base64). */
export function encodeHeaderValue(value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(clean)) return clean;
  const words: string[] = [];
  let chunk = '';
  for (const ch of clean) {
    // 45 bytes of UTF-8 per word keeps each encoded-word under 75 characters.
    if (Buffer.byteLength(chunk + ch) > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join('\r\n ');
}

export function editHeaders(message: Buffer, edits: HeaderEdits): Buffer {
  const { header, bodyOffset } = splitHeader(message);
  const eol = header.includes('\r\n') ? '\r\n' : '\n';
  const lines = header.toString('latin1').split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  // Fields as groups of raw lines: the first line and its continuations.
  const fields: { name: string; lines: string[] }[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1]!.lines.push(line);
    else fields.push({ name: line.slice(0, Math.max(0, line.indexOf(':'))).trim().toLowerCase(), lines: [line] });
  }
  const remove = new Set((edits.remove ?? []).map((n) => n.toLowerCase()));
  let out = fields.filter((f) => !remove.has(f.name));
  const field = (name: string, value: string) => ({ name: name.toLowerCase(), lines: [`${name}: ${encodeHeaderValue(value)}`] });
  for (const [name, value] of edits.set ?? []) {
    const at = out.findIndex((f) => f.name === name.toLowerCase());
    if (at >= 0) out = [...out.slice(0, at), field(name, value), ...out.slice(at + 1).filter((f) => f.name !== name.toLowerCase())];
    else out.push(field(name, value));
  }
  const folded = (edits.addFolded ?? []).map(([n, v]) => {
    // Only folding may break the line: anything else would let a value inject a field.
    if (!/^[\x20-\x7e]*(?:\r\n[ \t][\x20-\x7e]*)*$/.test(v)) return field(n, v);
    return { name: n.toLowerCase(), lines: [`${n}: ${v}`] };
  });
  const added = [...(edits.add ?? []).map(([n, v]) => field(n, v)), ...folded];
  if (added.length) {
    let at = 0;
    while (at < out.length && TRACE.has(out[at]!.name)) at++;
    out = [...out.slice(0, at), ...added, ...out.slice(at)];
  }
  const text = out.flatMap((f) => f.lines.flatMap((l) => l.split('\r\n'))).join(eol) + eol;
  // The blank line and the body, byte for byte (a message without a body gets the blank line).
  const rest = header.length === message.length ? Buffer.from(eol) : message.subarray(header.length);
  return Buffer.concat([Buffer.from(text, 'latin1'), rest]);
}
