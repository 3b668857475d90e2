/**
 * The facts the policy engine needs about a message, read without decoding bodies: headers,
 * attachments (names and types), priority, sensitivity, and whether it is already encrypted or
 * signed (S/MIME or OpenPGP). The input is hostile: nesting and part counts are bounded, the walk
 * is iterative, and malformed MIME gives best-effort facts, never an exception.
 */
import type { CryptoKind, MessageFacts, Priority, Sensitivity } from '../policy/types.js';

const MAX_DEPTH = 50;
const MAX_PARTS = 1000;

/** The header block and where the body starts (after the first empty line). */
export function splitHeader(message: Buffer): { header: Buffer; bodyOffset: number } {
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { header: message.subarray(0, crlf + 2), bodyOffset: crlf + 4 };
  if (lf >= 0) return { header: message.subarray(0, lf + 1), bodyOffset: lf + 2 };
  return { header: message, bodyOffset: message.length };
}

/** Unfolded header fields, names lower-cased, every occurrence in order. */
export function parseHeaders(header: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = header.toString('latin1').split(/\r?\n/);
  let current: [string, string] | null = null;
  const flush = () => {
    if (!current) return;
    const [name, value] = current;
    out.set(name, [...(out.get(name) ?? []), value.trim()]);
  };
  for (const line of lines) {
    if (/^[ \t]/.test(line) && current) {
      current[1] += ` ${line.trim()}`;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    current = colon > 0 && /^[!-9;-~]+$/.test(line.slice(0, colon).trim()) ? [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1)] : null;
  }
  flush();
  return out;
}

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset.toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/** RFC 2047 encoded-words ("=?utf-8?Q?caf=C3=A9?="), adjacent ones joined without the space. */
export function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=/g, (_m, charset: string, enc: string, text: string) => {
      const bytes =
        enc.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      return decodeBytes(bytes, charset);
    });
}

interface ContentType {
  type: string;
  params: Map<string, string>;
}

/** "type/subtype; a=b; c*0*=utf-8''x; c*1=y" → type and parameters (RFC 2045, RFC 2231). */
export function parseParams(value: string): ContentType {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '"') quoted = !quoted;
    if (ch === '\\' && quoted && i + 1 < value.length) {
      cur += value[++i];
      continue;
    }
    if (ch === ';' && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  const type = (parts.shift() ?? '').trim().toLowerCase();
  const raw = new Map<string, { charset?: string; pieces: Map<number, { text: string; encoded: boolean }> }>();
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    let val = p.slice(eq + 1).trim();
    if (val.startsWith('"') && val.endsWith('"') && val.length >= 2) val = val.slice(1, -1);
    const m = /^([^*]+)(?:\*(\d+))?(\*)?$/.exec(key);
    if (!m) continue;
    const name = m[1]!;
    const index = m[2] ? Number(m[2]) : 0;
    const encoded = m[3] === '*';
    const entry: { charset?: string; pieces: Map<number, { text: string; encoded: boolean }> } = raw.get(name) ?? { pieces: new Map() };
    if (encoded && index === 0) {
      const q = /^([^']*)'[^']*'(.*)$/.exec(val);
      if (q) {
        entry.charset = q[1] || 'us-ascii';
        val = q[2]!;
      }
    }
    if (!entry.pieces.has(index)) entry.pieces.set(index, { text: val, encoded });
    raw.set(name, entry);
  }
  const params = new Map<string, string>();
  for (const [name, e] of raw) {
    const ordered = [...e.pieces.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p);
    const bytes = Buffer.concat(ordered.map((p) => (p.encoded ? Buffer.from(p.text.replace(/%([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1') : Buffer.from(p.text, 'latin1'))));
    params.set(name, e.charset ? decodeBytes(bytes, e.charset) : decodeWords(bytes.toString('latin1')));
  }
  return { type, params };
}

function priorityOf(h: Map<string, string[]>): Priority {
  const xp = /^\s*(\d)/.exec(h.get('x-priority')?.[0] ?? '');
  if (xp) return Number(xp[1]) <= 2 ? 'high' : Number(xp[1]) >= 4 ? 'low' : 'normal';
  const word = (h.get('importance')?.[0] ?? h.get('priority')?.[0] ?? h.get('x-msmail-priority')?.[0] ?? '').trim().toLowerCase();
  if (word === 'high' || word === 'urgent') return 'high';
  if (word === 'low' || word === 'non-urgent') return 'low';
  return 'normal';
}

function sensitivityOf(h: Map<string, string[]>): Sensitivity {
  const s = (h.get('sensitivity')?.[0] ?? '').trim().toLowerCase();
  if (s === 'personal') return 'personal';
  if (s === 'private') return 'private';
  if (s === 'company-confidential' || s === 'confidential') return 'confidential';
  return 'normal';
}

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);

interface Part {
  headers: Map<string, string[]>;
  body: Buffer;
  depth: number;
  /** Crypto structure, not content: the signature of a multipart/signed, the parts of a multipart/encrypted. */
  structural: boolean;
}

/** The body parts of a multipart body (without preamble and epilogue). */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let start = -1;
  let at = 0;
  while (at <= body.length && parts.length < MAX_PARTS) {
    const i = body.indexOf(delim, at);
    if (i < 0) break;
    // A delimiter only counts at the start of a line.
    if (i > 0 && body[i - 1] !== 0x0a) {
      at = i + delim.length;
      continue;
    }
    if (start >= 0) parts.push(body.subarray(start, Math.max(start, i - (body[i - 2] === 0x0d ? 2 : 1))));
    const closing = body[i + delim.length] === 0x2d && body[i + delim.length + 1] === 0x2d;
    if (closing) return parts;
    const eol = body.indexOf(0x0a, i + delim.length);
    if (eol < 0) break;
    start = eol + 1;
    at = start;
  }
  if (start >= 0 && start < body.length) parts.push(body.subarray(start));
  return parts;
}

function parsePart(raw: Buffer, depth: number, structural: boolean): Part {
  const { header, bodyOffset } = splitHeader(raw);
  return { headers: parseHeaders(header), body: raw.subarray(bodyOffset), depth, structural };
}

function cryptoState(ct: ContentType, body: Buffer): { encrypted: CryptoKind | null; signed: CryptoKind | null } {
  const protocol = (ct.params.get('protocol') ?? '').toLowerCase();
  if (ct.type === 'multipart/encrypted' && protocol === 'application/pgp-encrypted') return { encrypted: 'pgp', signed: null };
  if (ct.type === 'multipart/signed') {
    if (protocol === 'application/pkcs7-signature' || protocol === 'application/x-pkcs7-signature') return { encrypted: null, signed: 'smime' };
    if (protocol === 'application/pgp-signature') return { encrypted: null, signed: 'pgp' };
  }
  if (ct.type === 'application/pkcs7-mime' || ct.type === 'application/x-pkcs7-mime') {
    const st = (ct.params.get('smime-type') ?? '').toLowerCase();
    if (st === 'signed-data') return { encrypted: null, signed: 'smime' };
    if (st === 'enveloped-data' || st === 'authenveloped-data' || (!st && /\.p7m$/i.test(ct.params.get('name') ?? ''))) return { encrypted: 'smime', signed: null };
    if (!st) return { encrypted: 'smime', signed: null };
  }
  if (ct.type === 'text/plain' || ct.type === '') {
    const head = body.subarray(0, 64 * 1024).toString('latin1');
    if (/^-----BEGIN PGP MESSAGE-----/m.test(head)) return { encrypted: 'pgp', signed: null };
    if (/^-----BEGIN PGP SIGNED MESSAGE-----/m.test(head)) return { encrypted: null, signed: 'pgp' };
  }
  return { encrypted: null, signed: null };
}

export function messageFacts(message: Buffer): MessageFacts {
  const top = parsePart(message, 0, false);
  const headers = top.headers;
  const topType = parseParams(headers.get('content-type')?.[0] ?? 'text/plain');
  const { encrypted, signed } = cryptoState(topType, top.body);
  const attachments: { name: string; type: string }[] = [];
  const stack: Part[] = [top];
  let seen = 0;
  while (stack.length && seen < MAX_PARTS) {
    const part = stack.shift()!;
    seen++;
    const ct = parseParams(part.headers.get('content-type')?.[0] ?? 'text/plain');
    const boundary = ct.params.get('boundary');
    if (ct.type.startsWith('multipart/') && boundary && part.depth < MAX_DEPTH) {
      const signedParts = ct.type === 'multipart/signed';
      const encryptedParts = ct.type === 'multipart/encrypted';
      splitMultipart(part.body, boundary).forEach((raw, i) => stack.push(parsePart(raw, part.depth + 1, encryptedParts || (signedParts && i === 1))));
      continue;
    }
    if (part === top || part.structural || SIGNATURE_TYPES.has(ct.type)) continue;
    const disp = parseParams(part.headers.get('content-disposition')?.[0] ?? '');
    const name = disp.params.get('filename') ?? ct.params.get('name') ?? '';
    if (disp.type === 'attachment' || name || ct.type === 'message/rfc822') attachments.push({ name, type: ct.type || 'text/plain' });
  }
  const subject = decodeWords(headers.get('subject')?.[0] ?? '');
  return { size: message.length, headers, subject, attachments, priority: priorityOf(headers), sensitivity: sensitivityOf(headers), encrypted, signed };
}

/**
 * Subject-line commands: the configured tokens found in the subject (case-insensitive, anywhere,
 * even inside a word — users type "{encrypt}Offer"), and the subject without them, spaces tidied.
 */
export function subjectCommands(subject: string, tokens: readonly string[]): { found: string[]; subject: string } {
  const found: string[] = [];
  let rest = subject;
  for (const token of tokens) {
    const re = new RegExp(token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
    if (re.test(rest)) {
      found.push(token);
      rest = rest.replace(re, ' ');
    }
  }
  return { found, subject: found.length ? rest.replace(/\s{2,}/g, ' ').trim() : subject };
}
