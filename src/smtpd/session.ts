/**
 * Per-connection state and the envelope phase: MAIL FROM and RCPT TO with their parameters,
 * relay control, and what the client is refused. MAIL parameters are a table (name → how its
 * value is checked and what it sets in the transaction), so an extension such as TRANSID (RFC
 * 1845) is one more row, not a change to the parser.
 */
import {
  AddressNotCanonicalError,
  EncryptionNeededError,
  MessageTooBigError,
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
import { parseTransid } from './checkpoint.js';
import { xtextEncode } from './envelope.js';
import type { Failure } from './message.js';
import type { ParsedPath } from './path.js';
import { checkRecipient } from './relay-control.js';
import type { SmtpdSettings } from './settings.js';
import type { TlsInfo } from './tls-info.js';

export interface SessionState {
  /** The settings in force when the client connected. */
  settings: SmtpdSettings;
  /** Client address is in trusted_networks. */
  trusted: boolean;
  remoteAddress: string;
  remotePort: number;
  /** The forward-confirmed reverse DNS name, when looked up and confirmed. */
  clientHostname: string | null;
  /** HELO/EHLO argument (lower case), once given. */
  helo?: string;
  /** The client said EHLO (not HELO): ESMTP. */
  esmtp: boolean;
  /** The TLS session, as the Received header tells it (tls-info.ts). */
  tls?: TlsInfo;
  /** Why the next error reply is sent (for its log line); cleared when logged. */
  reason?: string;
  /** Set once we hung up on the client; later replies are neither sent nor logged. */
  hungUp?: boolean;
  /** The transaction begun by MAIL FROM, until the message is answered or RSET. */
  tx: Transaction | null;
}

export interface Transaction {
  /** Canonical MAIL FROM address ("" for <>). */
  sender: string;
  smtputf8: boolean;
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  ret?: 'FULL' | 'HDRS';
  /** ENVID in canonical xtext. */
  envid?: string;
  requireTls?: boolean;
  /** SIZE= as declared (0: none). */
  declaredSize: number;
  recipients: Recipient[];
  /** Lower-cased wire address → index in recipients: a repeated RCPT replaces the earlier one. */
  seen: Map<string, number>;
  /** How the content is being sent, once it is (DATA and BDAT do not mix). */
  transfer?: 'DATA' | 'BDAT';
  /** BDAT: the message was refused; later chunks are drained and get the same answer. */
  failed?: Failure;
  /** TRANSID= (RFC 1845), when smtp.checkpoint is on: DATA is then checkpointed (checkpoint.ts). */
  transid?: string;
  /** MAIL FROM was answered 355: the envelope is the stored one, DATA resumes from `offset`. */
  resume?: { offset: number };
}

export type Verdict = { ok: true } | { ok: false; error: PosternError; reason: string };

const refuse = (error: PosternError, reason = 'parameter'): Verdict => ({ ok: false, error, reason });
const OK: Verdict = { ok: true };

interface MailParam {
  /** 'flag': no value allowed; 'value': a value required; 'any': either (AUTH=<> and friends). */
  takes: 'flag' | 'value' | 'any';
  apply(value: string | true, tx: Transaction, state: SessionState): Verdict;
}

/** The MAIL FROM parameters we implement; any other is refused with 555 (RFC 5321 4.1.1.11). */
export const MAIL_PARAMS: Record<string, MailParam> = {
  // RFC 1870: 1*20DIGIT, refused at once when over the limit.
  SIZE: {
    takes: 'value',
    apply(v, tx, state) {
      if (typeof v !== 'string' || !/^\d{1,20}$/.test(v)) return refuse(new ParameterSyntaxError('Error: Bad message size syntax'));
      const n = Number(v);
      if (n > state.settings.maxMessageSize) return refuse(new MessageTooBigError(), 'size');
      tx.declaredSize = n;
      return OK;
    },
  },
  // RFC 6152 and RFC 3030: BINARYMIME only with BDAT (checked at DATA).
  BODY: {
    takes: 'value',
    apply(v, tx) {
      const body = String(v).toUpperCase();
      if (body !== '7BIT' && body !== '8BITMIME' && body !== 'BINARYMIME') return refuse(new ParameterSyntaxError('Invalid BODY parameter value. Must be 7BIT, 8BITMIME or BINARYMIME'));
      tx.body = body;
      return OK;
    },
  },
  SMTPUTF8: {
    takes: 'flag',
    apply(_v, tx) {
      tx.smtputf8 = true;
      return OK;
    },
  },
  // RFC 8689: only where the session itself is encrypted.
  REQUIRETLS: {
    takes: 'flag',
    apply(_v, tx, state) {
      if (!state.tls) return refuse(new EncryptionNeededError(), 'requiretls');
      tx.requireTls = true;
      return OK;
    },
  },
  RET: {
    takes: 'value',
    apply(v, tx) {
      const ret = String(v).toUpperCase();
      if (ret !== 'FULL' && ret !== 'HDRS') return refuse(new ParameterSyntaxError('Invalid RET parameter value. Must be FULL or HDRS'));
      tx.ret = ret;
      return OK;
    },
  },
  // RFC 3461 4.4: at most 100 characters.
  ENVID: {
    takes: 'value',
    apply(v, tx) {
      if (String(v).length > 100) return refuse(new ParameterSyntaxError('ENVID parameter too long'));
      tx.envid = xtextEncode(String(v));
      return OK;
    },
  },
  // RFC 1845: refused as unknown (555) unless smtp.checkpoint announces CHECKPOINT.
  TRANSID: {
    takes: 'value',
    apply(v, tx, state) {
      if (!state.settings.checkpoint) return refuse(new UnsupportedParameterError('unsupported MAIL FROM parameter'));
      try {
        tx.transid = parseTransid(v);
      } catch (err) {
        return refuse(err as PosternError, 'transid');
      }
      return OK;
    },
  },
  // Sent by some MTAs even to servers without AUTH; RFC 4954 lets us ignore it.
  AUTH: { takes: 'any', apply: () => OK },
};

/** Parameters that must carry a value (path.ts refuses them bare with 501). */
export const MAIL_VALUED = Object.entries(MAIL_PARAMS)
  .filter(([, p]) => p.takes === 'value')
  .map(([k]) => k);
export const RCPT_VALUED = ['NOTIFY', 'ORCPT'];

const NOTIFY_VALUES = new Set<NotifyValue>(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);

/** MAIL FROM: its parameters through the table, then the sender's canonical form. */
export function checkMailFrom(path: ParsedPath, state: SessionState): { ok: true; tx: Transaction } | Extract<Verdict, { ok: false }> {
  const tx: Transaction = { sender: '', smtputf8: false, declaredSize: 0, recipients: [], seen: new Map() };
  for (const key of path.params.keys()) {
    if (!MAIL_PARAMS[key]) return { ok: false, error: new UnsupportedParameterError('unsupported MAIL FROM parameter'), reason: 'parameter' };
  }
  for (const [key, value] of path.params) {
    const p = MAIL_PARAMS[key]!;
    if (p.takes === 'flag' && value !== true) return { ok: false, error: new ParameterSyntaxError(`Invalid ${key} parameter. This flag does not accept a value`), reason: 'parameter' };
    const v = p.apply(value, tx, state);
    if (!v.ok) return v;
  }
  if (!tx.smtputf8 && path.eightBit) return { ok: false, error: new NonAsciiAddressError('sender'), reason: 'utf8' };
  // The sender is canonicalised like every recipient: policy and key look-ups compare only that
  // form. Address literals (user@[192.0.2.1]) are kept as written; they name no domain of ours.
  let sender = path.address;
  if (sender && !/@\[/.test(sender)) {
    const c = parseAddress(sender, { utf8: tx.smtputf8 });
    if (!c.ok) return c.problem === 'utf8' ? { ok: false, error: new NonAsciiAddressError('sender'), reason: 'utf8' } : { ok: false, error: new AddressNotCanonicalError('sender', c.detail), reason: 'canonical' };
    sender = c.address;
  }
  tx.sender = sender;
  return { ok: true, tx };
}

/** RCPT TO: parameters, DSN values, then relay control. Returns the recipient to record. */
export function checkRcptTo(path: ParsedPath, tx: Transaction, state: SessionState): { ok: true; rcpt: Recipient } | Extract<Verdict, { ok: false }> {
  for (const key of path.params.keys()) {
    if (key !== 'NOTIFY' && key !== 'ORCPT') return { ok: false, error: new UnsupportedParameterError('unsupported RCPT TO parameter'), reason: 'parameter' };
  }
  let notify: NotifyValue[] | undefined;
  const n = path.params.get('NOTIFY');
  if (typeof n === 'string') {
    const values = [...new Set(n.toUpperCase().split(','))];
    if (!values.every((v): v is NotifyValue => NOTIFY_VALUES.has(v as NotifyValue)) || (values.includes('NEVER') && values.length > 1)) {
      return { ok: false, error: new ParameterSyntaxError('NOTIFY must be NEVER, or any of SUCCESS, FAILURE, DELAY'), reason: 'parameter' };
    }
    notify = values;
  }
  let orcpt: string | undefined;
  const o = path.params.get('ORCPT');
  if (typeof o === 'string') {
    // RFC 3461 4.2: addr-type ";" xtext (decoded by path.ts, stored encoded canonically).
    if (!/^[a-z0-9!#$%&'*+/=?^_`{|}~-]+;./i.test(o)) return { ok: false, error: new ParameterSyntaxError('Error: Bad ORCPT parameter syntax'), reason: 'parameter' };
    const semi = o.indexOf(';');
    orcpt = o.slice(0, semi + 1) + xtextEncode(o.slice(semi + 1));
    if (orcpt.length > 500) return { ok: false, error: new ParameterSyntaxError('ORCPT parameter too long'), reason: 'parameter' };
  }

  if (!tx.smtputf8 && path.eightBit) return { ok: false, error: new NonAsciiAddressError('recipient'), reason: 'utf8' };
  const s = state.settings;
  const verdict = checkRecipient(path.address, { trusted: state.trusted, internalDomains: s.internalDomains, postmasterDomain: s.postmasterDomain }, tx.smtputf8);
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
  // For display: what the client wrote, where it says more than letter case.
  if (path.address.toLowerCase() !== rcpt.address.toLowerCase()) rcpt.original = path.address;
  if (notify) rcpt.notify = notify;
  if (orcpt !== undefined) rcpt.orcpt = orcpt;
  return { ok: true, rcpt };
}
