/**
 * `postern backup FILE`, `postern restore FILE [--config-dir DIR] [--force]` and `postern restore
 * FILE --check` (keystore/backup/ holds the logic). The passphrase comes from an environment
 * variable, never the command line.
 */
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { checkPassphrase, makeBackup, restoreBackup, verifyBackup, type ManifestKek } from '../keystore/backup/index.js';
import { lookupAccount } from '../supervisor/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { cliActor } from './keys-common.js';

const DEFAULT_PASSPHRASE_ENV = 'POSTERN_BACKUP_PASSPHRASE';
const BACKUP_USAGE = 'backup FILE [--passphrase-env VAR]';
const RESTORE_USAGE = 'restore FILE [--passphrase-env VAR] [--config-dir DIR] [--force] | restore FILE --check [--passphrase-env VAR]';

function passphraseOf(name: string | undefined): string {
  const variable = name ?? DEFAULT_PASSPHRASE_ENV;
  return checkPassphrase(process.env[variable], variable);
}

function oneFile(positionals: string[], usage: string): string {
  if (positionals.length !== 1 || !positionals[0]) throw new UsageError(`usage: postern ${usage}`);
  return positionals[0];
}

export async function backupCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { 'passphrase-env': { type: 'string' } });
  const file = oneFile(positionals, BACKUP_USAGE);
  const passphrase = passphraseOf(values['passphrase-env']);
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const s = await makeBackup(config, file, { passphrase, actor: cliActor() });
  io.out(`written: ${s.file} (${s.bytes} bytes): ${s.entries.map((e) => e.name).join(', ')}`);
  io.out(kekNote(s.kek));
  for (const l of s.leftOut) io.err(`postern: not in the backup: ${l.key} ${l.path} (${l.reason}); copy it yourself`);
  return 0;
}

export async function restoreCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    'passphrase-env': { type: 'string' },
    'config-dir': { type: 'string' },
    force: { type: 'boolean' },
    check: { type: 'boolean' },
  });
  const file = oneFile(positionals, RESTORE_USAGE);
  if (values.check) {
    if (values['config-dir'] !== undefined || values.force || values.config !== undefined) throw new UsageError('restore --check reads the backup only: it takes no -c, --config-dir or --force');
    return check(file, passphraseOf(values['passphrase-env']), io);
  }
  if (values['config-dir'] !== undefined && values.config !== undefined) {
    throw new UsageError('give either -c (restore the data under that config) or --config-dir (restore the config too), not both');
  }
  const passphrase = passphraseOf(values['passphrase-env']);
  const target = values['config-dir'] !== undefined ? { configDir: values['config-dir'] } : { config: await loadConfig(values.config ?? DEFAULT_CONFIG) };
  const s = await restoreBackup(file, { passphrase, actor: cliActor(), force: values.force === true, portalOwner, ...target });
  io.out(`restored: the backup of ${s.hostname} made ${s.header.created} (Postern ${s.header.postern})`);
  for (const f of s.restored) io.out(`  ${f}`);
  for (const l of s.leftOut) io.err(`postern: the backup does not hold ${l.key} ${l.path} (${l.reason}): put it there before starting`);
  if (s.kek.kind === 'pkcs11') io.out(`the keys are sealed by the PKCS#11 token "${s.kek.token}" (key "${s.kek.key_label}"), which this gateway uses too`);
  io.out(`start the gateway with: postern start -c ${s.configFile}`);
  return 0;
}

async function check(file: string, passphrase: string, io: CliIo): Promise<number> {
  const { header, manifest } = await verifyBackup(file, passphrase);
  io.out(`whole and authentic: the backup of ${manifest.hostname} made ${header.created} (Postern ${header.postern}, format ${header.format})`);
  io.out(`config ${manifest.config_file}, data_dir ${manifest.data_dir}`);
  for (const e of manifest.entries) io.out(`  ${e.kind}\t${e.size}\t${e.name}`);
  for (const l of manifest.left_out) io.out(`  not inside: ${l.key} ${l.path} (${l.reason})`);
  io.out(kekNote(manifest.kek));
  return 0;
}

function kekNote(kek: ManifestKek): string {
  if (kek.kind === 'file') return 'the backup holds the KEK file: keep it as safe as the keys themselves';
  if (kek.kind === 'passphrase') return `the backup holds the KEK's salt, not its passphrase: a restore needs ${kek.passphrase_env} set as today`;
  return `the backup holds the sealed keys only: the KEK stays in the PKCS#11 token "${kek.token}" (key "${kek.key_label}"), and a restore needs that same token`;
}

/** Started as root, portal.db goes to root and the unprivileged account's group, as `postern start` leaves it. */
function portalOwner(config: Config): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const account = lookupAccount(config.user);
  return account ? { uid: 0, gid: account.gid } : undefined;
}

