/**
 * One address, one spelling (DESIGN §4). Every envelope address, header address, policy pattern,
 * configured domain and key-store address goes through here once, at the edge where it enters,
 * and only the canonical form is compared anywhere after that: relay control, policy matching,
 * key and certificate look-ups, the relay and the logs. Two spellings that reach the same mailbox
 * must get the same treatment — a rule for `partner.example` must not miss `ｐａｒｔｎｅｒ.example`,
 * and an outsider must not pass relay control with one spelling and be routed by another.
 *
 * The canonical form of `local@domain`:
 * - domain: the IDNA A-label form per UTS #46 (non-transitional, as WHATWG URL and browsers do):
 *   compatibility-mapped (full-width letters, ideographic full stops), lower case, one trailing
 *   root dot dropped, LDH labels only; an `xn--` label must decode and re-encode to itself.
 *   Default-ignorable code points (U+00AD soft hyphen, zero-width spaces and joiners, variation
 *   selectors, bidi controls) are refused, not silently deleted as UTS #46 would: they have no
 *   business in a mail domain and are the classic way to make one name look like another.
 * - local part: unquoted where the quotes change nothing (`"carol"` → `carol`, quoted pairs
 *   resolved), minimally quoted otherwise; non-ASCII (SMTPUTF8 only) in NFC; case kept, because
 *   the next hop owns its local parts and may (rarely) tell them apart by case.
 * - the comparison key (`addressKey`) lower-cases and NFKC-normalises the local part as well:
 *   nearly every mail system treats `Alice` and `alice` as one mailbox, and when in doubt it is
 *   safer that a rule or a key matches one spelling too many (mail gets encrypted to the key of
 *   whoever owns the look-alike's canonical twin) than one too few (mail goes out in clear).
 *
 * Untrusted input: all of it. No I/O, no secrets.
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/** Why an address has no canonical form; smtpd maps each to its reply. */
export type AddressProblem =
  /** Not local@domain, or a part breaks RFC 5321 syntax. */
  | 'syntax'
  /** A default-ignorable or control code point, which would make one name look like another. */
  | 'ignorable'
  /** The domain is no valid IDNA name (bad A-label, disallowed code point, numeric TLD…). */
  | 'domain'
  /** Non-ASCII where the transaction did not declare SMTPUTF8 (RFC 6531 §3.5). */
  | 'utf8';

export interface CanonicalAddress {
  /** local@domain in canonical form: what is stored, routed, compared and logged. */
  address: string;
  local: string;
  /** A-label form, lower case. */
  domain: string;
  /** The input as written, for display where it differs. */
  original: string;
}

export type AddressResult = ({ ok: true } & CanonicalAddress) | { ok: false; problem: AddressProblem; detail: string };

export interface AddressOptions {
  /**
   * Allow non-ASCII in the local part (SMTPUTF8, RFC 6531; header fields per RFC 6532). A
   * non-ASCII domain is always accepted from Postern's own config and headers, and from SMTP
   * only with SMTPUTF8 — smtpd checks the raw command line for that, because smtp-server decodes
   * A-labels to Unicode before we see them.
   */
  utf8?: boolean;
}

// Default_Ignorable_Code_Point covers U+00AD, U+034F, U+115F/60, U+17B4/5, U+180B–F, U+200B–F,
// U+202A–E, U+2060–6F, U+3164, U+FE00–0F, U+FEFF, U+FFA0, U+1BCA0–3, U+1D173–A, tags, VS17–256.
const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cs}\u2028\u2029]/u;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// RFC 5322 atext, plus (with SMTPUTF8) any non-ASCII character (RFC 6531 §3.3 UTF8-non-ascii).
const ATEXT_ASCII = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const ATEXT_UTF8 = /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\x00-\x7f])+$/u;
const NON_ASCII = /[^\x00-\x7f]/;

type Part<T> = { ok: true; value: T } | { ok: false; problem: AddressProblem; detail: string };
const fail = (problem: AddressProblem, detail: string) => ({ ok: false as const, problem, detail });

/**
 * Answers of the pure functions below, for inputs seen recently: a message asks for the same few
 * domains and addresses dozens of times (relay control, every rule's match, internal_domains,
 * key look-ups, the relay's routes), and the worker's profile showed parseDomain among its top
 * costs. Bounded: cleared when full, so hostile input cannot grow it.
 */
function memo<T>(f: (input: string) => T, max = 2048): (input: string) => T {
  const seen = new Map<string, T>();
  return (input) => {
    let r = seen.get(input);
    if (r === undefined && !seen.has(input)) {
      r = f(input);
      if (seen.size >= max) seen.clear();
      seen.set(input, r);
    }
    return r as T;
  };
}

/** The A-label form of a domain, or why it has none. Address literals (`[192.0.2.1]`) are not domains. */
export const parseDomain = memo(parseDomainOnce);

function parseDomainOnce(input: string): Part<string> {
  if (!input) return fail('syntax', 'empty domain');
  if (IGNORABLE.test(input)) return fail('ignorable', 'the domain contains an invisible or control character');
  let name: string;
  if (NON_ASCII.test(input)) {
    // UTS #46 mapping and Punycode; '' when a code point is disallowed.
    name = domainToASCII(input);
    if (!name) return fail('domain', 'the domain is not a valid internationalised domain name');
  } else {
    // Pure ASCII skips WHATWG host parsing on purpose: it would read "0x7f.1" as 127.0.0.1.
    name = input.toLowerCase();
  }
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (!name || name.length > 253) return fail('domain', 'the domain is empty or longer than 253 characters');
  const labels = name.split('.');
  for (const label of labels) {
    if (!LDH_LABEL.test(label)) return fail('domain', `the domain label "${label}" is not letters, digits and hyphens`);
    // An A-label must be the Punycode of a valid U-label; "xn--" junk could stand for anything.
    if (label.startsWith('xn--') && domainToASCII(domainToUnicode(label)) !== label) return fail('domain', `"${label}" is not a valid A-label`);
  }
  // An all-numeric top-level label is an IP address in disguise, never a mail domain.
  if (/^\d+$/.test(labels[labels.length - 1]!)) return fail('domain', 'the domain ends in a numeric label (an IP address is written [192.0.2.1])');
  return { ok: true, value: name };
}

/** The A-label form, or null. */
export function canonicalDomain(input: string): string | null {
  const d = parseDomain(input.trim());
  return d.ok ? d.value : null;
}

const isDotAtom = (s: string, utf8: boolean) => s.split('.').every((atom) => atom.length > 0 && (utf8 ? ATEXT_UTF8 : ATEXT_ASCII).test(atom));

/** The canonical local part: unquoted where quoting changes nothing, NFC. */
export function parseLocalPart(input: string, utf8: boolean): Part<string> {
  if (!input) return fail('syntax', 'empty local part');
  if (!utf8 && NON_ASCII.test(input)) return fail('utf8', 'non-ASCII local part without SMTPUTF8');
  const s = input.normalize('NFC');
  if (IGNORABLE.test(s)) return fail('ignorable', 'the local part contains an invisible or control character');
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
    // RFC 5321 Quoted-string: qtextSMTP (space and printable ASCII but " and \) or a quoted pair.
    let content = '';
    for (let i = 1; i < s.length - 1; i++) {
      let ch = s[i]!;
      if (ch === '\\') {
        if (i + 1 >= s.length - 1) return fail('syntax', 'a quoted local part ends in a backslash');
        ch = s[++i]!;
      } else if (ch === '"') {
        return fail('syntax', 'an unescaped quote inside a quoted local part');
      }
      content += ch;
    }
    if (isDotAtom(content, utf8)) return { ok: true, value: content };
    return { ok: true, value: `"${content.replace(/["\\]/g, '\\$&')}"` };
  }
  if (!isDotAtom(s, utf8)) return fail('syntax', 'the local part is neither a dot-atom nor a quoted string');
  return { ok: true, value: s };
}

/** local@domain → canonical form, or the reason it has none. */
export function parseAddress(input: string, opts: AddressOptions = {}): AddressResult {
  const at = input.lastIndexOf('@');
  if (at <= 0 || at === input.length - 1) return fail('syntax', 'not local-part@domain');
  const local = parseLocalPart(input.slice(0, at), opts.utf8 ?? true);
  if (!local.ok) return local;
  const raw = input.slice(at + 1);
  if (raw.startsWith('[')) return fail('domain', 'an address literal names a host, not a mail domain');
  const domain = parseDomain(raw);
  if (!domain.ok) return domain;
  const address = `${local.value}@${domain.value}`;
  if (Buffer.byteLength(address) > 254) return fail('syntax', 'the address is longer than RFC 5321 allows');
  return { ok: true, address, local: local.value, domain: domain.value, original: input };
}

/** The canonical form of an address, or null when it has none. */
export function canonicalAddress(input: string, opts?: AddressOptions): string | null {
  const r = parseAddress(input.trim(), opts);
  return r.ok ? r.address : null;
}

/**
 * The comparison key: the canonical address with the local part NFKC-normalised and lower-cased
 * (the key store, policy matching and look-up caches compare only this). Input that has no
 * canonical form (an old spool entry, an odd header) falls back to its trimmed lower-case self,
 * which can only ever equal another such spelling.
 */
export const addressKey = memo(addressKeyOnce);

function addressKeyOnce(input: string): string {
  const s = input.trim();
  const r = parseAddress(s);
  if (!r.ok) return s.toLowerCase();
  return `${r.local.normalize('NFKC').toLowerCase()}@${r.domain}`;
}

/** Same mailbox, as far as Postern can tell (by addressKey). */
export const sameAddress = (a: string, b: string): boolean => addressKey(a) === addressKey(b);

/** The canonical domain of an address ("" when it has none): what internal_domains and routes compare. */
export function domainOfAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  return canonicalDomain(address.slice(at + 1)) ?? address.slice(at + 1).trim().toLowerCase();
}

/** True when the address's canonical domain is one of `domains` (A-label forms; exact match, subdomains are not implied). */
export const inDomains = (address: string, domains: ReadonlySet<string> | readonly string[]): boolean => {
  const d = domainOfAddress(address);
  return d !== '' && ('has' in domains ? domains.has(d) : domains.includes(d));
};

const GLOB = /[*?]/;
const DOTS = /[.\u3002\uff0e\uff61]/;

/**
 * A domain pattern of the admin's ("partner.example", "*.bücher.example", "mail?.example.org")
 * in the canonical spelling, so that it matches canonical domains whatever script the admin wrote
 * it in. Labels without wildcards are IDNA-converted one by one; a label with a wildcard must be
 * ASCII (an A-label cannot be globbed). Null when a label is not valid.
 */
export function canonicalDomainPattern(pattern: string): string | null {
  const p = pattern.trim().normalize('NFKC');
  if (p === '*') return p;
  if (!GLOB.test(p)) return canonicalDomain(p);
  if (IGNORABLE.test(p)) return null;
  const labels = p.replace(/[.\u3002\uff0e\uff61]$/, '').split(DOTS);
  const out: string[] = [];
  for (const label of labels) {
    if (GLOB.test(label)) {
      if (NON_ASCII.test(label) || !/^[a-z0-9*?-]+$/i.test(label)) return null;
      out.push(label.toLowerCase());
    } else {
      const a = NON_ASCII.test(label) ? domainToASCII(label) : label.toLowerCase();
      if (!a || !LDH_LABEL.test(a)) return null;
      out.push(a);
    }
  }
  return out.join('.');
}

/**
 * An address pattern ("carol@other.example", "*@bücher.example", "sales-*@x.org") in the form of
 * addressKey, so it is compared with keys: local part unquoted, NFKC, lower case; domain as
 * canonicalDomainPattern. Null when it has no such form.
 */
export function canonicalAddressPattern(pattern: string): string | null {
  const p = pattern.trim();
  const at = p.lastIndexOf('@');
  if (at < 0) return null;
  let local = p.slice(0, at);
  if (!local || IGNORABLE.test(local)) return null;
  if (!GLOB.test(local)) {
    const l = parseLocalPart(local, true);
    if (!l.ok) return null;
    local = l.value;
  }
  const domain = canonicalDomainPattern(p.slice(at + 1));
  return domain === null ? null : `${local.normalize('NFKC').toLowerCase()}@${domain}`;
}
