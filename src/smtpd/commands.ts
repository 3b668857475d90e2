/**
 * The SMTP commands outside the message content: HELO/EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY,
 * HELP, STARTTLS and ETRN; DATA and BDAT are in transfer.ts. What is not here is not offered:
 * no AUTH (authentication is by network), no XCLIENT or XFORWARD (they would let a client choose
 * its own IP), no sendmail jokes (WIZ, SHELL, KILL): all are "500 command not recognized".
 */
import { LocalError, ResumedRecipientError, TooManyRecipientsError } from '../core/index.js';
import { checkpointOwner, decideMail, isStoredRecipient } from './checkpoint.js';
import type { Connection } from './connection.js';
import { etrn } from './etrn.js';
import { parsePath } from './path.js';
import { PROTOCOL, reply } from './replies.js';
import { checkMailFrom, checkRcptTo, MAIL_VALUED, RCPT_VALUED } from './session.js';
import { checkStorage } from './storage.js';
import { bdat, data } from './transfer.js';

/** RFC 5321 4.5.3.1.4: 512 octets with CRLF; the ESMTP parameters of MAIL and RCPT add to it (RFC 1870, 3461, 4954, 6531, 8689). */
const LIMIT = 512;
const LIMITS: Record<string, number> = { MAIL: 1200, RCPT: 1100 };
const CONTROL = /[\x00-\x1f\x7f]/;

type Handler = (conn: Connection, line: Buffer, args: string) => void | Promise<void>;

const HANDLERS: Record<string, Handler> = {
  EHLO: async (c, _l, a) => hello(c, a, true),
  HELO: async (c, _l, a) => hello(c, a, false),
  MAIL: mail,
  RCPT: rcpt,
  DATA: data,
  BDAT: bdat,
  RSET: async (c) => {
    await c.resetTransaction();
    c.send(PROTOCOL.reset);
  },
  NOOP: (c) => c.send(PROTOCOL.ok),
  QUIT: (c) => c.hangUp(PROTOCOL.bye),
  HELP: (c) => c.send(PROTOCOL.help),
  VRFY: (c, _l, a) => (a.trim() ? c.send(PROTOCOL.vrfy) : c.protocolError(PROTOCOL.vrfySyntax)),
  STARTTLS: startTls,
  ETRN: etrn,
};

/** Commands that need HELO/EHLO first (RFC 5321 4.1.4). */
const AFTER_HELO = new Set(['MAIL', 'RCPT', 'DATA', 'ETRN']);
const STATUS_LINE = /^(OPTIONS|GET|HEAD|POST|PUT|DELETE|TRACE|CONNECT) \/.* HTTP\/\d\.\d$/i;

export async function dispatch(conn: Connection, line: Buffer): Promise<void> {
  const text = line.toString('latin1');
  const space = text.indexOf(' ');
  const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
  const args = space < 0 ? '' : text.slice(space + 1);
  // A web page that makes a browser talk to us (cross-protocol attack): not a mail client.
  if (STATUS_LINE.test(text)) return conn.hangUp(PROTOCOL.http, 'http');
  if (line.length + 2 > (LIMITS[verb] ?? LIMIT)) return conn.protocolError(PROTOCOL.tooLong);
  const handler = Object.hasOwn(HANDLERS, verb) ? HANDLERS[verb] : undefined;
  if (!handler || (verb === 'STARTTLS' && !conn.host.secureContext())) return conn.protocolError(PROTOCOL.unknown);
  if (AFTER_HELO.has(verb) && !conn.state.helo) return conn.protocolError(PROTOCOL.heloFirst);
  await handler(conn, line, args);
}

async function hello(conn: Connection, args: string, esmtp: boolean): Promise<void> {
  const parts = args.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 1) return conn.protocolError(esmtp ? PROTOCOL.ehloSyntax : PROTOCOL.heloSyntax);
  const name = parts[0]!;
  // The name goes into the Received header and the logs: no control characters, no novels.
  if (name.length > 300 || CONTROL.test(name)) return conn.protocolError(PROTOCOL.heloHostname);
  const state = conn.state;
  state.helo = name.toLowerCase();
  state.esmtp = esmtp;
  await conn.resetTransaction(); // HELO/EHLO resets the transaction (RFC 5321 4.1.4)
  const hostname = state.settings.hostname;
  if (!esmtp) return conn.send(reply(250, hostname));
  conn.send(reply(250, hostname, ...extensions(conn)));
}

function extensions(conn: Connection): string[] {
  const s = conn.state.settings;
  const ext = ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'DSN', 'CHUNKING', 'BINARYMIME', 'ETRN'];
  if (!conn.secure && conn.host.secureContext()) ext.push('STARTTLS');
  // RFC 8689 4.1: only where the session is protected by TLS.
  if (conn.secure) ext.push('REQUIRETLS');
  if (s.checkpoint) ext.push('CHECKPOINT');
  ext.push(`SIZE ${s.maxMessageSize}`);
  return ext;
}

async function mail(conn: Connection, line: Buffer): Promise<void> {
  const p = parsePath('MAIL FROM', line, MAIL_VALUED);
  if (!p.ok) return conn.protocolError(p.problem === 'syntax' ? PROTOCOL.senderSyntax : reply(501, `5.5.4 ${p.text}`));
  const state = conn.state;
  if (state.tx) return conn.protocolError(PROTOCOL.nestedMail);
  const v = checkMailFrom(p.path, state);
  if (!v.ok) return conn.sendError(v.error, v.reason);
  // smtp.min_free_space and SIZE= against the spool's free space: 452 4.3.1 before the message.
  const space = await checkStorage(() => conn.host.spool.freeSpace(), state.settings.minFreeSpace, v.tx.declaredSize, (err) => statfsFailed(conn, err)).catch((err: unknown) => {
    conn.host.log.error({ event: 'smtpd.internal_error', err }, 'free space check failed');
    return { ok: false as const, error: new LocalError(err), reason: 'local' };
  });
  if (!space.ok) return conn.sendError(space.error, space.reason);
  if (conn.hungUp) return;
  if (v.tx.transid) {
    const d = decideMail(conn.host.partials, checkpointOwner(state), v.tx.transid, v.tx);
    if (d.kind === 'refuse') return conn.sendError(d.error, 'transid');
    if (d.kind === 'resume') {
      // RFC 1845: the transaction goes on with what was stored; RCPT may only repeat it.
      for (const r of d.envelope.recipients) {
        v.tx.seen.set(r.address.toLowerCase(), v.tx.recipients.length);
        v.tx.recipients.push(r);
      }
      v.tx.resume = { offset: d.offset };
      state.tx = v.tx;
      conn.host.log.info({ event: 'smtpd.transaction_resumed', client: state.remoteAddress, offset: d.offset, recipients: d.envelope.recipients.length }, 'checkpointed transaction resumed');
      return conn.send(reply(355, `${d.offset} is the transaction offset`));
    }
    if (d.dropped) conn.host.log.info({ event: 'smtpd.partial_expired', client: state.remoteAddress }, 'checkpointed transaction expired; starting afresh');
  }
  state.tx = v.tx;
  conn.send(PROTOCOL.mailOk);
}

let statfsWarned = false;
/** Once per process: a file system without statfs would otherwise log once per message. */
function statfsFailed(conn: Connection, err: unknown): void {
  if (statfsWarned) return;
  statfsWarned = true;
  conn.host.log.warn({ event: 'smtpd.statfs_failed', reason: (err as Error).message }, 'free space of the spool unknown; mail accepted (writes are checked)');
}

function rcpt(conn: Connection, line: Buffer): void {
  const p = parsePath('RCPT TO', line, RCPT_VALUED);
  if (!p.ok) return conn.protocolError(p.problem === 'syntax' ? PROTOCOL.recipientSyntax : reply(501, `5.5.4 ${p.text}`));
  if (!p.path.address) return conn.protocolError(PROTOCOL.recipientSyntax);
  const tx = conn.state.tx;
  if (!tx) return conn.protocolError(PROTOCOL.needMail);
  if (tx.transfer) return conn.protocolError(reply(503, '5.5.1 Error: RCPT after the message content began'));
  if (tx.resume) {
    // The recipients were checked when the transaction began; a resumed one cannot add any.
    if (isStoredRecipient(tx.recipients, p.path.address)) return conn.send(PROTOCOL.rcptOk);
    return conn.sendError(new ResumedRecipientError(), 'transid');
  }
  // Addresses that differ only in case are one recipient: a repeat replaces the earlier one.
  const key = p.path.address.toLowerCase();
  const at = tx.seen.get(key);
  if (at === undefined && tx.recipients.length >= conn.state.settings.maxRecipients) return conn.sendError(new TooManyRecipientsError(), 'recipients');
  const v = checkRcptTo(p.path, tx, conn.state);
  if (!v.ok) return conn.sendError(v.error, v.reason);
  if (at !== undefined) tx.recipients[at] = v.rcpt;
  else {
    tx.seen.set(key, tx.recipients.length);
    tx.recipients.push(v.rcpt);
  }
  conn.send(PROTOCOL.rcptOk);
}

async function startTls(conn: Connection, _line: Buffer, args: string): Promise<void> {
  if (args.trim()) return conn.protocolError(PROTOCOL.startTlsSyntax);
  if (conn.secure) return conn.protocolError(PROTOCOL.tlsActive);
  await conn.startTls(conn.host.secureContext()!);
}
