/**
 * Per-connection state and the envelope-phase handlers (connect, STARTTLS, MAIL, RCPT). What
 * smtp-server already enforces is left to it (command syntax, address syntax, SIZE=, NOTIFY
 * values, the recipient limit); these handlers add relay control, the parameters we refuse, and
 * the connection limit.
 */
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import {
  AddressNotCanonicalError,
  NonAsciiAddressError,
  ParameterSyntaxError,
  parseAddress,
  RecipientSyntaxError,
  RelayDeniedError,
  UnsupportedParameterError,
  type NotifyValue,
  type PosternError,
  type Recipient,
} from '../core/index.js';
import { xtextEncode } from './envelope.js';
import { wasEightBit, type RawAddresses } from './raw-address.js';
import { checkRecipient } from './relay-control.js';
import type { SmtpdSettings } from './settings.js';
import type { TlsInfo } from './tls-info.js';

export interface SessionState {
  /** The settings in force when the client connected. */
  settings: SmtpdSettings;
  /** Client address is in trusted_networks. */
  trusted: boolean;
  conn?: SMTPConnection;
  /** The TLS session, as the Received header tells it (tls-info.ts). */
  tls?: TlsInfo;
  /** Why the next error reply is sent (for its log line); cleared when logged. */
  reason?: string;
  /** Set once we hung up on the client; later (suppressed) replies are not logged again. */
  hungUp?: boolean;
  /** Our checked form of each accepted RCPT, keyed by smtp-server's parsed address object. */
  recipients: WeakMap<SMTPServerAddress, Recipient>;
  /** Canonical MAIL FROM address of the current transaction ("" for <>), set by checkMailFrom. */
  sender?: string;
  /** What the parsed MAIL/RCPT addresses looked like on the wire (raw-address.ts). */
  raw?: RawAddresses;
}

export type Verdict = { ok: true } | { ok: false; error: PosternError; reason: string };

// AUTH=<> is sent by some MTAs even to servers without AUTH; RFC 4954 lets us ignore it.
const MAIL_PARAMS = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'RET', 'ENVID', 'AUTH']);
const RCPT_PARAMS = new Set(['NOTIFY', 'ORCPT']);
const NOTIFY_VALUES = new Set<NotifyValue>(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);

/**
 * MAIL FROM. smtp-server has validated SIZE (552 5.3.4 when over), BODY, SMTPUTF8 and RET, but
 * it accepts any other parameter silently, including REQUIRETLS, which we could not honour.
 */
export function checkMailFrom(address: SMTPServerAddress, state?: SessionState): Verdict {
  const args = address.args || {};
  for (const key of Object.keys(args)) {
    if (!MAIL_PARAMS.has(key)) return { ok: false, error: new UnsupportedParameterError(`unsupported MAIL FROM parameter`), reason: 'parameter' };
  }
  // RFC 3461 4.4: ENVID is at most 100 characters.
  if (typeof args.ENVID === 'string' && args.ENVID.length > 100) {
    return { ok: false, error: new ParameterSyntaxError('ENVID parameter too long'), reason: 'parameter' };
  }
  const smtputf8 = args.SMTPUTF8 === true;
  if (!smtputf8 && wasEightBit(state?.raw, address)) return { ok: false, error: new NonAsciiAddressError('sender'), reason: 'utf8' };
  // The sender is canonicalised like every recipient: policy and key look-ups compare only that
  // form. Address literals (user@[192.0.2.1]) are kept as written; they name no domain of ours.
  let sender = address.address;
  if (sender && !/@\[/.test(sender)) {
    const c = parseAddress(sender, { utf8: smtputf8 });
    if (!c.ok) return c.problem === 'utf8' ? { ok: false, error: new NonAsciiAddressError('sender'), reason: 'utf8' } : { ok: false, error: new AddressNotCanonicalError('sender', c.detail), reason: 'canonical' };
    sender = c.address;
  }
  if (state) state.sender = sender;
  return { ok: true };
}

/** RCPT TO: parameters, DSN values, then relay control. Records the recipient on success. */
export function checkRcptTo(address: SMTPServerAddress, session: SMTPServerSession, state: SessionState): Verdict {
  const args = address.args || {};
  for (const key of Object.keys(args)) {
    if (!RCPT_PARAMS.has(key)) return { ok: false, error: new UnsupportedParameterError('unsupported RCPT TO parameter'), reason: 'parameter' };
  }
  let notify: NotifyValue[] | undefined;
  if (typeof args.NOTIFY === 'string') {
    // smtp-server checks this too; the envelope must never carry a value the DSN code can't read.
    const values = [...new Set(args.NOTIFY.toUpperCase().split(','))];
    if (!values.every((v): v is NotifyValue => NOTIFY_VALUES.has(v as NotifyValue)) || (values.includes('NEVER') && values.length > 1)) {
      return { ok: false, error: new ParameterSyntaxError('NOTIFY must be NEVER, or any of SUCCESS, FAILURE, DELAY'), reason: 'parameter' };
    }
    notify = values;
  }
  let orcpt: string | undefined;
  if (typeof args.ORCPT === 'string') {
    // RFC 3461 4.2: addr-type ";" xtext; smtp-server checked the shape and decoded the xtext.
    const semi = args.ORCPT.indexOf(';');
    orcpt = args.ORCPT.slice(0, semi + 1) + xtextEncode(args.ORCPT.slice(semi + 1));
    if (orcpt.length > 500) return { ok: false, error: new ParameterSyntaxError('ORCPT parameter too long'), reason: 'parameter' };
  }

  const mailArgs = session.envelope.mailFrom ? session.envelope.mailFrom.args || {} : {};
  if (mailArgs.SMTPUTF8 !== true && wasEightBit(state.raw, address)) return { ok: false, error: new NonAsciiAddressError('recipient'), reason: 'utf8' };
  const s = state.settings;
  const verdict = checkRecipient(
    address.address,
    { trusted: state.trusted, internalDomains: s.internalDomains, postmasterDomain: s.postmasterDomain },
    mailArgs.SMTPUTF8 === true,
  );
  if (!verdict.ok) {
    const error =
      verdict.reason === 'syntax'
        ? new RecipientSyntaxError()
        : verdict.reason === 'utf8'
          ? new NonAsciiAddressError('recipient')
          : verdict.reason === 'canonical'
            ? new AddressNotCanonicalError('recipient', verdict.detail ?? 'no canonical form')
            : new RelayDeniedError();
    return { ok: false, error, reason: verdict.reason };
  }
  const rcpt: Recipient = { address: verdict.address };
  // For display: what the client wrote (smtp-server has turned A-labels into Unicode by now).
  const written = state.raw?.written.get(address) ?? address.address;
  if (written.toLowerCase() !== rcpt.address.toLowerCase()) rcpt.original = written;
  if (notify) rcpt.notify = notify;
  if (orcpt !== undefined) rcpt.orcpt = orcpt;
  state.recipients.set(address, rcpt);
  return { ok: true };
}
