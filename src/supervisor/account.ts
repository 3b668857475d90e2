/**
 * The unprivileged account of `user:` (Postfix's mail_owner): looked up through NSS (getent), so
 * accounts from LDAP or sssd work as they do for Postfix. Started as root, the supervisor runs
 * smtpd and the portal as this account; started as anyone else it cannot, and says so.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export class AccountError extends Error {
  override readonly name = 'AccountError';
}

/** The account named `name` (or a numeric uid), or null when there is none. */
export function lookupAccount(name: string): Account | null {
  let line: string | undefined;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number };
    // getent exits 2 for "no such key"; without getent (a minimal container) read the files.
    if (e.status === 2) return null;
    if (e.code !== 'ENOENT') throw new AccountError(`cannot look up the account ${JSON.stringify(name)}: ${e.message}`);
    line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[0] === name || (/^\d+$/.test(name) && l.split(':')[2] === name));
  }
  const f = line?.split(':');
  if (!f || f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return null;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
}

/**
 * The account smtpd and the portal drop to, or null when the supervisor is not root (then every
 * role runs as the supervisor's own user, which is logged as a warning). Throws AccountError when
 * root cannot drop: no such account, or one with uid or gid 0.
 */
export function unprivilegedAccount(config: Pick<Config, 'user'>, log: Logger): Account | null {
  if (process.getuid?.() !== 0) {
    log.warn(
      { event: 'supervisor.not_root', uid: process.getuid?.() },
      'not started as root: smtpd and the portal run as this same user and can read what the worker reads (the KEK file, postern.db)',
    );
    return null;
  }
  const account = lookupAccount(config.user);
  if (!account) {
    throw new AccountError(
      `user: no account ${JSON.stringify(config.user)} — create it (useradd --system --no-create-home --shell /usr/sbin/nologin ${config.user}) or name an existing unprivileged account in user:`,
    );
  }
  if (account.uid === 0 || account.gid === 0) {
    throw new AccountError(`user: ${JSON.stringify(config.user)} has uid ${account.uid} and gid ${account.gid}: it must be an unprivileged account (neither uid nor group 0)`);
  }
  return account;
}
