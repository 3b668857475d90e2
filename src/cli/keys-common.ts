/**
 * What the key commands (cert, pgp, ca, kek) share: the store opened from the config, the actor
 * named in the audit log, secrets read from environment variables (never from the command line,
 * where `ps` and shell history would show them), and output to a file created 0600.
 */
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { openKeyStore, type KeyStore } from '../keystore/index.js';
import { DEFAULT_CONFIG, UsageError, type CliIo } from './args.js';

/** "cli:<login>" in the audit log. */
export function cliActor(): string {
  let who = 'unknown';
  try {
    who = userInfo().username;
  } catch {
    /* no passwd entry (containers) */
  }
  return `cli:${who}`;
}

/** The value of the environment variable named by a --*-env flag; refused when unset or empty. */
export function secretFromEnv(flag: string, name: string | undefined, what: string): string | undefined {
  if (name === undefined) return undefined;
  const v = process.env[name];
  if (!v) throw new UsageError(`${flag} ${name}: the environment variable is not set or empty (it should hold the ${what})`);
  return v;
}

export async function withStore<T>(configFile: string | undefined, fn: (store: KeyStore, config: Config) => Promise<T>): Promise<T> {
  const config = await loadConfig(configFile ?? DEFAULT_CONFIG);
  const store = await openKeyStore(config);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}

/** Write to `--out FILE` (mode 0600, refusing to overwrite) or to stdout. */
export async function output(io: CliIo, out: string | undefined, data: string | Buffer, secret: boolean): Promise<void> {
  if (out) {
    await writeFile(out, data, { mode: secret ? 0o600 : 0o644, flag: 'wx' });
    io.out(`written: ${out}`);
    return;
  }
  if (Buffer.isBuffer(data)) throw new UsageError('binary output needs --out FILE');
  io.out(data.replace(/\n$/, ''));
}

export function shortDate(d: Date | null | undefined): string {
  return d ? d.toISOString().slice(0, 10) : '-';
}
