/**
 * One mail transaction on an open session: MAIL FROM, RCPT TO per recipient, DATA and the body.
 * With PIPELINING (RFC 2920) the envelope and DATA go out in one write and the replies are
 * matched in order; without it, one command per reply. Every reply is kept, so each recipient
 * gets its own answer: one refused RCPT among accepted ones does not stop the others, and when all
 * are refused no message content is sent.
 *
 * ESMTP parameters are sent only to a next hop that announced them: SIZE (RFC 1870),
 * BODY=8BITMIME (RFC 6152), BODY=BINARYMIME with BDAT (RFC 3030: binary content only), SMTPUTF8 (RFC 6531), and the DSN parameters (RFC 3461) RET and ENVID
 * on MAIL FROM, NOTIFY and ORCPT on each RCPT TO, as the client gave them to our smtpd.
 */
import { domainToASCII } from 'node:url';
import type { NotifyValue } from '../core/envelope.js';
import { sendBody, sourceSize, type MessageSource } from './smtp-client-body.js';
import { sendChunks } from './smtp-client-bdat.js';
import { SmtpClientError, type SmtpReply, type SmtpSession } from './smtp-client-session.js';

export interface ClientRecipient {
  address: string;
  /** NOTIFY= values; none: the next hop's default. */
  notify?: readonly NotifyValue[];
  /** ORCPT= as smtpd stored it: "addr-type;xtext". */
  orcpt?: string;
}

export interface ClientEnvelope {
  /** "" is the null reverse-path. */
  sender: string;
  recipients: readonly ClientRecipient[];
  /** BODY=8BITMIME was declared when the message came in. */
  eightBit: boolean;
  /**
   * BODY=BINARYMIME (RFC 3030): the worker could not give it a DATA form (worker/binary-form.ts).
   * It may hold bare CR, LF and NUL, and DATA would change or cut it: never sent over DATA.
   */
  binary?: boolean;
  ret?: 'FULL' | 'HDRS';
  /** ENVID= as smtpd stored it (xtext). */
  envid?: string;
  /** MAIL FROM … REQUIRETLS (RFC 8689): sent only to an authenticated next hop that offers it. */
  requireTls?: boolean;
  /**
   * The message came in with SMTPUTF8 (RFC 6531): its header fields may hold UTF-8, so a next hop
   * that offers SMTPUTF8 gets it passed on even when every address is ASCII.
   */
  smtputf8?: boolean;
}

/** What happened, reply by reply; a recipient's answer is its RCPT reply or what came after. */
export interface TransactionReplies {
  kind: 'replies';
  mail?: SmtpReply;
  /** One per recipient that got an answer to RCPT TO, in envelope order. */
  rcpt: SmtpReply[];
  /** The reply to DATA, when it was not 354 (or 354 with no recipient left). */
  data?: SmtpReply;
  /** The reply after the end of data. */
  final?: SmtpReply;
  /** The next hop said 421 (it is closing the connection): the answer for everyone left. */
  closing?: SmtpReply;
  /** The connection failed at `error.phase`. */
  error?: SmtpClientError;
  /** Reading the body from its source failed (a local problem, not the next hop's). */
  local?: string;
  /** Some of the body went out: a retry elsewhere could duplicate it. */
  bodyStarted: boolean;
}

/** Refused before a command went out, for a reason that will not change by retrying. */
export type TransactionResult =
  | TransactionReplies
  | { kind: 'size'; limit: number }
  | { kind: 'smtputf8' }
  /** A BINARYMIME body, and the next hop lacks BINARYMIME or CHUNKING: refused, for good (5.6.3). */
  | { kind: 'binarymime' }
  /** REQUIRETLS asked for, and this next hop is not authenticated or does not offer it. */
  | { kind: 'requiretls' }
  | { kind: 'bad-address'; address: string };

const isOk = (r: SmtpReply) => r.code >= 200 && r.code < 300;

/**
 * The address as it goes on the wire: the local part as given, the domain in its ASCII form
 * (lower case, IDN as punycode) unless it is an address literal.
 */
export function wireAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  const domain = address.slice(at + 1);
  if (domain.startsWith('[')) return address;
  const ascii = domainToASCII(domain);
  return ascii ? `${address.slice(0, at + 1)}${ascii}` : address;
}

/** No CR, LF, angle brackets or NUL: the envelope came from smtpd, but a command line is at stake. */
const UNSAFE_ADDRESS = /[\r\n<>\0]/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * xtext (RFC 3461 §4) as stored, made safe for a command line: "+XX" escapes kept, any other
 * character outside "!" to "~", and "=" and a stray "+", escaped — so no value can end the
 * parameter or the line.
 */
export function xtext(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b && /^[0-9A-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out += s.slice(i, i + 3);
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x2b || c === 0x3d) {
      for (const b of Buffer.from(String.fromCodePoint(s.codePointAt(i)!), 'utf8')) out += '+' + b.toString(16).toUpperCase().padStart(2, '0');
      if (c >= 0xd800 && c <= 0xdbff) i++;
    } else out += s[i];
  }
  return out;
}

function orcptParam(orcpt: string): string | undefined {
  const semi = orcpt.indexOf(';');
  const type = orcpt.slice(0, semi);
  // addr-type is an atom (RFC 3461 §4.2); anything else is dropped rather than sent broken.
  if (semi <= 0 || !/^[A-Za-z0-9-]{1,32}$/.test(type)) return undefined;
  return `ORCPT=${type};${xtext(orcpt.slice(semi + 1))}`;
}

export function mailCommand(env: ClientEnvelope, ext: ReadonlyMap<string, string>, size: number, utf8: boolean): string {
  const args: string[] = [];
  if (ext.has('SIZE')) args.push(`SIZE=${size}`);
  if (env.binary) args.push('BODY=BINARYMIME');
  else if (env.eightBit && ext.has('8BITMIME')) args.push('BODY=8BITMIME');
  if (utf8) args.push('SMTPUTF8');
  if (env.requireTls) args.push('REQUIRETLS');
  if (ext.has('DSN')) {
    if (env.ret) args.push(`RET=${env.ret}`);
    if (env.envid) args.push(`ENVID=${xtext(env.envid)}`);
  }
  return `MAIL FROM:<${wireAddress(env.sender)}>${args.length ? ' ' + args.join(' ') : ''}`;
}

export function rcptCommand(r: ClientRecipient, ext: ReadonlyMap<string, string>): string {
  const args: string[] = [];
  if (ext.has('DSN')) {
    if (r.notify?.length) args.push(`NOTIFY=${r.notify.join(',')}`);
    const orcpt = r.orcpt ? orcptParam(r.orcpt) : undefined;
    if (orcpt) args.push(orcpt);
  }
  return `RCPT TO:<${wireAddress(r.address)}>${args.length ? ' ' + args.join(' ') : ''}`;
}

/** The body by BDAT once the envelope is answered; nothing is sent when nobody took it. */
async function chunks(session: SmtpSession, res: TransactionReplies, body: MessageSource): Promise<TransactionReplies> {
  if (!isOk(res.mail!) || !res.rcpt.some(isOk)) return res;
  session.phase = 'body';
  res.bodyStarted = true;
  res.final = await sendChunks(session, body);
  if (res.final.code === 421) res.closing = res.final;
  return res;
}

/**
 * Run one transaction. Never throws for the next hop's doing: a failed connection is in `error`,
 * with every reply that came before it.
 */
export async function transact(session: SmtpSession, env: ClientEnvelope, body: MessageSource): Promise<TransactionResult> {
  const ext = session.extensions;
  for (const a of [env.sender, ...env.recipients.map((r) => r.address)]) if (UNSAFE_ADDRESS.test(a)) return { kind: 'bad-address', address: a };
  const size = sourceSize(body);
  // RFC 1870: a limit of 0 means none announced.
  const limit = Number(ext.get('SIZE') ?? 0) || 0;
  if (limit > 0 && size > limit) return { kind: 'size', limit };
  // An IDN domain goes out as A-labels; a UTF-8 local part has no ASCII form (RFC 6531 §3.2).
  const needsUtf8 = NON_ASCII.test(wireAddress(env.sender)) || env.recipients.some((r) => NON_ASCII.test(wireAddress(r.address)));
  if (needsUtf8 && !ext.has('SMTPUTF8')) return { kind: 'smtputf8' };
  const utf8 = needsUtf8 || (env.smtputf8 === true && ext.has('SMTPUTF8'));
  // Fail closed: binary content over DATA would arrive changed (dot-stuffing, line ends) or cut;
  // it goes by BDAT (smtp-client-bdat.ts) to a next hop that takes it, or not at all.
  const chunked = env.binary === true;
  if (chunked && !(ext.has('BINARYMIME') && ext.has('CHUNKING'))) return { kind: 'binarymime' };
  // RFC 8689 §4.2.1: the session must be authenticated (the transport made sure; checked again
  // here, where the message would go out) and the next hop must offer REQUIRETLS itself.
  const authenticated = session.tls && ['verified', 'dane', 'sts'].includes(session.tls.verification);
  if (env.requireTls && (!authenticated || !ext.has('REQUIRETLS'))) return { kind: 'requiretls' };

  const mail = mailCommand(env, ext, size, utf8);
  const rcpts = env.recipients.map((r) => rcptCommand(r, ext));
  const res: TransactionReplies = { kind: 'replies', rcpt: [], bodyStarted: false };
  session.messages++;
  try {
    if (ext.has('PIPELINING')) {
      session.send(mail, ...rcpts, ...(chunked ? [] : ['DATA']));
      res.mail = await session.read('mail');
      if (res.mail.code === 421) return { ...res, closing: res.mail };
      for (let i = 0; i < rcpts.length; i++) {
        const r = await session.read('rcpt');
        if (r.code === 421) return { ...res, closing: r };
        res.rcpt.push(r);
      }
      if (chunked) return await chunks(session, res, body);
      res.data = await session.read('data');
    } else {
      res.mail = await session.command(mail, 'mail');
      if (!isOk(res.mail)) return res.mail.code === 421 ? { ...res, closing: res.mail } : res;
      for (const cmd of rcpts) {
        const r = await session.command(cmd, 'rcpt');
        if (r.code === 421) return { ...res, closing: r };
        res.rcpt.push(r);
      }
      if (!res.rcpt.some(isOk)) return res;
      if (chunked) return await chunks(session, res, body);
      res.data = await session.command('DATA', 'data');
    }
    if (res.data.code === 421) return { ...res, closing: res.data };
    if (res.data.code !== 354) return res;
    if (!isOk(res.mail) || !res.rcpt.some(isOk)) {
      // A next hop that says 354 with no recipient (RFC 2920 §3.1 says it must not): an empty
      // message ends the data phase, and it goes to nobody.
      session.send('.');
      await session.read('dot');
      return res;
    }
    delete res.data;
    session.phase = 'body';
    res.bodyStarted = true;
    await sendBody(session, body);
    res.final = await session.read('dot');
    if (res.final.code === 421) res.closing = res.final;
    return res;
  } catch (e) {
    if (e instanceof SmtpClientError) return { ...res, error: e };
    // The body's source failed (a spool read error): the data phase cannot be ended cleanly, so
    // the connection goes, and the next hop never sees a complete message.
    session.fail(new SmtpClientError('lost', 'body'));
    return { ...res, local: String((e as Error)?.message ?? e) };
  } finally {
    session.phase = 'rset';
  }
}
