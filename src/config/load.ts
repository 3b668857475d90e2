/**
 * postern.yaml and the policy file it names → a frozen Config. Every problem is collected (not just
 * the first) with the file, line and column of the offending key or value, so `postern check`
 * shows the admin everything to fix in one go.
 */
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pdfConfig } from './pdf.js';
import { webmailConfig } from './webmail.js';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { isIP } from 'node:net';
import { canonicalDomainPattern } from '../core/address.js';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import { DECOMPRESSED_FACTOR } from '../core/limits.js';
import { asciiDomain, rawConfigSchema, type RawConfig, type RawRouteTarget } from './schema.js';
import type { Config, Route, RouteTarget, TlsLevel } from './types.js';
import { checkCaBundle, smtpRouteTls, smtpsRouteTls, tlsLevel } from './relay-tls.js';
import { validateTemplate } from '../directory/ldap-filter.js';

export type CheckResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

/** Load and validate; throws ConfigError with every problem. */
export async function loadConfig(file: string): Promise<Config> {
  const result = await checkConfig(file);
  if (!result.ok) throw new ConfigError(result.problems);
  return result.config;
}

export async function checkConfig(file: string): Promise<CheckResult> {
  const path = resolve(file);
  const source = await readSource(path);
  if (typeof source !== 'string') return { ok: false, problems: [source] };
  return checkConfigText(source, path);
}

/** Validate `text` as if it were the content of `file` (which names the policy file and anchors relative paths). */
export async function checkConfigText(text: string, file: string): Promise<CheckResult> {
  const yaml = parseYaml(text, file);
  if (!yaml.ok) return yaml;
  const parsed = rawConfigSchema.safeParse(yaml.doc.toJS() ?? {}, { error: adminMessage });
  if (!parsed.success) return { ok: false, problems: parsed.error.issues.map((i) => issueProblem(i, yaml, file)) };

  const raw = parsed.data;
  const problems: ConfigProblem[] = [];
  const at = (key: (string | number)[], message: string) => problems.push(problemAt(yaml, file, key, message));
  const base = dirname(file);
  const dataDir = resolve(base, raw.data_dir);
  const inData = (p: string) => resolve(dataDir, p);

  const relayTls = tlsLevel(raw.relay.tls);
  const routes: Route[] = [];
  for (const [pattern, target] of Object.entries(raw.relay.routes)) {
    const t = routeTarget(target, base, relayTls);
    if (typeof t === 'string') at(['relay', 'routes', pattern], t);
    // Canonical like the recipient domains they are compared with: "*.bücher.example" is "*.xn--bcher-kva.example".
    else routes.push({ pattern: pattern.trim() === '*' ? '*' : (canonicalDomainPattern(pattern) ?? pattern.toLowerCase()), target: t });
  }

  const caFile = raw.relay.tls_ca_file !== undefined ? resolve(base, raw.relay.tls_ca_file) : undefined;
  if (caFile) {
    const err = await checkCaBundle(caFile);
    if (err) at(['relay', 'tls_ca_file'], `${caFile}: ${err}`);
  }

  let tls: Config['smtp']['tls'];
  if (raw.smtp.tls) {
    tls = { cert: resolve(base, raw.smtp.tls.cert), key: resolve(base, raw.smtp.tls.key) };
    for (const k of ['cert', 'key'] as const) {
      const err = await readable(tls[k]);
      if (err) at(['smtp', 'tls', k], `${tls[k]}: ${err}`);
    }
  }

  let portalTls: Config['portal']['tls'];
  if (raw.portal.tls) {
    portalTls = { cert: resolve(base, raw.portal.tls.cert), key: resolve(base, raw.portal.tls.key) };
    for (const k of ['cert', 'key'] as const) {
      const err = await readable(portalTls[k]);
      if (err) at(['portal', 'tls', k], `${portalTls[k]}: ${err}`);
    }
  }

  const portalLogo = raw.portal.logo !== undefined ? resolve(base, raw.portal.logo) : undefined;
  if (portalLogo) {
    const err = await readable(portalLogo);
    if (err) at(['portal', 'logo'], `${portalLogo}: ${err}`);
    else if (!/\.(png|jpe?g|svg)$/i.test(portalLogo)) at(['portal', 'logo'], `${portalLogo}: expected a PNG, JPEG or SVG file (.png, .jpg, .jpeg, .svg)`);
  }
  // Plain HTTP only where nobody but this machine can listen in (tests, or a TLS proxy in front).
  if (!raw.portal.tls) {
    raw.portal.listen.forEach((l, i) => {
      if (!isLoopback(l.host)) at(['portal', 'listen', i], `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port} is not a loopback address: the portal takes passwords, so it needs portal.tls (or listen on 127.0.0.1 behind a TLS proxy)`);
    });
  }
  let adminTls: Config['admin']['tls'];
  if (raw.admin.tls) {
    adminTls = { cert: resolve(base, raw.admin.tls.cert), key: resolve(base, raw.admin.tls.key) };
    for (const k of ['cert', 'key'] as const) {
      const err = await readable(adminTls[k]);
      if (err) at(['admin', 'tls', k], `${adminTls[k]}: ${err}`);
    }
  }
  if (!raw.admin.tls) {
    raw.admin.listen.forEach((l, i) => {
      if (!isLoopback(l.host)) at(['admin', 'listen', i], `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port} is not a loopback address: the admin console takes passwords and holds keys, so it needs admin.tls (or listen on 127.0.0.1 behind a TLS proxy)`);
    });
  }
  const ldap = await ldapConfig(raw.ldap, base, at);
  const pdf = await pdfConfig(raw, base, readable, at);
  const webmail = webmailConfig(raw, at);
  // A secret named here would reach smtpd and the portal too: only the worker gets it (roles/env).
  const pg = raw.keystore.postgres;
  const secretVars = new Set([kekSecretVariable(raw.kek), ...raw.ldap.servers.map((s) => s.password_env), pg?.password_env, pg?.portal?.password_env].filter(Boolean));
  raw.import_environment.forEach((entry, i) => {
    const name = entry.split('=')[0]!;
    if (secretVars.has(name)) at(['import_environment', i], `${name} holds a secret (the KEK's, an LDAP or a PostgreSQL password): it reaches only the roles that need it, never every role`);
  });

  const policyFile = resolve(base, raw.policy);
  const policy = await loadPolicyDocument(policyFile);
  if (!policy.ok) {
    problems.push(...policy.problems);
    if (policy.problems.some((p) => p.line === 0)) at(['policy'], `cannot use ${policyFile}`);
  }

  if (problems.length > 0) return { ok: false, problems };
  const config: Config = {
    file,
    hostname: raw.hostname,
    data_dir: dataDir,
    internal_domains: [...new Set(raw.internal_domains)],
    trusted_networks: raw.trusted_networks.map((n) => n.trim()),
    smtp: { ...raw.smtp, tls, min_free_space: raw.smtp.min_free_space ?? defaultMinFreeSpace(raw.smtp.max_message_size) },
    relay: { ...raw.relay, routes, tls: relayTls, ...(caFile ? { tls_ca_file: caFile } : {}) },
    keystore: {
      sqlite: inData(raw.keystore.sqlite),
      ...(raw.keystore.postgres ? { postgres: postgresConfig(raw.keystore.postgres, base) } : {}),
    },
    cluster: { node: raw.cluster.node ?? raw.hostname, heartbeat: raw.cluster.heartbeat },
    ca: raw.ca,
    smime: raw.smime,
    header_protection: raw.header_protection,
    revocation: raw.revocation,
    kek: kekConfig(raw, inData),
    discovery: raw.discovery,
    portal: {
      ...raw.portal,
      tls: portalTls,
      ...(raw.portal.url ? { url: raw.portal.url.replace(/\/+$/, '') } : {}),
      organisation: raw.portal.organisation ?? pdf.organisation,
      ...((portalLogo ?? pdf.logo) ? { logo: portalLogo ?? pdf.logo } : {}),
    },
    admin: { ...raw.admin, tls: adminTls },
    pdf,
    webmail,
    ldap,
    policy: { file: policyFile, document: policy.ok ? policy.document : null },
    workers: raw.workers,
    worker: { transform_timeout: raw.worker.transform_timeout, retry: raw.worker.retry, max_decompressed_size: raw.worker.max_decompressed_size ?? DECOMPRESSED_FACTOR * raw.smtp.max_message_size },
    user: raw.user,
    import_environment: raw.import_environment,
    log: raw.log,
  };
  return { ok: true, config: deepFreeze(config) };
}

/** 127.0.0.0/8, ::1, localhost: where plain HTTP reaches no one but this machine. */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h === '::ffff:127.0.0.1';
}

/**
 * The policy file is YAML whose rules the policy module validates (issue 5); here it must at least
 * parse, be a mapping, and have `rules` as a list, so a broken file is caught before a reload.
 */
export async function loadPolicyDocument(file: string): Promise<{ ok: true; document: unknown } | { ok: false; problems: ConfigProblem[] }> {
  const source = await readSource(file);
  if (typeof source !== 'string') return { ok: false, problems: [source] };
  const yaml = parseYaml(source, file);
  if (!yaml.ok) return yaml;
  const doc = yaml.doc.toJS() ?? {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    return { ok: false, problems: [problemAt(yaml, file, [], 'expected a mapping with a "rules:" list')] };
  }
  const rules = (doc as Record<string, unknown>).rules;
  if (rules !== undefined && rules !== null && !Array.isArray(rules)) {
    return { ok: false, problems: [problemAt(yaml, file, ['rules'], 'expected a list of rules')] };
  }
  return { ok: true, document: doc };
}

// ---- routes, kek ---------------------------------------------------------------------------

function routeTarget(raw: RawRouteTarget, base: string, fallback: TlsLevel): RouteTarget | string {
  const via = raw.via.trim();
  const expected = `${JSON.stringify(via)} — expected mx, smtp://host:port, smtps://host:port or maildir:PATH`;
  if (via === 'mx') return { kind: 'mx', tls: raw.tls ? tlsLevel(raw.tls) : fallback };
  if (via.startsWith('maildir:')) {
    const p = via.slice('maildir:'.length);
    if (!p) return expected;
    if (raw.tls) return 'tls: does not apply to a maildir route';
    return { kind: 'maildir', path: resolve(base, p) };
  }
  const m = /^(smtps?):\/\/(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d{1,5}))?\/?$/.exec(via);
  if (!m) return expected;
  const host = m[2] ?? m[3]!;
  const scheme = m[1] as 'smtp' | 'smtps';
  const port = m[4] ? Number(m[4]) : scheme === 'smtps' ? 465 : 25;
  if (port < 1 || port > 65535 || (!m[2] && isIP(host) === 0 && asciiDomain(host) === null)) return expected;
  if (scheme === 'smtps') {
    const tls = smtpsRouteTls(raw.tls, fallback);
    if (typeof tls === 'object') return tls.error;
    return { kind: 'smtps', host, port, ...(tls ? { tls } : {}) };
  }
  const tls = smtpRouteTls(raw.tls, fallback);
  if (typeof tls === 'object') return tls.error;
  return { kind: 'smtp', host, port, tls };
}

/**
 * smtp.min_free_space when not given: 100 MB, or room for two messages of the largest allowed
 * size if that is more (the worker writes its output beside its input before removing it).
 */
export function defaultMinFreeSpace(maxMessageSize: number): number {
  return Math.max(100 * 1024 * 1024, 2 * maxMessageSize);
}

function kekSecretVariable(k: RawConfig['kek']): string | undefined {
  return 'passphrase_env' in k ? k.passphrase_env : 'pkcs11' in k ? k.pkcs11.pin_env : undefined;
}

function kekConfig(raw: RawConfig, inData: (p: string) => string): Config['kek'] {
  const k = raw.kek;
  if ('file' in k) return { file: inData(k.file) };
  if ('passphrase_env' in k) return { passphrase_env: k.passphrase_env };
  return { pkcs11: { ...k.pkcs11, module: resolve(k.pkcs11.module) } };
}

/** ldap: paths resolved and checked, filter templates validated, member_of "" / null → absent. */
async function ldapConfig(raw: RawConfig['ldap'], base: string, at: (key: (string | number)[], message: string) => void): Promise<Config['ldap']> {
  const servers: Config['ldap']['servers'] = [];
  for (const [i, s] of raw.servers.entries()) {
    const key = ['ldap', 'servers', i];
    const userProblem = validateTemplate(s.user_filter, ['address', 'local', 'domain'], ['address', 'local']);
    if (userProblem) at([...key, 'user_filter'], userProblem);
    const groupProblem = s.group_search ? validateTemplate(s.group_search.filter, ['dn', 'address'], ['dn', 'address']) : null;
    if (groupProblem) at([...key, 'group_search', 'filter'], groupProblem);
    const caFile = s.tls.ca_file !== undefined ? resolve(base, s.tls.ca_file) : undefined;
    const passwordFile = s.password_file !== undefined ? resolve(base, s.password_file) : undefined;
    for (const [k, f] of [[['tls', 'ca_file'], caFile], [['password_file'], passwordFile]] as const) {
      const err = f ? await readable(f) : null;
      if (err) at([...key, ...k], `${f}: ${err}`);
    }
    const { member_of, ...attributes } = s.attributes;
    servers.push({
      ...s,
      tls: { reject_unauthorized: s.tls.reject_unauthorized, ...(caFile ? { ca_file: caFile } : {}) },
      ...(passwordFile ? { password_file: passwordFile } : {}),
      attributes: { ...attributes, ...(member_of ? { member_of } : {}) },
    });
  }
  return { ...raw, servers };
}

// ---- YAML and positions --------------------------------------------------------------------

export interface ParsedYaml {
  ok: true;
  doc: Document.Parsed;
  lines: LineCounter;
}

export function parseYaml(text: string, file: string): ParsedYaml | { ok: false; problems: ConfigProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, column: pos.col, key: '', message: `YAML: ${e.message.split('\n')[0]}` };
      }),
    };
  }
  return { ok: true, doc, lines };
}

/** The problem at `path`: the value's node when it exists, else the nearest existing parent. */
export function problemAt(yaml: ParsedYaml, file: string, path: (string | number)[], message: string, atKey = false): ConfigProblem {
  let node: Node | null = null;
  for (let n = path.length; n >= 0 && !node; n--) {
    const sub = path.slice(0, n);
    if (atKey && n === path.length && n > 0) node = keyNode(yaml.doc, sub);
    else node = (n === 0 ? (yaml.doc.contents as Node | null) : (yaml.doc.getIn(sub, true) as Node | undefined)) ?? null;
    if (node && !node.range) node = null;
  }
  const pos = node?.range ? yaml.lines.linePos(node.range[0]) : { line: 1, col: 1 };
  return { file, line: pos.line, column: pos.col, key: path.join('.'), message };
}

/** The key node of the last path element (for "unknown key" problems, which have no value to point at). */
function keyNode(doc: Document.Parsed, path: (string | number)[]): Node | null {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return null;
  const last = path[path.length - 1];
  for (const pair of parent.items) {
    if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === String(last)) return pair.key;
  }
  return null;
}

type Issue = z.core.$ZodIssue;

function issueProblem(issue: Issue, yaml: ParsedYaml, file: string): ConfigProblem {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys') {
    const [first] = issue.keys;
    const known = knownKeys(path);
    const hint = first && known ? suggestion(first, known) : '';
    return problemAt(yaml, file, [...path, first ?? ''], `unknown key${hint}`, true);
  }
  if (issue.code === 'invalid_key') return problemAt(yaml, file, path, issue.issues[0]?.message ?? issue.message, true);
  return problemAt(yaml, file, path, issue.message);
}

/** Wording for the generic schema errors, in the admin's terms. */
function adminMessage(iss: z.core.$ZodRawIssue): string | undefined {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    return `${describe(iss.input)} — expected ${article(iss.expected)}`;
  }
  if (iss.code === 'invalid_value') return `${describe(iss.input)} — expected one of: ${iss.values.map(String).join(', ')}`;
  if (iss.code === 'invalid_union') {
    const input = iss.input;
    if (input && typeof input === 'object' && !Array.isArray(input)) return `expected one of the documented forms (see config/postern.yaml)`;
    return `${describe(input)} — expected one of the documented forms (see config/postern.yaml)`;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'empty value';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

function article(expected: string): string {
  if (expected === 'array') return 'a list';
  if (expected === 'object') return 'a mapping';
  if (expected === 'int') return 'a whole number';
  if (expected === 'boolean') return 'true or false';
  return `a ${expected}`;
}

function knownKeys(path: (string | number)[]): string[] | null {
  let shape: unknown = rawConfigSchema.shape;
  for (const p of path) {
    const field = (shape as Record<string, unknown>)?.[String(p)];
    const inner = unwrap(field);
    shape = (inner as { shape?: unknown } | null)?.shape;
    if (!shape) return null;
  }
  return Object.keys(shape as object);
}

function unwrap(s: unknown): unknown {
  let cur = s as { def?: { innerType?: unknown; in?: unknown } } | undefined;
  for (let i = 0; i < 5 && cur?.def; i++) {
    const next = cur.def.innerType ?? cur.def.in;
    if (!next) break;
    cur = next as typeof cur;
  }
  return cur;
}

function suggestion(key: string, known: string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  const list = ` (known keys: ${known.join(', ')})`;
  return bestD <= Math.max(2, Math.floor(key.length / 4)) ? ` — did you mean "${best}"?` : list;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

// ---- files ---------------------------------------------------------------------------------

async function readSource(file: string): Promise<string | ConfigProblem> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    return { file, line: 0, column: 0, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

async function readable(file: string): Promise<string | null> {
  try {
    await access(file, constants.R_OK);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not readable (${(err as NodeJS.ErrnoException).code})`;
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}


type RawPgLogin = { url: string; password_env?: string | undefined; password_file?: string | undefined };

function pgLogin(p: RawPgLogin, base: string): import('./types.js').PostgresLogin {
  return {
    url: p.url,
    ...(p.password_env ? { password_env: p.password_env } : {}),
    ...(p.password_file ? { password_file: resolve(base, p.password_file) } : {}),
  };
}

function postgresConfig(p: RawPgLogin & { pool: number; portal?: RawPgLogin | undefined }, base: string): NonNullable<import('./types.js').KeystoreConfig['postgres']> {
  return { ...pgLogin(p, base), pool: p.pool, ...(p.portal ? { portal: pgLogin(p.portal, base) } : {}) };
}
