/**
 * A message read for the PDF: the header fields a letter shows (From, To, Cc, Date, Subject), the
 * text a reader reads (text/plain as it is, HTML as text with its links, the text parts of a
 * multipart/mixed in order, the plain part of a multipart/alternative), forwarded messages with
 * their own headers and text, and every other part as a file to embed.
 *
 * Untrusted input: the whole message (decrypted, so nothing vouches for it). Broken MIME, unknown
 * charsets and bad base64 give text with replacement characters, never an exception; only the
 * render limits (PdfRenderError) stop it.
 */
import { isUtf8 } from 'node:buffer';
import { LIMITS } from '../core/limits.js';
import { decodeBody, decodeWords, multipartLayout, parseParams, readEntity, type Entity } from '../mime/index.js';
import { emlName } from './file-names.js';
import { htmlToReadable } from './html-text.js';
import { attachmentTooBig, nestedTooDeep, tooManyAttachments, type RenderLimits } from './render-limits.js';
import { oneLine, unflow } from './text.js';

export interface HeaderLine {
  label: 'From' | 'To' | 'Cc' | 'Date' | 'Subject';
  value: string;
}

export type MailPart =
  | { kind: 'text'; text: string }
  | { kind: 'links'; links: string[] }
  | { kind: 'note'; text: string }
  | { kind: 'message'; section: MailSection };

export interface MailSection {
  headers: HeaderLine[];
  parts: MailPart[];
  /**
   * For a forwarded message: the file it is embedded as (the same object as in `files`, so the
   * name stays right when names are made distinct), or its name inside its parent's .eml.
   */
  attachedAs?: { name: string };
}

export interface MailFile {
  /** As the sender named it (decoded, not yet made safe: file-names.ts does that for all at once). */
  name: string;
  type: string;
  data: Buffer;
  created: Date;
  modified: Date;
}

export interface MailContent {
  main: MailSection;
  files: MailFile[];
}

const SHOWN: readonly HeaderLine['label'][] = ['From', 'To', 'Cc', 'Date', 'Subject'];
const ENCAPSULATED = new Set(['message/rfc822', 'message/global']);
const SIGNATURES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature', 'application/pgp-signature']);

/** Windows-1252's 0x80–0x9F (WHATWG; the five it leaves undefined stay C1 controls). */
const CP1252_HIGH = '\u20AC\x81\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\x8D\u017D\x8F\x90\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\x9D\u017E\u0178';

/**
 * Windows-1252, which WHATWG (and every mail program) reads for "iso-8859-1" and "us-ascii" too.
 * Node 20's TextDecoder decodes it as plain Latin-1, turning Outlook's “quotes” and – dashes into
 * control characters.
 */
function windows1252(bytes: Buffer): string {
  return c1AsWindows1252(bytes.toString('latin1'));
}

/** C1 controls read as the Windows-1252 characters they were (never meant as controls in mail). */
const c1AsWindows1252 = (text: string) => text.replace(/[\x80-\x9f]/g, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!);

/** Bytes in a charset; an unknown or missing one as UTF-8 when the bytes are, else Windows-1252. */
export function decodeText(bytes: Buffer, charset: string | undefined): string {
  const label = (charset ?? '').trim().toLowerCase();
  if (label === '' || label === 'us-ascii' || label === 'ascii') return isUtf8(bytes) ? bytes.toString('utf8') : windows1252(bytes);
  try {
    const decoder = new TextDecoder(label);
    return decoder.encoding === 'windows-1252' ? windows1252(bytes) : decoder.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

function dateOf(value: string | undefined): Date | null {
  if (!value) return null;
  const t = Date.parse(value.replace(/\([^()]*\)/g, ' ').trim());
  // A PDF date has four digits of year; anything outside them is a broken or hostile field.
  return Number.isFinite(t) && new Date(t).getUTCFullYear() >= 1900 && new Date(t).getUTCFullYear() <= 9999 ? new Date(t) : null;
}

function headerLines(headers: Map<string, string[]>): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (const label of SHOWN) {
    const values = headers.get(label.toLowerCase());
    if (!values?.length) continue;
    // Several To: or Cc: fields are one list; a second Subject or Date is shown too, not hidden.
    // decodeWords reads =?iso-8859-1?…?= with Node's TextDecoder, as Latin-1 (see windows1252()).
    const value = oneLine(c1AsWindows1252(values.map((v) => decodeWords(v)).join(label === 'To' || label === 'Cc' ? ', ' : ' / '))).trim();
    if (value) out.push({ label, value });
  }
  return out;
}

interface Walk {
  limits: RenderLimits;
  /** Shared by the whole walk: the files to embed, and forwarded messages counted for their names. */
  shared: { files: MailFile[]; forwarded: number; textChars: number };
  /** Files embedded (the message itself) or only named (inside a forwarded message, whose .eml holds them). */
  embed: boolean;
  /** Forwarded messages this one is inside. */
  level: number;
  messageDate: Date;
}

/** The text of a text/* entity, with its charset (for HTML also one declared in a meta tag). */
export function entityText(e: Entity): string {
  const bytes = decodeBody(e);
  let charset = e.type.params.get('charset');
  if (!charset && e.type.type === 'text/html') charset = /<meta[^>]{0,300}?charset\s*=\s*["']?\s*([\w.:-]{1,40})/i.exec(bytes.subarray(0, 2048).toString('latin1'))?.[1];
  return decodeText(bytes, charset);
}

function isInlineText(e: Entity, disposition: ReturnType<typeof parseParams>): boolean {
  if (e.type.type !== 'text/plain' && e.type.type !== 'text/html') return false;
  if (disposition.type === 'attachment') return false;
  const named = disposition.params.has('filename') || e.type.params.has('name');
  return disposition.type === 'inline' || !named;
}

function addFile(w: Walk, section: MailSection, e: Entity, disposition: ReturnType<typeof parseParams>, name: string): { name: string } {
  if (!w.embed) {
    section.parts.push({ kind: 'note', text: `Attached to this message: ${oneLine(name) || 'an unnamed file'} (inside its .eml file)` });
    return { name };
  }
  if (w.shared.files.length >= w.limits.maxAttachments) throw tooManyAttachments(w.limits.maxAttachments);
  // Base64 is 4/3 of what it holds: a body far past the limit is refused before it is decoded.
  const estimate = e.encoding === 'base64' ? Math.floor((e.body.length * 3) / 4 / 1.03) : e.encoding === 'quoted-printable' ? Math.floor(e.body.length / 3) : e.body.length;
  if (estimate > w.limits.maxAttachmentBytes) throw attachmentTooBig(estimate, w.limits.maxAttachmentBytes);
  const data = decodeBody(e);
  if (data.length > w.limits.maxAttachmentBytes) throw attachmentTooBig(data.length, w.limits.maxAttachmentBytes);
  const created = dateOf(disposition.params.get('creation-date')) ?? w.messageDate;
  const modified = dateOf(disposition.params.get('modification-date')) ?? created;
  const file: MailFile = { name, type: e.type.type, data, created, modified };
  w.shared.files.push(file);
  return file;
}

function walkEntity(raw: Buffer, w: Walk, section: MailSection, depth: number, fallback = 'text/plain'): void {
  if (depth > LIMITS.mimeDepth) throw nestedTooDeep(LIMITS.mimeDepth);
  const e = readEntity(raw, fallback);
  const disposition = parseParams(e.headers.get('content-disposition')?.[0] ?? '');
  const name = (disposition.params.get('filename') ?? e.type.params.get('name') ?? '').trim();
  const boundary = e.type.params.get('boundary');
  if (e.type.type.startsWith('multipart/') && boundary) {
    const parts = multipartLayout(e.body, boundary, LIMITS.mimeParts).parts;
    const childFallback = e.type.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    if (e.type.type === 'multipart/alternative') {
      const chosen = chooseAlternative(parts);
      if (chosen) walkEntity(chosen, w, section, depth + 1);
      return;
    }
    for (const [i, p] of parts.entries()) {
      // The signature of a multipart/signed was checked before the PDF; as a file it is only noise.
      if (e.type.type === 'multipart/signed' && i > 0 && SIGNATURES.has(readEntity(p).type.type)) continue;
      walkEntity(p, w, section, depth + 1, childFallback);
    }
    return;
  }
  if (ENCAPSULATED.has(e.type.type)) {
    forwarded(e, w, section, depth, name);
    return;
  }
  if (isInlineText(e, disposition)) {
    const raw = entityText(e);
    let text = raw;
    let links: string[] = [];
    if (e.type.type === 'text/html') ({ text, links } = htmlToReadable(raw));
    else if (e.type.params.get('format')?.toLowerCase() === 'flowed') text = unflow(raw, e.type.params.get('delsp')?.toLowerCase() === 'yes');
    const room = w.limits.maxTextChars - w.shared.textChars;
    if (text.length > room) {
      // Pages past this help nobody and cost a worker seconds; the whole text goes along as a file.
      const cut = text.lastIndexOf('\n', room);
      text = text.slice(0, cut > room * 0.9 ? cut : Math.max(0, room));
      section.parts.push({ kind: 'text', text });
      const file = addFile(w, section, e, disposition, name || (e.type.type === 'text/html' ? 'message-text.html' : 'message-text.txt'));
      section.parts.push({ kind: 'note', text: `The text is longer than ${w.limits.maxTextChars.toLocaleString('en')} characters and is cut here; all of it is in the attached file ${w.embed ? file.name : 'inside the .eml file'}.` });
    } else section.parts.push({ kind: 'text', text });
    w.shared.textChars += text.length;
    if (links.length) section.parts.push({ kind: 'links', links });
    return;
  }
  addFile(w, section, e, disposition, name);
}

/** The part of a multipart/alternative to show: plain text, else HTML, else the last multipart. */
function chooseAlternative(parts: Buffer[]): Buffer | undefined {
  const types = parts.map((p) => readEntity(p).type.type);
  const at = (t: string) => types.indexOf(t);
  if (at('text/plain') >= 0) return parts[at('text/plain')];
  if (at('text/html') >= 0) return parts[at('text/html')];
  for (let i = types.length - 1; i >= 0; i--) if (types[i]!.startsWith('multipart/')) return parts[i];
  return parts[0];
}

function forwarded(e: Entity, w: Walk, section: MailSection, depth: number, name: string): void {
  const bytes = decodeBody(e);
  const headers = readEntity(bytes).headers;
  const eml = emlName(name, decodeWords(headers.get('subject')?.[0] ?? ''), ++w.shared.forwarded);
  const attachedAs = w.embed ? addFile(w, section, { ...e, body: bytes, encoding: 'binary' }, parseParams(e.headers.get('content-disposition')?.[0] ?? ''), eml) : { name: eml };
  if (w.level >= w.limits.maxDepth) {
    section.parts.push({ kind: 'note', text: `A forwarded message nested deeper than ${w.limits.maxDepth} levels is not shown here; it is inside the attached file ${attachedAs.name}.` });
    return;
  }
  const inner: MailSection = { headers: headerLines(headers), parts: [], attachedAs };
  // Files inside a forwarded message stay inside its .eml: embedding them twice would double the PDF.
  walkEntity(bytes, { ...w, embed: false, level: w.level + 1 }, inner, depth + 1);
  section.parts.push({ kind: 'message', section: inner });
}

/** The message as sections of text and the files to embed. */
export function readMail(message: Buffer, limits: RenderLimits, now: Date): MailContent {
  const headers = readEntity(message).headers;
  const main: MailSection = { headers: headerLines(headers), parts: [] };
  const w: Walk = { limits, shared: { files: [], forwarded: 0, textChars: 0 }, embed: true, level: 0, messageDate: dateOf(headers.get('date')?.[0]) ?? now };
  walkEntity(message, w, main, 0);
  return { main, files: w.shared.files };
}
