/**
 * Header protection inbound (RFC 9788 4): once decryption or a valid signature covers a payload
 * with a protected header section, its fields are the message's. An outer From, Sender, To, Cc,
 * Reply-To, Subject, Date, Message-ID, In-Reply-To or References that differs from the protected
 * one is replaced by it; one the protected section does not have (an added Cc, a Reply-To: the
 * reply-exfiltration attack) is removed where the form says the section is complete. Each outer
 * value that goes is kept as `X-Postern-Outer-<Field>`, and the whole is stated in
 * `X-Postern-Header-Protection` (the result-field grammar of results.ts).
 *
 * A difference the sender made on purpose (the Subject an encrypted message hides as "[...]",
 * recorded inside as HP-Outer) is `restored`; any other is `replaced`: changed on the way, by an
 * attacker or a mailing list. Untrusted input: both header sections; linear, never throws.
 */
import { addressKey } from '../core/index.js';
import { addressesOf } from './addresses.js';
import { headerFieldsRaw } from './entity.js';
import { decodeWords, parseHeaders, splitHeader } from './header-fields.js';
import { OBSCURED_SUBJECT } from './hp-compose.js';
import type { ProtectedSection } from './hp-section.js';
import { resultText, type ResultMethod } from './results.js';

/** The fields whose outer form is replaced by the protected one, with their usual spelling. */
const NAMES: Record<string, string> = {
  from: 'From', sender: 'Sender', to: 'To', cc: 'Cc', 'reply-to': 'Reply-To', subject: 'Subject',
  date: 'Date', 'message-id': 'Message-ID', 'in-reply-to': 'In-Reply-To', references: 'References',
};
const ADDRESS_FIELDS = new Set(['from', 'sender', 'to', 'cc', 'reply-to']);
/**
 * Outer fields that go when the protected section lacks them. RFC 9788's section is the whole
 * header (a field only outside is not the author's, 4.4.4); the v1 form's writers leave threading
 * fields out, so there only the fields a reply is addressed from go.
 */
const REMOVED_IF_ABSENT = {
  rfc9788: new Set(['sender', 'to', 'cc', 'reply-to', 'subject', 'in-reply-to', 'references']),
  v1: new Set(['to', 'cc', 'reply-to']),
};
/** What clients write outside instead of an encrypted message's Subject (RFC 9788, Thunderbird, Enigmail). */
const OBSCURED = new Set([OBSCURED_SUBJECT, '...', 'encrypted message', 'encrypted subject']);
/** Changing these changes what signatures are bound to (From:, Sender:, Date:): signatures are checked again. */
const BINDING = new Set(['from', 'sender', 'date']);

export interface FieldChange {
  /** Lower-cased field name. */
  name: string;
  /** restored: as the sender hid it; replaced: differed from the protected value, or is not in it. */
  kind: 'restored' | 'replaced';
}

export interface ProtectionPlan {
  section: ProtectedSection;
  changes: FieldChange[];
  /** A change touches what a signature is bound to: verify again against the protected fields. */
  rebind: boolean;
}

const collapse = (s: string) => s.replace(/\s+/g, ' ').trim();

/** A value as a reader would see it, so that re-folding or re-encoding on the way is no difference. */
function normal(name: string, value: string): string {
  const text = collapse(decodeWords(value));
  if (!ADDRESS_FIELDS.has(name)) return text;
  const display = collapse(text.replace(/<[^<>]*>/g, ' ').replace(/["\\]/g, ''));
  return `${addressesOf(value).map(addressKey).join(',')}|${display}`;
}

const same = (name: string, a: readonly string[] = [], b: readonly string[] = []) =>
  a.length === b.length && a.every((v, i) => normal(name, v) === normal(name, b[i]!));

/** Did the sender say it left this outside as it is (an HP-Outer record, or a known obscured Subject)? */
function explained(name: string, outer: readonly string[] | undefined, section: ProtectedSection, decrypted: boolean): boolean {
  if (!decrypted) return false;
  if (section.outer) return same(name, outer, section.outer.get(name));
  return name === 'subject' && outer?.length === 1 && OBSCURED.has(collapse(outer[0]!).toLowerCase());
}

/** What the protected section changes in a message's outer header (`decrypted`: it came out of decryption). */
export function planProtection(message: Buffer, section: ProtectedSection, decrypted: boolean): ProtectionPlan {
  const outer = parseHeaders(splitHeader(message).header);
  const changes: FieldChange[] = [];
  for (const name of Object.keys(NAMES)) {
    const inner = section.fields.get(name);
    const out = outer.get(name);
    if (inner ? same(name, inner, out) : !(out && REMOVED_IF_ABSENT[section.form].has(name))) continue;
    changes.push({ name, kind: inner && explained(name, out, section, decrypted) ? 'restored' : 'replaced' });
  }
  return { section, changes, rebind: changes.some((c) => BINDING.has(c.name)) };
}

/** X-Postern-Outer-<Field> for an outer field that goes. */
export const outerFieldName = (name: string) => `X-Postern-Outer-${NAMES[name] ?? name}`;

/** A raw field line fit to be written again: no lone CR, no NUL, continuation lines kept. */
const clean = (raw: string) => raw.replace(/\r(?!\n)|\0/g, '');

/**
 * The message with the planned fields as the protected section has them. `original` is the message
 * as it arrived (its outer values are the ones kept as X-Postern-Outer-*); `only` limits the change
 * to some fields and keeps nothing (the copy that signatures are checked against again).
 */
export function rewriteOuter(message: Buffer, plan: ProtectionPlan, original: Buffer = message, only?: ReadonlySet<string>): Buffer {
  const changed = new Set(plan.changes.map((c) => c.name).filter((n) => !only || only.has(n)));
  if (!changed.size) return message;
  const { header } = splitHeader(message);
  const lines: string[] = [];
  const placed = new Set<string>();
  const put = (name: string) => {
    if (placed.has(name)) return;
    placed.add(name);
    for (const raw of plan.section.raw.get(name) ?? []) lines.push(clean(raw));
  };
  for (const f of headerFieldsRaw(header)) {
    if (changed.has(f.name)) put(f.name); // the protected value takes the outer one's place
    else lines.push(f.raw);
  }
  // Fields the outer header lacked go after the others; the outer values that went are kept.
  for (const name of changed) put(name);
  if (!only) {
    for (const f of headerFieldsRaw(splitHeader(original).header)) {
      if (changed.has(f.name)) lines.push(clean(`${outerFieldName(f.name)}:${f.raw.slice(f.raw.indexOf(':') + 1)}`));
    }
  }
  // The empty line and the body, byte for byte (a message without a body gets the empty line).
  const rest = header.length === message.length ? Buffer.from('\r\n') : message.subarray(header.length);
  return Buffer.concat([Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1'), rest]);
}

/** What covered the protected section. */
export interface ProtectionCover {
  decrypted: boolean;
  /** The decryption's integrity was checked (AEAD, MDC) or a valid signature covers the content. */
  authenticated: boolean;
  signed: boolean;
}

const names = (changes: FieldChange[], kind: FieldChange['kind']) => changes.filter((c) => c.kind === kind).map((c) => NAMES[c.name]);

/**
 * X-Postern-Header-Protection: `protected` (the protected fields are in force; any difference
 * outside was the sender's), `replaced` (an outer field differed and was replaced or removed),
 * `ignored` (the section was there, but nothing that counts covers it: the outer header stays).
 */
export function protectionField(method: ResultMethod | 'mixed', plan: ProtectionPlan, cover: ProtectionCover | null, reason?: string): [string, string] {
  const s = plan.section;
  const replaced = names(plan.changes, 'replaced');
  const restored = names(plan.changes, 'restored');
  const status = !cover ? 'ignored' : replaced.length ? 'replaced' : 'protected';
  const parts = [status, `method=${method}`, `form=${s.form}`];
  if (s.hp) parts.push(`hp=${s.hp}`);
  if (cover) {
    parts.push(`protected-by=${[cover.decrypted && 'encryption', cover.signed && 'signature'].filter(Boolean).join(',')}`);
    if (cover.decrypted && !cover.authenticated) parts.push('integrity=unauthenticated');
    if (restored.length) parts.push(`restored="${restored.join(',')}"`);
    if (replaced.length) parts.push(`replaced="${replaced.join(',')}"`);
  } else if (plan.changes.length) {
    parts.push(`differs="${plan.changes.map((c) => NAMES[c.name]).join(',')}"`);
  }
  if (reason) parts.push(`reason="${resultText(reason)}"`);
  return ['X-Postern-Header-Protection', parts.join('; ')];
}
