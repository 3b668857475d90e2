/**
 * MTA-STS (RFC 8461) texts: the `_mta-sts.<domain>` TXT record, the policy file, and which MX
 * hosts a policy allows. Both texts come from whoever controls the recipient domain's DNS or web
 * server: every field is bounded and checked, anything unexpected makes the record or policy
 * invalid (which means "no policy", never "enforce something odd").
 */

export interface StsRecord {
  /** The policy's id (1–32 letters and digits): a change means "fetch the policy again". */
  id: string;
}

export type StsMode = 'enforce' | 'testing' | 'none';

export interface StsPolicy {
  mode: StsMode;
  /** Allowed MX host patterns, lower case: "mail.example.com" or "*.example.net". */
  mx: string[];
  /** Seconds the policy may be cached (at most one year, RFC 8461 §3.2). */
  maxAge: number;
}

/** RFC 8461 §3.2: max_age at most 31557600 s. */
export const MAX_STS_AGE = 31_557_600;
/** A policy body larger than this is refused (RFC 8461 §3.3 suggests 64 KiB). */
export const MAX_POLICY_BYTES = 64 * 1024;
/** More patterns than this is not a mail domain's policy. */
const MAX_MX_PATTERNS = 100;

const ID = /^[A-Za-z0-9]{1,32}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The TXT answer → the record, or undefined when there is none usable. Several TXT strings of one
 * record are joined (RFC 7208-style); records not starting with "v=STSv1" are other uses of the
 * name; more than one STS record means no policy (RFC 8461 §3.1).
 */
export function parseStsRecord(txt: readonly (readonly string[])[]): StsRecord | undefined {
  const sts = txt.map((parts) => (Array.isArray(parts) ? parts.join('') : '')).filter((t) => /^v=STSv1(;|\s|$)/.test(t));
  if (sts.length !== 1) return undefined;
  const text = sts[0]!;
  if (text.length > 1024) return undefined;
  let id: string | undefined;
  for (const field of text.split(';')) {
    const f = field.trim();
    if (!f) continue;
    const eq = f.indexOf('=');
    if (eq <= 0) return undefined;
    const key = f.slice(0, eq).trim();
    const value = f.slice(eq + 1).trim();
    if (key === 'id') {
      if (id !== undefined || !ID.test(value)) return undefined;
      id = value;
    }
  }
  return id ? { id } : undefined;
}

/**
 * The policy file → the policy, or why it is invalid. Lines end with CRLF or LF; "key: value";
 * unknown keys are ignored (§3.2 extensibility); version, mode and max_age are required, and at
 * least one mx unless the mode is none.
 */
export function parseStsPolicy(text: string): StsPolicy | string {
  if (text.length > MAX_POLICY_BYTES) return 'policy too large';
  let version: string | undefined;
  let mode: StsMode | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[ \t]+$/, '');
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return 'a line is not "key: value"';
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (!/^[A-Za-z0-9_]{1,32}$/.test(key)) return 'a line is not "key: value"';
    switch (key) {
      case 'version':
        if (version !== undefined) return 'version given twice';
        version = value;
        break;
      case 'mode':
        if (mode !== undefined) return 'mode given twice';
        if (value !== 'enforce' && value !== 'testing' && value !== 'none') return 'mode is not enforce, testing or none';
        mode = value;
        break;
      case 'max_age':
        if (maxAge !== undefined) return 'max_age given twice';
        if (!/^[0-9]{1,10}$/.test(value) || Number(value) > MAX_STS_AGE) return 'max_age is not a number of seconds up to 31557600';
        maxAge = Number(value);
        break;
      case 'mx': {
        const pattern = mxPattern(value);
        if (!pattern) return 'an mx line is not a host name or *.domain';
        if (mx.length >= MAX_MX_PATTERNS) return 'too many mx lines';
        mx.push(pattern);
        break;
      }
      default:
        break;
    }
  }
  if (version !== 'STSv1') return 'version is not STSv1';
  if (!mode) return 'no mode';
  if (maxAge === undefined) return 'no max_age';
  if (mode !== 'none' && mx.length === 0) return 'no mx';
  return { mode, mx, maxAge };
}

/** "mail.example.com" or "*.example.com", lower case; undefined when it is neither. */
function mxPattern(value: string): string | undefined {
  const v = value.toLowerCase().replace(/\.$/, '');
  const name = v.startsWith('*.') ? v.slice(2) : v;
  if (name.length === 0 || name.length > 253) return undefined;
  const labels = name.split('.');
  // A pattern needs a registered domain under it: "*.com" alone is not a mail host's name.
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return undefined;
  return v;
}

/**
 * RFC 8461 §4.1: the MX host matches a pattern exactly, or a "*." pattern with exactly one more
 * label on the left ("*.example.com" allows "mx1.example.com", not "a.b.example.com" nor
 * "example.com").
 */
export function mxAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => {
    if (!p.startsWith('*.')) return h === p;
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  });
}
