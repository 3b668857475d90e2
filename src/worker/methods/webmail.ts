/**
 * Webmail as a protection method (issue 17): for a recipient without keys, the message goes into
 * their mailbox on the portal, sealed to the account's X25519 key (keystore/webmail-crypto.ts),
 * and what travels to the recipient is a notice with the link — never the subject or the text.
 * The first message for an address makes the account and a password, which the sender is told
 * once (as PDF mail's); each later message sends a new notice and no password.
 *
 * Like PDF mail it needs no key of the recipient (keyFacts), its result is per recipient
 * (perRecipient), and a signature made before it is not kept (nothing outside reads it).
 *
 * The password exists only in the worker that made it until the sender's notice is queued: the
 * account is marked "told" after that (afterCommit). A message that finds an account untold waits
 * a few seconds for an older maker, else gives way (a temporary failure, tried again later; what
 * it made itself is taken back); one that finds its own claim (it made the account, then crashed
 * before its notice was queued) or a claim past its lease (the maker was held) makes the keys
 * anew, since nobody can know the lost password — the mailbox then holds at most that message.
 * Left open: a crash after the outputs are durable and before "told" is marked; the next message
 * after the lease then makes the keys anew, and the first message is lost to the recipient.
 *
 * Fail closed: no portal.url, no sender of ours to tell a password to, a limit of the webmail
 * section passed — the copy is held with the reason; an error of portal.db is thrown (the worker
 * retries, then holds). The password never reaches a log line.
 */
import { addressKey, canonicalAddress, inDomains, PosternError } from '../../core/index.js';
import { newAccountKeys, newWebmailPassword, PortalDbError, sealForAccount, webmailBodyAad, webmailSummaryAad, type PortalDb, type WebmailAccount } from '../../keystore/index.js';
import { originalHeadersOf } from '../notices.js';
import { webmailPasswordNotice, webmailRecipientNotice } from '../webmail-notices.js';
import { webmailSummary } from '../webmail-summary.js';
import type { Method, SealInput, SealResult, SideNotice, TransformContext } from './types.js';

/** A claim to tell an account's password holds this long (as PDF mail's: longer than a message's retries). */
export const PASSWORD_CLAIM_LEASE_MS = 15 * 60_000;
/** How long a message waits in the worker for another's password notice before it is put off (tests shorten it). */
export const webmailTiming = { busyWaitMs: 10_000 };
const BUSY_POLL_MS = 200;

/** Another message is making this recipient's mailbox and telling its password: this one waits. */
export class WebmailBusyError extends PosternError {
  constructor(recipient: string) {
    super({ code: 451, status: '4.2.0', text: `the webmail mailbox of ${recipient} is being set up by another message; tried again shortly` });
  }
}

/** The link in every notice. */
export const mailboxUrl = (portalUrl: string) => `${portalUrl}/webmail/`;

const hold = (reason: string): SealResult => ({ kind: 'hold', reason });

/** Why a password cannot be told for this message, or null. */
function cannotTell(ctx: TransformContext): string | null {
  if (!ctx.sender) return 'webmail needs a sender to tell the new mailbox password to, and this message has the null sender';
  // By mail only to our own users, through the internal server: never across the Internet.
  if (!inDomains(ctx.sender, ctx.config.internal_domains)) return `webmail tells the new mailbox password to the sender, and ${ctx.sender} is not in internal_domains`;
  return null;
}

type Mailbox = { account: WebmailAccount; password: string | null };

/**
 * The accounts this run of a message made and has not told yet, per message (the look-ups object
 * is made once per message run): taken back if the message gives way to another.
 */
const madeInRun = new WeakMap<object, { id: number; generation: number }[]>();
function made(ctx: TransformContext): { id: number; generation: number }[] {
  if (typeof ctx.lookups !== 'object' || ctx.lookups === null) return [];
  let list = madeInRun.get(ctx.lookups);
  if (!list) madeInRun.set(ctx.lookups, (list = []));
  return list;
}

/**
 * Give way: take back the accounts this run made (nobody can open their mail: the passwords were
 * never told) and fail temporarily, so the other message goes on and this one is tried later.
 */
async function giveWay(recipient: string, portal: PortalDb, ctx: TransformContext): Promise<never> {
  for (const a of made(ctx).splice(0)) await portal.dropUntoldAccount(a.id, a.generation, ctx.queueId);
  throw new WebmailBusyError(recipient);
}

/**
 * The recipient's account, made (or made anew, see the header) when needed. `password` is set
 * when this message made the keys: its sender is told.
 *
 * While another message makes it, this one waits — unless it made a mailbox itself in this run
 * and the maker is younger (queue ids sort by acceptance time): then it gives way at once, so two
 * messages that each made a mailbox the other needs never wait for each other.
 */
async function mailboxOf(recipient: string, portal: PortalDb, ctx: TransformContext): Promise<Mailbox | { hold: string }> {
  const key = addressKey(recipient);
  const waitUntil = Date.now() + webmailTiming.busyWaitMs;
  for (let attempt = 0; attempt < 3; ) {
    const account = await portal.account(key);
    const claim = account?.passwordClaim;
    if (account && (account.passwordTold || (claim && claim.by !== ctx.queueId && Date.now() - claim.at.getTime() < PASSWORD_CLAIM_LEASE_MS))) {
      if (account.passwordTold) return { account, password: null };
      // The maker's notice is usually durable within a second: wait that long here rather than
      // put this message off for a minute.
      if ((made(ctx).length > 0 && claim!.by > ctx.queueId) || Date.now() >= waitUntil) return giveWay(recipient, portal, ctx);
      await new Promise((r) => setTimeout(r, BUSY_POLL_MS));
      continue;
    }
    attempt++;
    const why = cannotTell(ctx);
    if (why) return { hold: why };
    const password = newWebmailPassword();
    const keys = await newAccountKeys(password);
    try {
      if (!account) {
        const a = await portal.createAccount({ address: recipient, addressKey: key, ...keys, claim: ctx.queueId });
        made(ctx).push({ id: a.id, generation: a.generation });
        ctx.log.info({ event: 'worker.webmail_account_created', queueId: ctx.queueId, recipient, accountId: a.id }, 'webmail mailbox made for the recipient');
        await portal.audit({ action: 'webmail.created', actor: 'worker', subject: key, detail: { queueId: ctx.queueId, sender: ctx.sender } });
        return { account: a, password };
      }
      const { generation, removedMessages } = await portal.resetAccount(account.id, keys, new Date(), { claim: ctx.queueId, generation: account.generation });
      made(ctx).push({ id: account.id, generation });
      ctx.log.warn({ event: 'worker.webmail_account_remade', queueId: ctx.queueId, recipient, accountId: account.id, removedMessages }, 'webmail mailbox keys made anew: the password made before was never told');
      await portal.audit({ action: 'webmail.remade', actor: 'worker', subject: key, detail: { queueId: ctx.queueId, removedMessages } });
      return { account: (await portal.accountById(account.id))!, password };
    } catch (err) {
      // Another worker made or remade it meanwhile: look again.
      if (err instanceof PortalDbError && (err.code === 'exists' || err.code === 'stale' || err.code === 'missing')) continue;
      throw err;
    }
  }
  return giveWay(recipient, portal, ctx);
}

async function encrypt(input: SealInput, ctx: TransformContext): Promise<SealResult> {
  const cfg = ctx.config.webmail;
  if (input.recipients.length !== 1) return hold(`webmail is per recipient, and this copy has ${input.recipients.length} (a redirect to several addresses?)`);
  const recipient = canonicalAddress(input.recipients[0]!);
  if (!recipient) return hold('webmail needs a recipient address with a canonical form');
  const portalUrl = ctx.config.portal.url;
  if (!portalUrl) return hold('webmail needs portal.url in postern.yaml: the notice links to the mailbox there');
  const portal = ctx.portal;
  if (!portal) return hold('webmail needs portal.db, and this worker has not opened it');
  const body = input.body;
  if (cfg.max_message_size !== undefined && body.length > cfg.max_message_size) return hold(`the message has ${body.length} bytes, more than webmail.max_message_size (${cfg.max_message_size})`);

  const deliveryKey = `${ctx.queueId}:${addressKey(recipient)}`;
  const received = new Date();
  const summary = Buffer.from(JSON.stringify(webmailSummary(body, { envelopeSender: ctx.sender, internalDomains: ctx.config.internal_domains, received })), 'utf8');
  let box: Mailbox | null = null;
  // A reset between reading the account's key and storing is 'stale': sealed again to the new key.
  for (let attempt = 0; attempt < 3 && !box; attempt++) {
    const got = await mailboxOf(recipient, portal, ctx);
    if ('hold' in got) return hold(got.hold);
    const { account } = got;
    if (cfg.max_mailbox !== undefined && !got.password) {
      const used = await portal.mailboxBytes(account.id);
      // A full mailbox holds the copy: an admin releases it once mail was deleted or the limit raised.
      if (used + body.length > cfg.max_mailbox) return hold(`the webmail mailbox of ${recipient} holds ${used} bytes; with this message (${body.length}) it would pass webmail.max_mailbox (${cfg.max_mailbox})`);
    }
    try {
      const g = account.generation;
      const stored = await portal.putMessage({
        accountId: account.id,
        generation: g,
        deliveryKey,
        received,
        size: body.length,
        summary: sealForAccount(account.publicKey, summary, webmailSummaryAad(account.id, g, deliveryKey)),
        body: sealForAccount(account.publicKey, body, webmailBodyAad(account.id, g, deliveryKey)),
      });
      ctx.log.info({ event: 'worker.webmail_stored', queueId: ctx.queueId, recipient, accountId: account.id, messageId: stored.id, again: !stored.created, size: body.length }, 'message stored in the webmail mailbox');
      box = got;
    } catch (err) {
      if (err instanceof PortalDbError && (err.code === 'stale' || err.code === 'missing')) continue;
      throw err;
    }
  }
  if (!box) return giveWay(recipient, portal, ctx);

  const url = mailboxUrl(portalUrl);
  const notice = webmailRecipientNotice({
    hostname: ctx.config.hostname,
    queueId: ctx.queueId,
    sender: ctx.sender,
    recipient,
    url,
    organisation: ctx.config.portal.organisation,
    from: cfg.notice_from,
    subject: cfg.notice_subject,
    text: cfg.notice_text,
  });
  if (!box.password) return { kind: 'ok', body: notice, signed: false };
  const { account, password } = box;
  const told: SideNotice = {
    key: `webmail-password:${recipient}`,
    to: [ctx.sender],
    body: webmailPasswordNotice({ hostname: ctx.config.hostname, queueId: ctx.queueId, sender: ctx.sender, recipient, password, url, originalHeaders: originalHeadersOf(body) }),
  };
  ctx.log.info({ event: 'worker.webmail_password_notice', queueId: ctx.queueId, sender: ctx.sender, recipient }, 'webmail password notice queued for the sender');
  return {
    kind: 'ok',
    body: notice,
    signed: false,
    notices: [told],
    // Told once the notice is durable; a crash before repeats the making (see the header), never loses mail.
    afterCommit: [
      async () => {
        await portal.markPasswordTold(account.id, account.generation);
      },
    ],
  };
}

export const webmail: Method = {
  id: 'webmail',
  label: 'webmail',
  keyName: 'webmail mailbox',
  signsInside: false,
  perRecipient: true,
  protectsHeaders: false,
  keepsSignature: false,
  // A mailbox needs no key of the recipient: it can always be made. Nobody signs with it.
  keyFacts: (_records, role) => role === 'recipient',
  encrypt,
};
