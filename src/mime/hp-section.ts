/**
 * Header protection (RFC 9788) as MIME carries it: the header fields a cryptographic payload's root
 * part holds beside its Content-* fields, marked `hp="cipher"` / `hp="clear"` on its Content-Type
 * (or `protected-headers="v1"`, the older form Thunderbird and Enigmail write), and the `HP-Outer`
 * fields that record what the sender of an encrypted message left outside. Reading only: whether
 * these fields count is decided by what covers them (hp-apply.ts).
 *
 * Untrusted input: a header block out of a decrypted or signed entity; linear, never throws.
 */
import { headerFieldsRaw } from './entity.js';
import { parseHeaders, parseParams } from './header-fields.js';

export type HpForm = 'rfc9788' | 'v1';

export interface ProtectedSection {
  form: HpForm;
  /** RFC 9788's parameter; null in the v1 form. */
  hp: 'cipher' | 'clear' | null;
  /** The protected fields, lower-cased names, unfolded values as written, every occurrence in order. */
  fields: Map<string, string[]>;
  /** The same fields as written (first line and continuations), for copying them out unchanged. */
  raw: Map<string, string[]>;
  /** HP-Outer records by lower-cased name (hp="cipher" only): what the sender says it left outside. */
  outer: Map<string, string[]> | null;
}

/** Fields that describe the part, not the message (RFC 9787 1.1.1): never protected header fields. */
export const isStructural = (name: string): boolean => name === 'mime-version' || name.startsWith('content-');

/** Bounds: a hostile payload with a million header fields is not walked field by field twice. */
const MAX_FIELDS = 500;
const MAX_LINE = 998;

/**
 * The protected header section of a payload root's header block, or null when the block does not
 * say it carries one (no hp= or protected-headers="v1", or an hp value RFC 9788 does not define).
 */
export function protectedSection(header: Buffer): ProtectedSection | null {
  if (!header.length) return null;
  const all = parseHeaders(header);
  const ct = parseParams(all.get('content-type')?.[0] ?? '');
  const hp = (ct.params.get('hp') ?? '').trim().toLowerCase();
  const v1 = (ct.params.get('protected-headers') ?? '').trim().toLowerCase() === 'v1';
  const form: HpForm | null = hp === 'cipher' || hp === 'clear' ? 'rfc9788' : v1 ? 'v1' : null;
  if (!form) return null;
  const fields = new Map<string, string[]>();
  const outer = form === 'rfc9788' && hp === 'cipher' ? new Map<string, string[]>() : null;
  let n = 0;
  for (const [name, values] of all) {
    if (isStructural(name)) continue;
    if (name === 'hp-outer') {
      // "HP-Outer: Subject: [...]": the recorded field's name up to its first colon (RFC 9788 2.2).
      for (const v of outer ? values : []) {
        const colon = v.indexOf(':');
        const recorded = colon > 0 ? v.slice(0, colon).trim().toLowerCase() : '';
        if (!/^[!-9;-~]+$/.test(recorded) || ++n > MAX_FIELDS) continue;
        outer!.set(recorded, [...(outer!.get(recorded) ?? []), v.slice(colon + 1).trim()]);
      }
      continue;
    }
    if ((n += values.length) > MAX_FIELDS) continue;
    fields.set(name, values);
  }
  const raw = new Map<string, string[]>();
  for (const f of headerFieldsRaw(header)) {
    if (!fields.has(f.name)) continue;
    // These lines may become the message's own header: one longer than RFC 5322 allows (2.1.1)
    // would make the next hop refuse the whole message. Such a section is no header section.
    if (f.raw.split('\r\n').some((l) => l.length > MAX_LINE)) return null;
    raw.set(f.name, [...(raw.get(f.name) ?? []), f.raw]);
  }
  return { form, hp: form === 'rfc9788' ? (hp as 'cipher' | 'clear') : null, fields, raw, outer };
}
