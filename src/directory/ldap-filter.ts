/**
 * LDAP search filters built from admin templates and untrusted values (recipient and sender
 * addresses from SMTP, entry DNs from the directory), and the group names read out of DNs.
 *
 * Untrusted input: every value substituted into a template. It is escaped per RFC 4515 §3 — `*`,
 * `(`, `)`, `\`, NUL and the other control characters as \XX — so an address like
 * `*)(uid=*` is an assertion value that matches nothing, never filter syntax. Templates are the
 * admin's and are checked once at config load (validateTemplate), so a typo fails `postern check`
 * rather than every look-up.
 */

/**
 * RFC 4515 §3 escaping of an assertion value: `*`, `(`, `)`, `\`, NUL, every other control
 * character and DEL become \XX. Non-ASCII characters stay as they are (RFC 4515's UTFMB, legal
 * unescaped; they are never filter syntax): ldapts 8 decodes each \XX into a separate character
 * and re-encodes it as UTF-8, so an escaped "ö" (\c3\b6) would reach the server as four bytes
 * and match nothing. ASCII escapes survive that round trip intact.
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f || ch === '*' || ch === '(' || ch === ')' || ch === '\\') out += `\\${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out;
}

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** Substitute `{name}` placeholders with escaped values. Unknown names were refused at load time. */
export function renderFilter(template: string, values: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const v = values[name];
    return v === undefined ? whole : escapeFilterValue(v);
  });
}

/**
 * Is `template` a usable filter with only `allowed` placeholders (and at least one of `required`)?
 * Returns the reason it is not, or null. Only the outline is checked (parenthesised, balanced,
 * no raw `\` outside an escape); the server judges attribute names and matching rules.
 */
export function validateTemplate(template: string, allowed: readonly string[], required: readonly string[]): string | null {
  const used = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  const unknown = used.filter((n) => !allowed.includes(n));
  if (unknown.length) return `unknown placeholder {${unknown[0]}} (known: ${allowed.map((a) => `{${a}}`).join(', ')})`;
  if (required.length && !used.some((n) => required.includes(n))) return `expected a placeholder ${required.map((r) => `{${r}}`).join(' or ')}`;
  const f = renderFilter(template, Object.fromEntries(allowed.map((a) => [a, 'x'])));
  if (!f.startsWith('(') || !f.endsWith(')')) return 'expected a filter in parentheses, like (mail={address})';
  let depth = 0;
  for (let i = 0; i < f.length; i++) {
    const c = f[i];
    if (c === '\\') {
      if (!/^[0-9a-fA-F]{2}$/.test(f.slice(i + 1, i + 3))) return 'a "\\" must start an escape like \\2a';
      i += 2;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) break;
    if (depth === 0 && i < f.length - 1) return 'unbalanced parentheses (wrap several conditions in (&...) or (|...))';
  }
  return depth === 0 ? null : 'unbalanced parentheses';
}

/**
 * The value of a DN's first RDN, unescaped (RFC 4514): "cn=Human Resources,ou=groups,dc=x" →
 * "Human Resources" — what policy rules call a group. A multi-valued first RDN gives its first
 * value. Returns null for something that is not a DN.
 */
export function firstRdnValue(dn: string): string | null {
  const eq = dn.indexOf('=');
  if (eq <= 0) return null;
  let i = eq + 1;
  if (dn[i] === '#') {
    // A BER-encoded value: rare for names, and not something to show as a group name.
    return null;
  }
  const bytes: number[] = [];
  for (; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === ',' || c === '+' || c === ';') break;
    if (c === '\\') {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < dn.length) {
        bytes.push(...Buffer.from(dn[++i]!, 'utf8'));
      }
      continue;
    }
    const ch = String.fromCodePoint(dn.codePointAt(i)!);
    if (ch.length === 2) i++; // a surrogate pair is one character
    bytes.push(...Buffer.from(ch, 'utf8'));
  }
  const value = Buffer.from(bytes).toString('utf8').trim();
  return value || null;
}
