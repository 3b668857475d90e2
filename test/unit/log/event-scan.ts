/**
 * Finds the log event codes the source uses: the value of every `event:` property in src/ (outside comments), read
 * with a small bracket- and quote-aware reader rather than a regex so that ternaries (`event: ok ? 'a.b' : 'a.c'`) and
 * template literals (`event: \`${role}.stopping\``) are read whole. A template's interpolations
 * are expanded from INTERPOLATIONS: an interpolation the test does not know fails the test, so a
 * new dynamic code cannot slip past the list.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface EventUse {
  /** Concrete codes this use can produce. */
  codes: string[];
  file: string;
  line: number;
  /** The log method when the call is `log.<level>({ event: … })` with a literal level. */
  level?: string;
  /** The expression as written, for messages. */
  source: string;
}

/**
 * What a template's `${…}` can stand for. Keys are the interpolated expression as written.
 * `role`: supervisor/protocol.ts RoleName; `s.source`: directory/discovery.ts DiscoverySource.
 */
export const INTERPOLATIONS: Record<string, readonly string[]> = {
  role: ['smtpd', 'worker', 'relay', 'portal'],
  's.source': ['wkd', 'hkp'],
};

/** "role.what" or "role.area.what": lower case, digits and underscores, dot-separated. */
export const EVENT_CODE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

/** Index of the end of the quoted string or template starting at `i` (exclusive). */
function skipQuoted(s: string, i: number): number {
  const q = s[i]!;
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (q === '`' && s[j] === '$' && s[j + 1] === '{') j = skipBalanced(s, j + 1) - 1;
    else if (s[j] === q) return j + 1;
  }
  throw new Error(`unterminated string at ${i}`);
}

/** From an opening bracket at `i`, the index after its partner. */
function skipBalanced(s: string, i: number): number {
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const c = s[j]!;
    if (c === "'" || c === '"' || c === '`') j = skipQuoted(s, j) - 1;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c) && --depth === 0) return j + 1;
  }
  throw new Error(`unbalanced bracket at ${i}`);
}

/** The expression after `event:` up to the `,` or `}` that ends it. */
function expressionAt(s: string, i: number): string {
  let j = i;
  while (j < s.length) {
    const c = s[j]!;
    if (c === "'" || c === '"' || c === '`') j = skipQuoted(s, j);
    else if ('([{'.includes(c)) j = skipBalanced(s, j);
    else if (c === ',' || c === '}' || c === ')') break;
    else j++;
  }
  return s.slice(i, j).trim();
}

/** The string literals of an expression (quoted strings; templates expanded). */
function codesOf(expr: string, where: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c !== "'" && c !== '"' && c !== '`') continue;
    const end = skipQuoted(expr, i);
    const body = expr.slice(i + 1, end - 1);
    out.push(...(c === '`' ? expandTemplate(body, where) : [body]));
    i = end - 1;
  }
  return out;
}

function expandTemplate(body: string, where: string): string[] {
  let results = [''];
  for (let i = 0; i < body.length; ) {
    if (body[i] === '$' && body[i + 1] === '{') {
      const end = skipBalanced(body, i + 1);
      const inner = body.slice(i + 2, end - 1).trim();
      // A ternary of literals inside the template: its branches; a known variable: its values.
      const literals = /['"`]/.test(inner) ? codesOf(inner, where) : INTERPOLATIONS[inner];
      if (!literals) throw new Error(`${where}: event template interpolates \${${inner}}, unknown to test/unit/log/event-scan.ts INTERPOLATIONS`);
      results = results.flatMap((r) => literals.map((l) => r + l));
      i = end;
    } else {
      const next = body.indexOf('${', i);
      const lit = body.slice(i, next < 0 ? body.length : next);
      results = results.map((r) => r + lit);
      i = next < 0 ? body.length : next;
    }
  }
  return results;
}

/** Is the match at `at` inside a comment? Line comments and block-comment lines (" * …") only. */
function inComment(text: string, at: number): boolean {
  const lineStart = text.lastIndexOf('\n', at - 1) + 1;
  const head = text.slice(lineStart, at);
  return /^\s*(\*|\/\*|\/\/)/.test(head) || /\/\/[^'"`]*$/.test(head);
}

export function scanEvents(srcDir: string, skip: (file: string) => boolean = () => false): EventUse[] {
  const uses: EventUse[] = [];
  for (const path of sourceFiles(srcDir)) {
    const file = relative(srcDir, path);
    if (skip(file)) continue;
    const text = readFileSync(path, 'utf8');
    for (const m of text.matchAll(/\bevent\s*:\s*/g)) {
      if (inComment(text, m.index!)) continue;
      const at = m.index! + m[0].length;
      const line = text.slice(0, at).split('\n').length;
      const where = `src/${file}:${line}`;
      const expr = expressionAt(text, at);
      // `log.warn({ event: …` (maybe across lines): the level is the method called.
      const before = text.slice(Math.max(0, m.index! - 80), m.index!);
      const level = /\.(trace|debug|info|warn|error|fatal)\(\s*\{[^{}]*$/.exec(before)?.[1];
      // Only code-shaped literals: a ternary's condition may compare other strings ('decrypted').
      const codes = codesOf(expr, where).filter((c) => EVENT_CODE.test(c));
      uses.push({ codes, file, line, source: expr, ...(level ? { level } : {}) });
    }
  }
  return uses;
}
