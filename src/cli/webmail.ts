/**
 * `postern webmail list|reset|delete`: the webmail mailboxes of outside recipients (issue 17),
 * kept in the portal store (portal.db, or a cluster's PostgreSQL).
 *
 * - list: every account — created, key generation, messages and bytes, last log-in, whether its
 *   password was told and must still be changed.
 * - reset ADDRESS [--notify SENDER]: a new key pair and password; the mail in the mailbox was
 *   sealed to the old key, which nobody can open any more, so it is removed (and counted). The
 *   password is printed once (stdout alone, for scripts), or mailed to SENDER — one of our own
 *   users (internal_domains), never an outside address — through the spool like PDF mail's.
 * - delete ADDRESS: the account and its mail.
 *
 * Each change is audited in the portal store with the CLI user as actor. Secrets: the new password,
 * printed or queued, never logged or audited.
 */
import type { Config } from '../config/types.js';
import { addressKey, canonicalAddress } from '../core/index.js';
import { loadConfig } from '../config/index.js';
import { openPortalStore, type PortalDb, type WebmailAccount } from '../keystore/index.js';
import { Spool } from '../spool/index.js';
import { deleteWebmailAccount, resetWebmailAccount, webmailAccountRows, WebmailResetRefused } from '../worker/webmail-admin.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { cliActor } from './keys-common.js';

const USAGE = 'webmail list [--json] | webmail reset ADDRESS [--notify SENDER] | webmail delete ADDRESS';

export async function webmailCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, notify: { type: 'string' } });
  const [sub, target, ...extra] = positionals;
  if (extra.length) throw new UsageError(`too many arguments; usage: postern ${USAGE}`);
  if (sub === 'list') {
    if (target !== undefined || values.notify !== undefined) throw new UsageError(`webmail list takes only --json; usage: postern ${USAGE}`);
    return withPortal(values.config, (db) => list(db, io, values.json === true));
  }
  if (sub !== 'reset' && sub !== 'delete') throw new UsageError(`unknown webmail command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  if (target === undefined) throw new UsageError(`webmail ${sub} needs the mailbox's address; usage: postern ${USAGE}`);
  if (sub === 'delete' && values.notify !== undefined) throw new UsageError('webmail delete takes no --notify');
  const address = addressArg('ADDRESS', target);
  const notify = values.notify !== undefined ? addressArg('--notify', values.notify) : undefined;
  return withPortal(values.config, async (db, config) => {
    const account = await db.account(addressKey(address));
    if (!account) {
      io.err(`postern: ${address} has no webmail mailbox`);
      return 1;
    }
    return sub === 'delete' ? remove(db, io, account) : reset(db, io, config, account, notify);
  });
}

function addressArg(what: string, value: string): string {
  const a = canonicalAddress(value);
  if (!a) throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 100))}: not a mail address`);
  return a;
}

async function withPortal<T>(configFile: string | undefined, fn: (db: PortalDb, config: Config) => Promise<T>): Promise<T> {
  const config = await loadConfig(configFile ?? DEFAULT_CONFIG);
  const db = await openPortalStore(config, { role: 'cli' });
  try {
    return await fn(db, config);
  } finally {
    await db.close();
  }
}

async function reset(db: PortalDb, io: CliIo, config: Config, account: WebmailAccount, notify: string | undefined): Promise<number> {
  let r: Awaited<ReturnType<typeof resetWebmailAccount>>;
  try {
    r = await resetWebmailAccount(db, await Spool.open(config.data_dir), config, account, notify, { actor: cliActor() });
  } catch (err) {
    if (err instanceof WebmailResetRefused) throw new UsageError(`--notify: ${err.message}`);
    throw err;
  }
  const removed = `${r.removedMessages} message${r.removedMessages === 1 ? '' : 's'} removed (sealed to the old key)`;
  if (r.queueId) {
    io.out(`new password for the webmail mailbox of ${account.address}, mailed to ${notify} (queue id ${r.queueId}); ${removed}`);
  } else {
    // The password alone on stdout (for scripts); what it is, on stderr.
    io.err(`new password for the webmail mailbox of ${account.address} (asked to change it at the first log-in); ${removed}`);
    io.out(r.password!);
  }
  return 0;
}

async function remove(db: PortalDb, io: CliIo, account: WebmailAccount): Promise<number> {
  const count = await deleteWebmailAccount(db, account, { actor: cliActor() });
  if (count === null) {
    io.err(`postern: ${account.address} has no webmail mailbox`);
    return 1;
  }
  io.out(`deleted the webmail mailbox of ${account.address} and its ${count} message${count === 1 ? '' : 's'}`);
  return 0;
}

const when = (iso: string | null) => (iso ? iso.replace(/\.\d+Z$/, 'Z') : '-');

async function list(db: PortalDb, io: CliIo, json: boolean): Promise<number> {
  const rows = await webmailAccountRows(db);
  if (json) {
    for (const r of rows) io.out(JSON.stringify(r));
    return 0;
  }
  io.out(['ADDRESS', 'CREATED', 'MESSAGES', 'BYTES', 'LAST LOGIN', 'PASSWORD', 'STATE'].join('\t'));
  for (const r of rows) {
    const password = r.passwordTold ? (r.mustChangePassword ? 'told, not yet changed' : 'changed by the user') : 'not yet told';
    io.out([r.address, when(r.created), r.messages, r.bytes, when(r.lastLogin), password, r.disabled ? 'disabled' : 'active'].join('\t'));
  }
  io.out(`-- ${rows.length} mailbox${rows.length === 1 ? '' : 'es'}`);
  return 0;
}
