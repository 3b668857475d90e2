/**
 * What the key commands (cert, pgp, ca, kek, pdf, admin) share: the store opened from the config, the actor
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

/** More than any password Postern takes (PDF readers: 127 bytes; admins: 1024), less than a mistake piped in whole. */
const MAX_STDIN = 4096;

/**
 * A password set by an admin: from the environment variable `env`, or from stdin when it is a
 * pipe (one line; a terminal would show it as it is typed), never from the command line.
 */
export async function passwordInput(stdin: NodeJS.ReadableStream & { isTTY?: boolean }, env: string, command: string): Promise<string> {
  const fromEnv = process.env[env];
  if (fromEnv) return fromEnv;
  if (stdin.isTTY) throw new UsageError(`${command} reads the password from $${env} or from a pipe (a terminal would show it as you type)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    size += b.length;
    if (size > MAX_STDIN) throw new UsageError(`the password on stdin is longer than ${MAX_STDIN} bytes`);
    chunks.push(b);
  }
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!password) throw new UsageError(`${command} needs the password in $${env} or on stdin`);
  return password;
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
