/**
 * RFC 9788's legacy display element (2.3): for readers that decrypt but know nothing of header
 * protection (Outlook, Thunderbird's S/MIME), the header fields an encrypted message hides outside
 * ("Subject: …") are written at the top of its main body parts, each marked
 * `hp-legacy-display="1"`: text/plain gets the lines and an empty line, text/html a
 * `div.header-protection-legacy-display`. Readers that know RFC 9788 hide it again.
 *
 * Input: the sender's own body entity, before it is signed or encrypted. A part that cannot be
 * rewritten without changing its meaning (an unknown charset, bytes that are not that charset, an
 * unclosed multipart) is left as it is: the element is a courtesy, never a reason to lose text.
 */
import { parameter } from './compose.js';
import { decodeBody, encodeBase64Lines, encodeQuotedPrintable, headerFieldsRaw, multipartLayout, readEntity, type Entity } from './entity.js';
import { splitHeader } from './header-fields.js';

const MAX_DEPTH = 8;
export const LEGACY_DISPLAY_CLASS = 'header-protection-legacy-display';

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function isAttachment(e: Entity): boolean {
  return /^\s*attachment\b/i.test(e.headers.get('content-disposition')?.[0] ?? '');
}

/** One text leaf with the element in front of its text, re-encoded as UTF-8; null when it cannot be. */
function leaf(entity: Buffer, e: Entity, lines: readonly string[]): Buffer | null {
  const html = e.type.type === 'text/html';
  if ((!html && e.type.type !== 'text/plain') || isAttachment(e) || e.type.params.has('hp-legacy-display')) return null;
  if (!['7bit', '8bit', 'binary', 'quoted-printable', 'base64'].includes(e.encoding)) return null;
  let text: string;
  try {
    const charset = (e.type.params.get('charset') ?? 'us-ascii').trim().toLowerCase();
    text = new TextDecoder(charset === 'us-ascii' ? 'utf-8' : charset, { fatal: true }).decode(decodeBody(e));
  } catch {
    return null;
  }
  let out: string;
  if (html) {
    const element = `<div class="${LEGACY_DISPLAY_CLASS}"><pre>${escapeHtml(lines.join('\n'))}</pre></div>\r\n`;
    const body = /<body\b[^>]*>/i.exec(text);
    out = body ? text.slice(0, body.index + body[0].length) + '\r\n' + element + text.slice(body.index + body[0].length) : element + text;
  } else {
    out = `${lines.join('\r\n')}\r\n\r\n${text}`;
  }
  const bytes = Buffer.from(out, 'utf8');
  const base64 = e.encoding === 'base64';
  const params = [...e.type.params].filter(([k]) => k !== 'charset' && k !== 'hp-legacy-display').flatMap(([k, v]) => parameter(k, v));
  const ct = [e.type.type, ...params, 'charset="utf-8"', 'hp-legacy-display="1"'].join(';\r\n\t');
  const { header } = splitHeader(entity);
  const kept = headerFieldsRaw(header).filter((f) => f.name !== 'content-type' && f.name !== 'content-transfer-encoding');
  return Buffer.concat([
    Buffer.from(`Content-Type: ${ct}\r\nContent-Transfer-Encoding: ${base64 ? 'base64' : 'quoted-printable'}\r\n${kept.map((f) => `${f.raw}\r\n`).join('')}\r\n`, 'latin1'),
    Buffer.from(base64 ? encodeBase64Lines(bytes) : encodeQuotedPrintable(bytes), 'latin1'),
  ]);
}

/** The multipart with some of its parts replaced; the boundary, preamble and epilogue kept. */
function rebuilt(header: Buffer, boundary: string, layout: ReturnType<typeof multipartLayout>, parts: Buffer[]): Buffer | null {
  const d = `--${boundary}`;
  if (parts.some((p) => p.includes(d))) return null;
  const pieces: Buffer[] = [header, Buffer.from('\r\n')];
  if (layout.preamble.length) pieces.push(layout.preamble, Buffer.from('\r\n'));
  parts.forEach((p, i) => pieces.push(Buffer.from(`${i ? '\r\n' : ''}${d}\r\n`), p));
  pieces.push(Buffer.from(`\r\n${d}--\r\n`), layout.epilogue);
  return Buffer.concat(pieces);
}

/**
 * The entity with the element in its main body parts (RFC 9787 7.1: the first part of each
 * multipart, every part of a multipart/alternative), or null when no part could take it.
 */
export function withLegacyDisplay(entity: Buffer, lines: readonly string[], depth = 0): Buffer | null {
  if (!lines.length || depth > MAX_DEPTH) return null;
  const e = readEntity(entity);
  const boundary = e.type.params.get('boundary');
  if (!e.type.type.startsWith('multipart/')) return leaf(entity, e, lines);
  if (!boundary || e.type.type === 'multipart/signed' || e.type.type === 'multipart/encrypted') return null;
  const layout = multipartLayout(e.body, boundary);
  if (!layout.closed || !layout.parts.length) return null;
  const targets = e.type.type === 'multipart/alternative' ? layout.parts.map((_, i) => i) : [0];
  const parts = [...layout.parts];
  let changed = false;
  for (const i of targets) {
    const next = withLegacyDisplay(parts[i]!, lines, depth + 1);
    if (next) {
      parts[i] = next;
      changed = true;
    }
  }
  return changed ? rebuilt(splitHeader(entity).header, boundary, layout, parts) : null;
}
