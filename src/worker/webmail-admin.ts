/**
 * What an administrator does to webmail mailboxes (issue 17), for `postern webmail …` and the
 * admin API alike: list them, reset one (a new key pair and password: the mail sealed to the old
 * key can never be opened again, so it goes), delete one. Each change is audited in portal.db, the
 * webmail's own trail, with the admin as actor.
 *
 * Secrets: the new password — returned to the caller when nobody is told by mail (the admin passes
 * it on), or put into the notice to one of our own users; never logged or audited.
 */
import type { Config } from '../config/types.js';
import { inDomains } from '../core/index.js';
import { newAccountKeys, newWebmailPassword, type PortalDb, type WebmailAccount } from '../keystore/index.js';
import type { Spool } from '../spool/index.js';
import { queueLocalNotice } from './local-notice.js';
import { mailboxUrl } from './methods/webmail.js';
import { webmailPasswordNotice } from './webmail-notices.js';

/** A reset refused before anything changed: the old password stays in force. */
export class WebmailResetRefused extends Error {
  override readonly name = 'WebmailResetRefused';
}

/** Who changes a mailbox, for portal.db's audit_log: "cli:<login>" or "admin:<account>", and from where. */
export interface WebmailActor {
  actor: string;
  client?: string;
}

/** One mailbox as listed (`webmail list --json`, GET /api/webmail/accounts): never a key or password. */
export interface WebmailAccountRow {
  address: string;
  created: string;
  generation: number;
  messages: number;
  bytes: number;
  lastLogin: string | null;
  passwordTold: string | null;
  mustChangePassword: boolean;
  disabled: boolean;
}

export async function webmailAccountRows(db: PortalDb): Promise<WebmailAccountRow[]> {
  const accounts = await db.listAccounts();
  return Promise.all(
    accounts.map(async (a) => {
      const messages = await db.listMessages(a.id);
      return {
        address: a.address,
        created: a.created.toISOString(),
        generation: a.generation,
        messages: messages.length,
        bytes: messages.reduce((n, m) => n + m.size, 0),
        lastLogin: a.lastLogin?.toISOString() ?? null,
        passwordTold: a.passwordTold?.toISOString() ?? null,
        mustChangePassword: a.mustChangePassword,
        disabled: a.disabled,
      };
    }),
  );
}

export interface WebmailReset {
  generation: number;
  removedMessages: number;
  /** The new password, when nobody was told by mail: the caller shows it once. */
  password?: string;
  /** The notice's queue id, when `notify` was told. */
  queueId?: string;
}

/**
 * A new key pair and password for `account`. With `notify` (one of our own users, never an
 * outside address; the notice names the mailbox link, so portal.url must be set) the password is
 * mailed there through the spool and not returned; without it, it is returned.
 */
export async function resetWebmailAccount(db: PortalDb, spool: Spool, config: Config, account: WebmailAccount, notify: string | undefined, who: WebmailActor): Promise<WebmailReset> {
  // Checked before anything changes: a refused notify leaves the old password in force.
  if (notify !== undefined) {
    if (!inDomains(notify, config.internal_domains)) throw new WebmailResetRefused(`${notify} is not in internal_domains: a mailbox password is mailed only to our own users (leave out the notify address to be given it)`);
    if (!config.portal.url) throw new WebmailResetRefused('telling a sender needs portal.url in postern.yaml: the notice names the mailbox link');
  }
  const password = newWebmailPassword();
  const { removedMessages, generation } = await db.resetAccount(account.id, await newAccountKeys(password));
  let queueId: string | undefined;
  if (notify !== undefined) {
    queueId = await queueLocalNotice(
      spool,
      config,
      notify,
      (id) => webmailPasswordNotice({ hostname: config.hostname, queueId: id, sender: notify, recipient: account.address, password, url: mailboxUrl(config.portal.url!), reset: { removedMessages } }),
      'notice:webmail-password',
    );
  }
  await db.audit({ action: 'webmail.reset', ...who, subject: account.addressKey, detail: { generation, removedMessages, ...(notify ? { notified: notify } : {}) } });
  return { generation, removedMessages, ...(queueId ? { queueId } : { password }) };
}

/** Delete the mailbox and its mail; the number of messages removed, or null when it was gone already. */
export async function deleteWebmailAccount(db: PortalDb, account: WebmailAccount, who: WebmailActor): Promise<number | null> {
  const count = (await db.listMessages(account.id)).length;
  if (!(await db.deleteAccount(account.addressKey))) return null;
  await db.audit({ action: 'webmail.delete', ...who, subject: account.addressKey, detail: { removedMessages: count } });
  return count;
}
