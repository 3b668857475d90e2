/**
 * policy.yaml → CompiledPolicy, or every problem at once with the file, line, rule name and key,
 * in the words of the policy language (what was found, what was expected). Patterns are compiled
 * here, so evaluation never meets a bad regular expression.
 */
import { dirname, resolve } from 'node:path';
import { parseYaml, problemAt, type ParsedYaml } from '../config/index.js';
import { canonicalAddress, canonicalAddressPattern, canonicalDomainPattern, type ConfigProblem } from '../core/index.js';
import { parseSize } from '../config/units.js';
import type { Action, CommandName, CompiledPolicy, Condition, EncryptMethod, NumberTest, PartyTest, PdfEncryptOptions, Rule, SmimeEncryptOptions, StringTest } from './types.js';

type Path = (string | number)[];
type Doc = Record<string, unknown>;

export const DEFAULT_COMMANDS: Record<CommandName, string> = {
  encrypt: '{encrypt}',
  sign: '{sign}',
  plain: '{plain}',
  pdf: '{pdf}',
  webmail: '{webmail}',
  send_keys: '{send_keys}',
  send_keys_smime: '{send_keys_smime}',
  send_keys_pgp: '{send_keys_pgp}',
};

export const DEFAULT_COMMAND_ACTIONS: Record<CommandName, Action[]> = {
  encrypt: [{ kind: 'encrypt', methods: ['smime', 'pgp'], require: true, otherwise: 'hold' }],
  sign: [{ kind: 'sign', method: 'auto' }],
  plain: [],
  // PDF mail for this message whatever keys the recipients have (the sender decides the recipient
  // reads it best that way); held if it cannot be made.
  pdf: [{ kind: 'encrypt', methods: ['pdf'], require: true, otherwise: 'hold' }],
  // Likewise into the recipient's webmail mailbox on the portal.
  webmail: [{ kind: 'encrypt', methods: ['webmail'], require: true, otherwise: 'hold' }],
  // Signed as well: most clients (Outlook above all) take a sender's certificate from a signed
  // message by themselves, while a .p7c attachment must be imported by hand. {send_keys} signs
  // with whatever the sender has (auto), {send_keys_smime} with S/MIME, as the issue asks.
  send_keys: [{ kind: 'send_keys', smime: true, pgp: true }, { kind: 'sign', method: 'auto' }],
  send_keys_smime: [{ kind: 'send_keys', smime: true, pgp: false }, { kind: 'sign', method: 'smime' }],
  send_keys_pgp: [{ kind: 'send_keys', smime: false, pgp: true }],
};

const DIRECTIONS = ['inbound', 'outbound', 'internal', 'external'] as const;
const PRIORITIES = ['high', 'normal', 'low'] as const;
const SENSITIVITIES = ['normal', 'personal', 'private', 'confidential'] as const;
const KEY_KINDS = ['smime', 'pgp', 'any', 'none'] as const;
/** Without `methods:` an encrypt action uses keys (PDF mail and webmail change what the recipient gets: only when named). */
const METHODS = ['smime', 'pgp'] as const;
const ENCRYPT_METHODS = ['smime', 'pgp', 'pdf', 'webmail'] as const;
/** Methods that need no key of the recipient: they can always be made, so nothing after them is ever used. */
const ALWAYS_MADE = ['pdf', 'webmail'] as const;
const CONDITION_KEYS = ['all', 'any', 'not', 'direction', 'sender', 'recipient', 'size', 'attachments', 'priority', 'sensitivity', 'encrypted', 'signed', 'command', 'header', 'client'];
/** `capable`: AES-256-GCM where the recipients advertised it, else the configured cipher (the default behaviour). */
const SMIME_CIPHERS = ['capable', 'aes-256-cbc', 'aes-128-cbc', 'aes-256-gcm', 'aes-128-gcm'] as const;

const ACTIONS = ['none', 'sign', 'encrypt', 'decrypt', 'verify', 'generate_keys', 'add_header', 'remove_header', 'copy', 'redirect', 'notify_sender', 'alert', 'hold', 'bounce', 'delete', 'send_keys'];

export type CompileResult = { ok: true; policy: CompiledPolicy } | { ok: false; problems: ConfigProblem[] };

export function compilePolicy(text: string, file: string): CompileResult {
  const yaml = parseYaml(text, file);
  if (!yaml.ok) return yaml;
  return new Compiler(yaml, file).run();
}

class Compiler {
  readonly problems: ConfigProblem[] = [];
  private rulePrefix = '';

  constructor(
    private readonly yaml: ParsedYaml,
    private readonly file: string,
  ) {}

  private problem(path: Path, message: string, atKey = false): void {
    const p = problemAt(this.yaml, this.file, path, message, atKey);
    this.problems.push(this.rulePrefix ? { ...p, key: `${this.rulePrefix} ${p.key}` } : p);
  }

  private line(path: Path): number {
    return problemAt(this.yaml, this.file, path, '').line;
  }

  run(): CompileResult {
    const doc = (this.yaml.doc.toJS() ?? {}) as unknown;
    if (!isMap(doc)) {
      this.problem([], 'expected a mapping with a "rules:" list');
      return { ok: false, problems: this.problems };
    }
    this.unknownKeys(doc, [], ['rules', 'groups', 'commands', 'command_actions']);
    const commands = this.commands(doc.commands);
    const commandActions = this.commandActions(doc.command_actions);
    const rules: Rule[] = [];
    if (doc.rules !== undefined && doc.rules !== null && !Array.isArray(doc.rules)) this.problem(['rules'], 'expected a list of rules');
    const list = Array.isArray(doc.rules) ? doc.rules : [];
    const names = new Map<string, number>();
    list.forEach((raw, i) => {
      const rule = this.rule(raw, ['rules', i], names);
      if (rule) rules.push(rule);
    });
    this.rulePrefix = '';
    // A rule that matches everything and stops hides every rule after it: almost always an
    // ordering mistake, so it is an error rather than a surprise in production.
    const catchAll = rules.findIndex((r) => r.when.kind === 'always' && !r.continue);
    if (catchAll >= 0 && catchAll < rules.length - 1) {
      const c = rules[catchAll]!;
      for (let i = catchAll + 1; i < list.length; i++) {
        this.problem(['rules', i], `rule "${rules[i]?.name ?? i + 1}" can never match: rule "${c.name}" (line ${c.line}) above it matches every message and does not continue`);
      }
    }
    let groupsFile: string | undefined;
    if (doc.groups !== undefined) {
      if (typeof doc.groups !== 'string' || !doc.groups) this.problem(['groups'], 'expected the path of a groups file (YAML)');
      else groupsFile = resolve(dirname(this.file), doc.groups);
    }
    if (this.problems.length) return { ok: false, problems: this.problems };
    return { ok: true, policy: { file: this.file, rules, commands, commandActions, ...(groupsFile ? { groupsFile } : {}) } };
  }

  private unknownKeys(m: Doc, path: Path, known: readonly string[]): void {
    for (const k of Object.keys(m)) if (!known.includes(k)) this.problem([...path, k], `unknown key (expected one of: ${known.join(', ')})`, true);
  }

  private commands(raw: unknown): Map<string, CommandName> {
    const tokens = { ...DEFAULT_COMMANDS } as Record<CommandName, string | null>;
    if (raw !== undefined && raw !== null) {
      if (!isMap(raw)) this.problem(['commands'], 'expected a mapping of command → token, e.g. encrypt: "{encrypt}"');
      else {
        this.unknownKeys(raw, ['commands'], Object.keys(DEFAULT_COMMANDS));
        for (const [k, v] of Object.entries(raw)) {
          if (!(k in DEFAULT_COMMANDS)) continue;
          if (v === null || v === false) tokens[k as CommandName] = null;
          else if (typeof v === 'string' && v.trim().length >= 2 && !/\s/.test(v.trim())) tokens[k as CommandName] = v.trim();
          else this.problem(['commands', k], `${JSON.stringify(v)} — expected a token without spaces like "{${k}}", or false to disable it`);
        }
      }
    }
    const map = new Map<string, CommandName>();
    for (const [cmd, token] of Object.entries(tokens)) if (token) map.set(token.toLowerCase(), cmd as CommandName);
    return map;
  }

  private commandActions(raw: unknown): Map<CommandName, Action[]> {
    const map = new Map(Object.entries(DEFAULT_COMMAND_ACTIONS) as [CommandName, Action[]][]);
    if (raw === undefined || raw === null) return map;
    if (!isMap(raw)) {
      this.problem(['command_actions'], 'expected a mapping of command → list of actions');
      return map;
    }
    this.unknownKeys(raw, ['command_actions'], Object.keys(DEFAULT_COMMANDS));
    for (const [k, v] of Object.entries(raw)) if (k in DEFAULT_COMMANDS) map.set(k as CommandName, this.actions(v, ['command_actions', k]));
    return map;
  }

  private rule(raw: unknown, path: Path, names: Map<string, number>): Rule | null {
    if (!isMap(raw)) {
      this.problem(path, 'expected a rule: a mapping with name, when and do');
      return null;
    }
    const name = typeof raw.name === 'string' && raw.name.trim() ? raw.name.trim() : null;
    const line = this.line(path);
    this.rulePrefix = name ? `rule "${name}":` : `rule ${Number(path[1]) + 1}:`;
    if (!name) this.problem([...path, 'name'], 'every rule needs a name (it appears in logs and in `policy explain`)');
    else if (names.has(name)) this.problem([...path, 'name'], `another rule (line ${names.get(name)}) has the same name`);
    else names.set(name, line);
    this.unknownKeys(raw, path, ['name', 'when', 'do', 'continue']);
    const when: Condition = raw.when === undefined || raw.when === null ? { kind: 'always' } : this.condition(raw.when, [...path, 'when']);
    if (raw.do === undefined) this.problem(path, 'a rule needs "do:", the list of actions (use "do: [none]" to let mail pass unchanged)');
    const actions = raw.do === undefined ? [] : this.actions(raw.do, [...path, 'do']);
    if (raw.continue !== undefined && typeof raw.continue !== 'boolean') this.problem([...path, 'continue'], 'expected true or false');
    return { name: name ?? `rule ${Number(path[1]) + 1}`, line, when, actions, continue: raw.continue === true };
  }

  // ---- conditions ------------------------------------------------------------------------------

  private condition(raw: unknown, path: Path): Condition {
    if (!isMap(raw)) {
      this.problem(path, `expected a mapping of conditions (${CONDITION_KEYS.join(', ')})`);
      return { kind: 'always' };
    }
    const parts: Condition[] = [];
    for (const [key, v] of Object.entries(raw)) {
      const p = [...path, key];
      const c = this.one(key, v, p);
      if (c) parts.push(c);
    }
    return parts.length === 1 ? parts[0]! : { kind: 'all', of: parts };
  }

  private one(key: string, v: unknown, p: Path): Condition | null {
    switch (key) {
      case 'all':
      case 'any':
        if (!Array.isArray(v) || !v.length) {
          this.problem(p, `expected a list of conditions`);
          return null;
        }
        return { kind: key, of: v.map((c, i) => this.condition(c, [...p, i])) };
      case 'not':
        return { kind: 'not', of: this.condition(v, p) };
      case 'direction':
        return { kind: 'direction', is: this.oneOf(v, p, DIRECTIONS) };
      case 'sender':
      case 'recipient':
        return { kind: key, test: this.party(v, p) };
      case 'size':
        return { kind: 'size', test: this.number(v, p, true) };
      case 'attachments':
        return this.attachments(v, p);
      case 'priority':
        return { kind: 'priority', is: this.oneOf(v, p, PRIORITIES) };
      case 'sensitivity':
        return { kind: 'sensitivity', is: this.oneOf(v, p, SENSITIVITIES) };
      case 'encrypted':
      case 'signed':
        if (typeof v === 'boolean') return { kind: key, is: v };
        if (v === 'smime' || v === 'pgp') return { kind: key, is: v };
        this.problem(p, `${JSON.stringify(v)} — expected true, false, smime or pgp`);
        return null;
      case 'command':
        return { kind: 'command', is: this.oneOf(v, p, Object.keys(DEFAULT_COMMANDS) as CommandName[]) };
      case 'header':
        return this.header(v, p);
      case 'client':
        if (v === 'trusted' || v === 'untrusted') return { kind: 'client', trusted: v === 'trusted' };
        this.problem(p, `${JSON.stringify(v)} — expected trusted or untrusted`);
        return null;
      default:
        this.problem(p, `unknown condition (expected one of: ${CONDITION_KEYS.join(', ')})`, true);
        return null;
    }
  }

  private oneOf<T extends string>(v: unknown, p: Path, allowed: readonly T[]): T[] {
    const list = Array.isArray(v) ? v : [v];
    const out: T[] = [];
    for (const x of list) {
      if (typeof x === 'string' && allowed.includes(x.toLowerCase() as T)) out.push(x.toLowerCase() as T);
      else this.problem(p, `${JSON.stringify(x)} — expected ${allowed.join(', ')} (or a list of them)`);
    }
    return out;
  }

  /**
   * "x" exact (case-insensitive), "*.example.com" glob, "/re/" regular expression. Address and
   * domain patterns are canonicalised (core/address.ts) like the addresses they are compared
   * with, so a rule written "bücher.example" matches xn--bcher-kva.example and the reverse, and
   * "carol@other.example" matches "Carol"@OTHER.example; regular expressions see that canonical
   * comparison form (A-labels, lower case) as they are.
   */
  private patterns(v: unknown, p: Path, kind?: 'address' | 'domain'): StringTest[] {
    const list = Array.isArray(v) ? v : [v];
    const out: StringTest[] = [];
    for (const x of list) {
      if (typeof x !== 'string' || !x) {
        this.problem(p, `${JSON.stringify(x)} — expected a text, a glob like "*@example.com" or a /regular expression/`);
        continue;
      }
      const re = /^\/(.*)\/([imsu]*)$/s.exec(x);
      if (re) {
        try {
          out.push({ regex: new RegExp(re[1]!, re[2]!.includes('i') ? re[2] : `${re[2]}i`), source: x });
        } catch (err) {
          this.problem(p, `${x} — not a valid regular expression: ${(err as Error).message}`);
        }
      } else {
        let text = x;
        if (kind) {
          const c = kind === 'domain' || !x.includes('@') ? canonicalDomainPattern(x) : canonicalAddressPattern(x);
          if (c === null) {
            this.problem(p, `${JSON.stringify(x)} — not a valid ${kind === 'domain' || !x.includes('@') ? 'domain' : 'address'} pattern (invisible characters, or a label that is no valid domain name)`);
            continue;
          }
          text = c;
        }
        const body = text.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
        out.push({ glob: new RegExp(`^${body}$`, 'iu'), source: x });
      }
    }
    return out;
  }

  private party(v: unknown, p: Path): PartyTest {
    if (typeof v === 'string' || Array.isArray(v)) return { address: this.patterns(v, p, 'address') };
    if (!isMap(v)) {
      this.problem(p, 'expected an address pattern, a list of them, or a mapping (address, domain, group, attribute, has_key, internal)');
      return {};
    }
    this.unknownKeys(v, p, ['address', 'domain', 'group', 'attribute', 'has_key', 'internal']);
    const t: PartyTest = {};
    if (v.address !== undefined) t.address = this.patterns(v.address, [...p, 'address'], 'address');
    if (v.domain !== undefined) t.domain = this.patterns(v.domain, [...p, 'domain'], 'domain');
    if (v.group !== undefined) {
      const g = Array.isArray(v.group) ? v.group : [v.group];
      if (g.some((x) => typeof x !== 'string' || !x)) this.problem([...p, 'group'], 'expected a group name or a list of them');
      t.group = g.filter((x): x is string => typeof x === 'string');
    }
    if (v.attribute !== undefined) {
      if (!isMap(v.attribute)) this.problem([...p, 'attribute'], 'expected a mapping of attribute name → pattern, e.g. department: Finance');
      else t.attribute = Object.fromEntries(Object.entries(v.attribute).map(([k, x]) => [k.toLowerCase(), this.patterns(x, [...p, 'attribute', k])]));
    }
    if (v.has_key !== undefined) {
      const k = this.oneOf(v.has_key, [...p, 'has_key'], KEY_KINDS);
      if (k.length === 1) t.has_key = k[0]!;
      else if (k.length > 1) this.problem([...p, 'has_key'], 'expected one of smime, pgp, any, none');
    }
    if (v.internal !== undefined) {
      if (typeof v.internal !== 'boolean') this.problem([...p, 'internal'], 'expected true or false');
      else t.internal = v.internal;
    }
    return t;
  }

  /** "> 10MB", ">= 3", "< 1MB", 5 (=), or { over, under }. */
  private number(v: unknown, p: Path, sizes: boolean): NumberTest {
    const parse = (s: unknown) => (sizes ? parseSize(s) : typeof s === 'number' ? s : typeof s === 'string' && /^\d+$/.test(s.trim()) ? Number(s) : null);
    if (typeof v === 'number') return { op: '=', value: v };
    if (typeof v === 'string') {
      const m = /^\s*(<=|>=|<|>|=)?\s*(.+)$/.exec(v);
      const n = m ? parse(m[2]!.trim()) : null;
      if (m && n !== null) return { op: (m[1] as NumberTest['op']) ?? '=', value: n };
    }
    if (isMap(v) && (v.over !== undefined || v.under !== undefined) && Object.keys(v).length === 1) {
      const n = parse(v.over ?? v.under);
      if (n !== null) return { op: v.over !== undefined ? '>' : '<', value: n };
    }
    this.problem(p, `${JSON.stringify(v)} — expected a comparison like "> ${sizes ? '10MB' : '0'}" or { over: ${sizes ? '10MB' : '0'} }`);
    return { op: '>', value: Number.MAX_SAFE_INTEGER };
  }

  private attachments(v: unknown, p: Path): Condition | null {
    if (typeof v === 'boolean') return { kind: 'attachments', count: { op: v ? '>' : '=', value: 0 } };
    if (!isMap(v)) {
      this.problem(p, 'expected true/false or a mapping (count, name, type)');
      return null;
    }
    this.unknownKeys(v, p, ['count', 'name', 'type']);
    return {
      kind: 'attachments',
      ...(v.count !== undefined ? { count: this.number(v.count, [...p, 'count'], false) } : {}),
      ...(v.name !== undefined ? { name: this.patterns(v.name, [...p, 'name']) } : {}),
      ...(v.type !== undefined ? { type: this.patterns(v.type, [...p, 'type']) } : {}),
    };
  }

  /** { X-Foo: pattern } (or true: present), several headers meaning all of them. */
  private header(v: unknown, p: Path): Condition | null {
    if (!isMap(v) || !Object.keys(v).length) {
      this.problem(p, 'expected a mapping of header name → pattern (or true for "present")');
      return null;
    }
    const parts: Condition[] = Object.entries(v).map(([name, x]) => ({
      kind: 'header' as const,
      name: name.toLowerCase(),
      ...(x === true ? {} : { test: this.patterns(x, [...p, name]) }),
    }));
    return parts.length === 1 ? parts[0]! : { kind: 'all', of: parts };
  }

  // ---- actions ---------------------------------------------------------------------------------

  private actions(raw: unknown, path: Path): Action[] {
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.length) this.problem(path, 'expected at least one action (use "none" to let mail pass unchanged)');
    const out: Action[] = [];
    list.forEach((item, i) => {
      const p = Array.isArray(raw) ? [...path, i] : path;
      let name: string;
      let arg: unknown;
      if (typeof item === 'string') [name, arg] = [item, undefined];
      else if (isMap(item) && Object.keys(item).length === 1) [name, arg] = Object.entries(item)[0]!;
      else {
        this.problem(p, 'expected an action name, or a mapping with one action and its settings');
        return;
      }
      const a = this.action(name, arg, isMap(item) ? [...p, name] : p);
      if (a) out.push(a);
    });
    return out;
  }

  private addresses(v: unknown, p: Path): string[] {
    const list = Array.isArray(v) ? v : [v];
    const out = list.map((x) => (typeof x === 'string' && /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(x) ? canonicalAddress(x) : null)).filter((x): x is string => x !== null);
    if (out.length !== list.length || !out.length) this.problem(p, `${JSON.stringify(v)} — expected an e-mail address or a list of them`);
    return out;
  }

  private reason(v: unknown, p: Path, fallback: string): string {
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'string' && v.trim() && !/[\r\n]/.test(v)) return v.trim();
    this.problem(p, 'expected a one-line reason');
    return fallback;
  }

  /** encrypt's `smime: { cipher, rsa_padding }`: this rule's choice over the smime section of postern.yaml. */
  private smimeOptions(raw: unknown, p: (string | number)[]): SmimeEncryptOptions | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (!isMap(raw)) {
      this.problem(p, 'expected { cipher: aes-256-cbc|aes-128-cbc|aes-256-gcm|aes-128-gcm|capable, rsa_padding: pkcs1|oaep }');
      return undefined;
    }
    this.unknownKeys(raw, p, ['cipher', 'rsa_padding']);
    const out: SmimeEncryptOptions = {};
    if (raw.cipher !== undefined) {
      if (typeof raw.cipher === 'string' && (SMIME_CIPHERS as readonly string[]).includes(raw.cipher)) out.cipher = raw.cipher as SmimeEncryptOptions['cipher'];
      else this.problem([...p, 'cipher'], `${JSON.stringify(raw.cipher)} — expected one of ${SMIME_CIPHERS.join(', ')}`);
    }
    if (raw.rsa_padding !== undefined) {
      if (raw.rsa_padding === 'pkcs1' || raw.rsa_padding === 'oaep') out.rsa_padding = raw.rsa_padding;
      else this.problem([...p, 'rsa_padding'], `${JSON.stringify(raw.rsa_padding)} — expected pkcs1 or oaep`);
    }
    return out;
  }

  /** encrypt's `pdf: { cipher, reply }`: this rule's choice over the pdf section of postern.yaml. */
  private pdfOptions(raw: unknown, p: Path): PdfEncryptOptions | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (!isMap(raw)) {
      this.problem(p, 'expected { cipher: aes-256|aes-128, reply: true|false }');
      return undefined;
    }
    this.unknownKeys(raw, p, ['cipher', 'reply']);
    const out: PdfEncryptOptions = {};
    if (raw.cipher !== undefined) {
      if (raw.cipher === 'aes-256' || raw.cipher === 'aes-128') out.cipher = raw.cipher;
      else this.problem([...p, 'cipher'], `${JSON.stringify(raw.cipher)} — expected aes-256 or aes-128`);
    }
    if (raw.reply !== undefined) {
      if (typeof raw.reply === 'boolean') out.reply = raw.reply;
      else this.problem([...p, 'reply'], 'expected true or false');
    }
    return out;
  }

  private flags(v: unknown, p: Path, keys: string[], defaults: Record<string, boolean>): Record<string, boolean> {
    if (v === undefined || v === null) return defaults;
    if (!isMap(v)) {
      this.problem(p, `expected a mapping (${keys.join(', ')})`);
      return defaults;
    }
    this.unknownKeys(v, p, keys);
    const out = { ...defaults };
    for (const k of keys) {
      if (v[k] === undefined) continue;
      if (typeof v[k] !== 'boolean') this.problem([...p, k], 'expected true or false');
      else out[k] = v[k];
    }
    return out;
  }

  private action(name: string, arg: unknown, p: Path): Action | null {
    const noArg = (a: Action) => {
      if (arg !== undefined && arg !== null) this.problem(p, `"${name}" takes no settings`);
      return a;
    };
    switch (name) {
      case 'none':
      case 'pass':
        return noArg({ kind: 'none' });
      case 'decrypt': {
        if (arg === undefined || arg === null) return { kind: 'decrypt' };
        const f = this.flags(arg, p, ['pgp_attachments', 'pgp_inline_html'], { pgp_attachments: false, pgp_inline_html: false });
        return { kind: 'decrypt', ...(f.pgp_attachments ? { pgp_attachments: true } : {}), ...(f.pgp_inline_html ? { pgp_inline_html: true } : {}) };
      }
      case 'verify':
        return noArg({ kind: 'verify' });
      case 'notify_sender':
        return noArg({ kind: 'notify_sender' });
      case 'sign': {
        if (arg === undefined || arg === null) return { kind: 'sign', method: 'auto' };
        if (isMap(arg)) this.unknownKeys(arg, p, ['method']);
        const m = isMap(arg) ? arg.method : undefined;
        if (m === 'smime' || m === 'pgp' || m === 'auto') return { kind: 'sign', method: m };
        this.problem(p, `${JSON.stringify(arg)} — expected { method: smime | pgp | auto }`);
        return null;
      }
      case 'encrypt': {
        const a = arg ?? {};
        if (!isMap(a)) {
          this.problem(p, 'expected { methods: [smime, pgp, pdf | webmail], require: true|false, otherwise: hold|bounce }');
          return null;
        }
        this.unknownKeys(a, p, ['methods', 'require', 'otherwise', 'smime', 'pgp', 'pdf', 'header_protection']);
        const asked = a.methods === undefined ? undefined : Array.isArray(a.methods) ? a.methods : [a.methods];
        const methods: EncryptMethod[] = asked === undefined ? [...METHODS] : this.oneOf(asked, [...p, 'methods'], ENCRYPT_METHODS);
        // PDF and webmail need no key, so a method after either in the list is never reached: almost surely a slip.
        const alwaysAt = methods.findIndex((m) => (ALWAYS_MADE as readonly string[]).includes(m));
        if (alwaysAt >= 0 && alwaysAt < methods.length - 1) {
          const m = methods[alwaysAt]!;
          this.problem([...p, 'methods'], `${m} can always be made, so ${methods.slice(alwaysAt + 1).join(', ')} after it is never used: put ${m} last`);
        }
        const pdf = this.pdfOptions(a.pdf, [...p, 'pdf']);
        if (a.require !== undefined && typeof a.require !== 'boolean') this.problem([...p, 'require'], 'expected true or false');
        const otherwise = a.otherwise ?? 'hold';
        if (otherwise !== 'hold' && otherwise !== 'bounce') this.problem([...p, 'otherwise'], `${JSON.stringify(otherwise)} — expected hold or bounce`);
        const smime = this.smimeOptions(a.smime, [...p, 'smime']);
        let pgp: { inline: boolean } | undefined;
        if (a.pgp !== undefined && a.pgp !== null) {
          if (!isMap(a.pgp)) this.problem([...p, 'pgp'], 'expected { inline: true|false }');
          else {
            this.unknownKeys(a.pgp, [...p, 'pgp'], ['inline']);
            if (a.pgp.inline !== undefined && typeof a.pgp.inline !== 'boolean') this.problem([...p, 'pgp', 'inline'], 'expected true or false');
            pgp = { inline: a.pgp.inline === true };
          }
        }
        const hp = a.header_protection;
        if (hp !== undefined && hp !== 'obscure' && hp !== 'copy' && hp !== 'off') this.problem([...p, 'header_protection'], `${JSON.stringify(hp)} — expected obscure, copy or off`);
        const headerProtection = hp === 'obscure' || hp === 'copy' || hp === 'off' ? { header_protection: hp as 'obscure' | 'copy' | 'off' } : {};
        return { kind: 'encrypt', methods, require: a.require === true, otherwise: otherwise === 'bounce' ? 'bounce' : 'hold', ...(smime ? { smime } : {}), ...(pgp ? { pgp } : {}), ...(pdf ? { pdf } : {}), ...headerProtection };
      }
      case 'generate_keys': {
        const f = this.flags(arg, p, ['smime', 'pgp'], { smime: true, pgp: false });
        return { kind: 'generate_keys', smime: f.smime!, pgp: f.pgp! };
      }
      case 'send_keys': {
        const f = this.flags(arg, p, ['smime', 'pgp'], { smime: true, pgp: true });
        return { kind: 'send_keys', smime: f.smime!, pgp: f.pgp! };
      }
      case 'add_header': {
        if (!isMap(arg) || Object.keys(arg).length !== 1) {
          this.problem(p, 'expected { Header-Name: value } (one header per add_header)');
          return null;
        }
        const [h, val] = Object.entries(arg)[0]!;
        if (!/^[!-9;-~]+$/.test(h)) this.problem(p, `${JSON.stringify(h)} is not a header name`);
        if (typeof val !== 'string' || /[\r\n]/.test(val)) this.problem([...p, h], 'expected a one-line value');
        return { kind: 'add_header', name: h, value: String(val) };
      }
      case 'remove_header': {
        const list = (Array.isArray(arg) ? arg : [arg]).filter((x): x is string => typeof x === 'string' && /^[!-9;-~]+$/.test(x));
        if (!list.length) this.problem(p, 'expected a header name or a list of them');
        return { kind: 'remove_header', names: list };
      }
      case 'copy':
      case 'redirect':
      case 'alert':
        return { kind: name, to: this.addresses(arg, p) };
      case 'hold':
        return { kind: 'hold', reason: this.reason(arg, p, 'held by policy') };
      case 'bounce':
        return { kind: 'bounce', reason: this.reason(arg, p, 'rejected by policy') };
      case 'delete':
        return { kind: 'delete', reason: this.reason(arg, p, 'deleted by policy') };
      default:
        this.problem(p, `unknown action "${name}" (expected one of: ${ACTIONS.join(', ')})`);
        return null;
    }
  }
}

function isMap(v: unknown): v is Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
