/**
 * What a failed nodemailer send means in the relay's terms: temporary or permanent, whether the
 * next MX host may be tried, and the reason — the next hop's own reply when it gave one, else our
 * Postfix-worded account of what happened on the connection (diagnostic.ts).
 *
 * nodemailer's errors say "ECONNECTION: Connection closed unexpectedly" without saying when. The
 * phase is read, at the moment nodemailer builds the error, from the connection that builds it:
 * which reply it was waiting for. That reads nodemailer internals (10.x: _formatError,
 * _responseActions, _currentDataStream, upgrading, stage); the tests of the wording break if a
 * version moves them, and until then the text merely loses its "while …". The lean SMTP client
 * that replaces nodemailer will set the phase itself.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { NodemailerError } from 'nodemailer';
import {
  connectFailed,
  dnsFailed,
  dnsOutcome,
  lostConnection,
  namaddr,
  protocolError,
  timedOut,
  tlsHandshakeFailed,
  tlsNotOffered,
  tlsRefused,
  type Diagnostic,
  type SmtpPhase,
} from './diagnostic.js';

/** What the connection was doing when nodemailer built the error. */
export interface ConnectionFacts {
  /** The TCP connection (and, for smtps, nothing more) was up. */
  connected: boolean;
  /** In the TLS handshake of a STARTTLS upgrade. */
  upgrading: boolean;
  /** Implicit TLS (smtps): before `connected`, the TCP connect or the handshake failed. */
  implicitTls: boolean;
  phase?: SmtpPhase;
  address?: string;
  port?: number;
  /** The plaintext EHLO reply announced STARTTLS. */
  starttlsOffered: boolean;
}

const FACTS = Symbol('postern.smtpConnectionFacts');
type Noted = NodemailerError & { [FACTS]?: ConnectionFacts; syscall?: string; address?: string; port?: number };

interface Internals {
  stage?: string;
  upgrading?: boolean;
  secureConnection?: boolean;
  secure?: boolean;
  host?: string;
  port?: number;
  _socket?: { remoteAddress?: string; remotePort?: number } | false | null;
  _responseActions?: unknown[];
  _currentDataStream?: unknown;
  _plaintextEhlo?: string | false;
  close?: unknown;
}

type Proto = Record<string, unknown> & { _formatError?: (...args: unknown[]) => unknown; [FACTS]?: true };

/**
 * The last connection-level error per next hop ("host:port"). nodemailer's pool swallows some of
 * them (a next hop that hangs up before its greeting) and, after its requeues, fails the message
 * with an error of its own that says only "Reached maximum number of retries": the one it
 * swallowed is the account of what happened. Bounded: the oldest hop is forgotten first.
 */
const lastByHop = new Map<string, Noted>();
const MAX_HOPS = 256;

function remember(key: string, err: Noted): void {
  lastByHop.delete(key);
  lastByHop.set(key, err);
  if (lastByHop.size > MAX_HOPS) lastByHop.delete(lastByHop.keys().next().value!);
}

function phaseOf(conn: Internals, proto: Proto): SmtpPhase | undefined {
  if (conn._currentDataStream) return 'body';
  const next = conn._responseActions?.[0];
  if (next === undefined) return undefined;
  if (next === proto._actionGreeting) return 'greeting';
  if (next === proto._actionEHLO || next === proto._actionLHLO) return 'ehlo';
  if (next === proto._actionHELO) return 'helo';
  if (next === proto._actionSTARTTLS) return 'starttls';
  if (next === conn.close) return 'quit';
  // The transaction's handlers are closures around a callback: recognisable by what they call.
  const src = typeof next === 'function' ? Function.prototype.toString.call(next) : '';
  if (/_actionMAIL\b/.test(src)) return 'mail';
  if (/_actionRCPT\b/.test(src)) return 'rcpt';
  if (/_actionDATA\b/.test(src)) return 'data';
  if (/_action(SMTP|LMTP)Stream\b/.test(src)) return 'dot';
  if (/reset session state/.test(src)) return 'rset';
  return undefined;
}

/** Wrap nodemailer's error factory once, so every error it builds carries ConnectionFacts. */
export function instrumentNodemailer(): void {
  const proto = (SMTPConnection as unknown as { prototype: Proto }).prototype;
  const original = proto._formatError;
  if (proto[FACTS] || typeof original !== 'function') return;
  proto[FACTS] = true;
  proto._formatError = function (this: Internals, ...args: unknown[]) {
    const err = original.apply(this, args) as Noted;
    try {
      if (err && typeof err === 'object' && !err[FACTS]) {
        const socket = this._socket || undefined;
        err[FACTS] = {
          connected: this.stage === 'connected',
          upgrading: this.upgrading === true,
          implicitTls: this.secureConnection === true,
          phase: phaseOf(this, proto),
          address: socket?.remoteAddress ?? err.address,
          port: socket?.remotePort ?? err.port ?? this.port,
          starttlsOffered: /[ -]STARTTLS\b/im.test(typeof this._plaintextEhlo === 'string' ? this._plaintextEhlo : ''),
        };
        if (!err.response && err.code !== 'EENVELOPE' && err.code !== 'EMESSAGE') remember(`${this.host}:${this.port}`, err);
      }
    } catch {
      /* the facts are a nicety: never let them break the error path */
    }
    return err;
  };
}

/** A delivery to this hop worked: what went wrong there before no longer explains anything. */
export function forgetFailures(host: string, port: number): void {
  lastByHop.delete(`${host}:${port}`);
}

export function factsOf(err: NodemailerError): ConnectionFacts | undefined {
  return (err as Noted)[FACTS];
}

/** The reply line of one failure, on one line; only for errors that carry the next hop's reply. */
export function replyOf(err: NodemailerError): string {
  return (err.response ?? '').replace(/\r?\n/g, ' ').trim();
}

/**
 * Nothing of the transaction happened at this host (no connection, bad greeting, TLS failure,
 * 421 before DATA): the next MX host may be tried at once without risking a duplicate.
 */
export function isHostFailure(err: NodemailerError): boolean {
  if (err.code === 'EMESSAGE') return false;
  if (err.code === 'EENVELOPE') return err.responseCode === 421;
  return true;
}

/**
 * nodemailer refuses, before MAIL FROM and without a reply code, a message larger than the SIZE
 * the next hop announced in its EHLO reply; the limit it names, or null for any other error.
 */
export function announcedSizeExceeded(err: NodemailerError): number | null {
  if (err.code !== 'EMESSAGE' || err.response) return null;
  const m = /^Message size larger than allowed (\d+)/.exec(err.message ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * Temporary or permanent? Only a 5xx answer to the transaction itself (MAIL, RCPT, DATA) is
 * permanent. Connection-level trouble is always temporary, even with a 5xx: a 5xx greeting
 * (Postfix's smtp_skip_5xx_greeting) or a STARTTLS refused while TLS is required (Postfix defers
 * with "TLS is required, but was not offered by host") says nothing about the message.
 */
export function classifyError(err: NodemailerError): 'deferred' | 'failed' {
  const transactional = err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
  if (transactional && typeof err.responseCode === 'number' && err.responseCode >= 500 && err.responseCode !== 503) return 'failed';
  return 'deferred';
}

/** The next hop as the failure is reported: its name when it has one, and where we connected. */
export interface FailedHop {
  host: string;
  port: number;
  servername?: string;
  tlsRequired: boolean;
}

const CONNECT_ERRNO = /^E(CONNREFUSED|TIMEDOUT|HOSTUNREACH|NETUNREACH|HOSTDOWN|NETDOWN|ADDRNOTAVAIL|AFNOSUPPORT|ACCES|PERM)$/;

/**
 * The reason for a failure: the next hop's reply (`remote`), or our own account with its status
 * code. Never a library error code.
 */
export function describeFailure(err: NodemailerError, hop: FailedHop): { reply: string; dsn?: string; remote: boolean } {
  if (!factsOf(err) && err.code === 'ECONNECTION' && /^Reached maximum number of retries/.test(err.message ?? '')) {
    const swallowed = lastByHop.get(`${hop.host}:${hop.port}`);
    if (swallowed) return describeFailure(swallowed, hop);
    const d = lostConnection(namaddr(hop.servername ?? hop.host, hop.host), undefined);
    return { reply: d.text, dsn: d.dsn, remote: false };
  }
  const f = factsOf(err);
  const peer = namaddr(hop.servername ?? hop.host, f?.address ?? hop.host);
  const own = (d: Diagnostic) => ({ reply: d.text, dsn: d.dsn, remote: false });
  if (err.response) {
    if (err.code === 'ETLS' && hop.tlsRequired) return own(f && !f.starttlsOffered ? tlsNotOffered(peer) : tlsRefused(peer, replyOf(err)));
    return { reply: replyOf(err), remote: true };
  }
  // The system's code (ECONNREFUSED …) that nodemailer keeps beside its own (ESOCKET …).
  const errno = (err as Noted).originalCode;
  if (err.code === 'EDNS') return own(dnsFailed(hop.host, 'A', dnsOutcome(errno ?? ''), '4.4.3'));
  if (err.code === 'ETLS' || f?.upgrading || err.timeoutType === 'UPGRADE_TIMEOUT') return own(tlsHandshakeFailed());
  if (!f?.connected) {
    if (err.timeoutType === 'CONNECT_TIMEOUT') return own(connectFailed(peer, hop.port, 'ETIMEDOUT'));
    const refused = (err as Noted).syscall === 'connect' || (errno !== undefined && CONNECT_ERRNO.test(errno));
    // smtps: the TCP connection stood, the handshake on it did not.
    if (!refused && f?.implicitTls) return own(tlsHandshakeFailed());
    return own(connectFailed(peer, hop.port, errno));
  }
  if (err.code === 'ETIMEDOUT') return own(timedOut(peer, err.timeoutType === 'GREETING_TIMEOUT' ? 'greeting' : f.phase));
  if (err.code === 'ECONNECTION' || err.code === 'ESOCKET') return own(lostConnection(peer, f.phase));
  if (err.code === 'EPROTOCOL') return own(protocolError(peer));
  // The rest is ours (an address nodemailer would not send, a stream error): a local problem.
  const what = (err.message ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
  return own({ text: `local data error while talking to ${peer}${what ? `: ${what}` : ''}`, dsn: '4.3.0' });
}
