/**
 * What a backup holds: the manifest (the first thing inside the encrypted stream) and the files
 * the config names. A backup is made on one machine and restored on another, so every name in a
 * manifest is checked on the way back in as if a stranger wrote it.
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Config } from '../../config/types.js';
import { loadPolicy } from '../../policy/index.js';
import { BackupError, type BackupReader } from './format.js';

export type EntryKind = 'config' | 'kek-file' | 'kek-salt' | 'portal' | 'keystore';

export interface ManifestEntry {
  kind: EntryKind;
  /** For config files: the path relative to the config directory ('/'-separated); else the kind's file name. */
  name: string;
  size: number;
  /** Permission bits it had (config files keep theirs, within 0755). */
  mode: number;
}

/** The KEK as the backed-up gateway had it (PIN and passphrase variables by name only). */
export type ManifestKek =
  | { kind: 'file' }
  | { kind: 'passphrase'; passphrase_env: string }
  | { kind: 'pkcs11'; token: string; key_label: string };

export interface Manifest {
  hostname: string;
  /** Absolute paths on the machine it was made on, for the admin's information. */
  config_file: string;
  data_dir: string;
  kek: ManifestKek;
  /** In stream order: config files, the KEK file or salt, portal.db, postern.db. */
  entries: ManifestEntry[];
  /** Files the config names that are not inside (outside the config directory), and why. */
  left_out: { key: string; path: string; reason: string }[];
}

/** Entry order in the stream, so a restore sees the config before the data it is checked against. */
export const ENTRY_ORDER: EntryKind[] = ['config', 'kek-file', 'kek-salt', 'portal', 'keystore'];

/** A config file to copy: where it is now and its name inside the backup. */
export interface ConfigFile {
  key: string;
  path: string;
  name: string;
}

/**
 * The files postern.yaml names, with the config key that names them: postern.yaml itself, the
 * policy and the groups file it names, TLS certificates and keys (smtp, portal, admin), logos, fonts, LDAP trust
 * anchors and password files. Those inside the config directory go into the backup under their
 * relative name (so relative paths in the restored postern.yaml still work); those elsewhere are
 * listed as left out: a restore on another machine could not put them where the config says.
 */
export async function configFiles(config: Config): Promise<{ files: ConfigFile[]; leftOut: Manifest['left_out'] }> {
  const named: { key: string; path: string }[] = [
    { key: 'postern.yaml', path: config.file },
    { key: 'policy', path: config.policy.file },
  ];
  const groups = await policyGroupsFile(config);
  if (groups) named.push({ key: 'policy: groups', path: groups });
  const tls = (key: string, t: { cert: string; key: string } | undefined) => {
    if (t) named.push({ key: `${key}.cert`, path: t.cert }, { key: `${key}.key`, path: t.key });
  };
  tls('smtp.tls', config.smtp.tls);
  tls('portal.tls', config.portal.tls);
  tls('admin.tls', config.admin.tls);
  if (config.portal.logo) named.push({ key: 'portal.logo', path: config.portal.logo });
  if (config.pdf.logo) named.push({ key: 'pdf.logo', path: config.pdf.logo });
  (config.pdf.fonts ?? []).forEach((f, i) => named.push({ key: `pdf.fonts[${i}]`, path: f }));
  config.ldap.servers.forEach((s, i) => {
    if (s.tls.ca_file) named.push({ key: `ldap.servers[${i}].tls.ca_file`, path: s.tls.ca_file });
    if (s.password_file) named.push({ key: `ldap.servers[${i}].password_file`, path: s.password_file });
  });

  const base = dirname(config.file);
  const files: ConfigFile[] = [];
  const leftOut: Manifest['left_out'] = [];
  const seen = new Set<string>();
  for (const n of named) {
    if (seen.has(n.path)) continue;
    seen.add(n.path);
    const rel = relative(base, n.path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      leftOut.push({ ...n, reason: 'outside the config directory' });
      continue;
    }
    files.push({ ...n, name: rel.split(sep).join('/') });
  }
  return { files, leftOut };
}

/** The groups file the policy names, if it names one (as the gateway resolves it). */
async function policyGroupsFile(config: Config): Promise<string | undefined> {
  const policy = await loadPolicy(config).catch(() => {
    throw new BackupError(`the policy ${config.policy.file} does not load (see postern check): a backup of it would not start`);
  });
  return policy.groupsFile;
}

/** Size and permission bits of a file that must exist. */
export async function fileFacts(path: string, what: string): Promise<{ size: number; mode: number }> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new BackupError(`${what} ${path} is not a regular file`);
    return { size: st.size, mode: st.mode & 0o777 };
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Far above any real manifest (a few hundred bytes a file), far below what would strain memory. */
const MAX_MANIFEST = 16 * 1024 * 1024;

const NAME_PART = /^[^\x00-\x1f\x7f/\\]+$/;

/**
 * The manifest read back from a backup, checked: known kinds in stream order, at most one of each
 * data kind, and config names that stay inside the directory they are restored to.
 */
export function checkManifest(doc: unknown): Manifest {
  const bad = (why: string) => new BackupError(`the backup's manifest is not valid (${why})`);
  if (typeof doc !== 'object' || doc === null) throw bad('not an object');
  const m = doc as Manifest;
  if (!Array.isArray(m.entries) || typeof m.kek !== 'object' || m.kek === null || !['file', 'passphrase', 'pkcs11'].includes(m.kek.kind)) throw bad('entries or KEK missing');
  let last = 0;
  const names = new Set<string>();
  for (const e of m.entries) {
    const at = ENTRY_ORDER.indexOf(e?.kind);
    if (at < 0) throw bad(`unknown entry kind ${JSON.stringify(e?.kind)}`);
    if (at < last || (at === last && e.kind !== 'config' && names.has(e.kind))) throw bad('entries out of order or repeated');
    last = at;
    if (!Number.isSafeInteger(e.size) || e.size < 0 || !Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o777) throw bad('an entry has an invalid size or mode');
    if (e.kind === 'config') {
      const parts = typeof e.name === 'string' ? e.name.split('/') : [];
      if (!parts.length || e.name.length > 1024 || parts.some((p) => p === '.' || p === '..' || !NAME_PART.test(p))) throw bad(`config file name ${JSON.stringify(e.name)}`);
      if (names.has(`config:${e.name}`)) throw bad(`config file ${JSON.stringify(e.name)} twice`);
      names.add(`config:${e.name}`);
    } else names.add(e.kind);
  }
  const kekEntry = m.kek.kind === 'file' ? 'kek-file' : m.kek.kind === 'passphrase' ? 'kek-salt' : undefined;
  if (!names.has('keystore')) throw bad('no keystore in it');
  if ((kekEntry && !names.has(kekEntry)) || (!kekEntry && (names.has('kek-file') || names.has('kek-salt')))) throw bad('its KEK entry does not match its KEK kind');
  if (typeof m.config_file !== 'string' || !m.entries.some((e) => e.kind === 'config' && resolve('/', e.name) === resolve('/', configName(m)))) throw bad('postern.yaml is not in it');
  return m;
}

/** The name of postern.yaml inside the backup (the config file's own name). */
export function configName(m: Pick<Manifest, 'config_file'>): string {
  return m.config_file.split(/[\\/]/).pop() ?? 'postern.yaml';
}

/** The manifest at the start of the encrypted stream (a length, then JSON), checked. */
export async function readManifest(reader: BackupReader): Promise<Manifest> {
  const len = (await reader.read(4)).readUInt32BE(0);
  if (len > MAX_MANIFEST) throw new BackupError(`the backup's manifest claims ${len} bytes (damaged, or not written by Postern)`);
  let doc: unknown;
  try {
    doc = JSON.parse((await reader.read(len)).toString('utf8'));
  } catch {
    throw new BackupError('the backup\'s manifest is not valid JSON (damaged, or not written by Postern)');
  }
  return checkManifest(doc);
}
