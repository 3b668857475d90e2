/**
 * Dropping root for good, as Postfix's daemons do after their start-up (the `unpriv` column of
 * master.cf): supplementary groups, group, then user — real, effective and saved ids all, so the
 * process can never become root again. Checked afterwards; a role that was told to drop and could
 * not must not serve.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface Ids {
  uid: number;
  gid: number;
}

export class PrivilegeError extends Error {
  override readonly name = 'PrivilegeError';
}

/** "UID:GID" as the supervisor passes it (`--user`). */
export function parseIds(text: string): Ids {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) throw new PrivilegeError(`--user ${JSON.stringify(text)}: expected UID:GID of an unprivileged account`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

export function dropPrivileges(to: Ids): void {
  if (!process.setuid || !process.setgid || !process.setgroups || !process.getuid) throw new PrivilegeError('this platform cannot change user ids');
  try {
    // Only the account's own group, not the supplementary groups root happened to have.
    process.setgroups([to.gid]);
    process.setgid(to.gid);
    process.setuid(to.uid);
  } catch (err) {
    throw new PrivilegeError(`cannot run as ${to.uid}:${to.gid}: ${(err as Error).message}`);
  }
  const now = [process.getuid(), process.geteuid!(), process.getgid!(), process.getegid!()];
  if (now[0] !== to.uid || now[1] !== to.uid || now[2] !== to.gid || now[3] !== to.gid) throw new PrivilegeError(`still running as ${now.join(':')} after the switch to ${to.uid}:${to.gid}`);
  let regained = false;
  try {
    process.setuid(0);
    regained = true;
  } catch {
    // EPERM: as it must be.
  }
  if (regained) throw new PrivilegeError('root could be regained after the switch');
}

/**
 * Listen addresses with host names resolved beforehand. Binding to an IP address involves no
 * turn of the event loop (net binds at once and reports on the next tick), so no connection can be
 * accepted between the first listen and the privilege drop that follows start-up; a host name
 * would be looked up in between.
 */
export async function numericListen<T extends { host: string; port: number }>(listen: readonly T[]): Promise<T[]> {
  return Promise.all(listen.map(async (l) => (isIP(l.host) ? l : { ...l, host: (await lookup(l.host)).address })));
}
