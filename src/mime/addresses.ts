/**
 * Addresses in header fields, as the crypto layers need them: the one From: address a signature
 * may be bound to ("Johnny, you are fired", 2019: the ID attacks). A signature counts as the
 * author's only when the header leaves no doubt who the author is — exactly one From: field with
 * exactly one address, no other address shown in its display name, and no Sender: naming someone
 * else. S/MIME (smime/verify.ts) and OpenPGP (openpgp/pgp-verify.ts) both bind through bindSigner.
 */
import { sameAddress } from '../core/index.js';
import { decodeWords } from './header-fields.js';
import { readEntity, splitMessage, type SplitMessage } from './entity.js';

/** The items of an address list: split at commas outside quotes, angle brackets and comments. */
function listItems(value: string): string[] {
  const items: string[] = [];
  let item = '';
  let quoted = false;
  let angle = false;
  let comment = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted && c === '\\') {
      item += c + (value[++i] ?? '');
      continue;
    }
    if (c === '"' && !comment) quoted = !quoted;
    else if (!quoted && c === '(') comment++;
    else if (!quoted && c === ')' && comment) comment--;
    else if (!quoted && !comment && c === '<') angle = true;
    else if (!quoted && !comment && c === '>') angle = false;
    else if (!quoted && !comment && !angle && c === ',') {
      items.push(item);
      item = '';
      continue;
    }
    item += c;
  }
  items.push(item);
  return items;
}

/**
 * Addresses in a From: (or any address list) header: the addr-specs, as written. Every <…@…>
 * counts, inside a quoted display name too (a reader may be shown either), and so does a bare
 * address beside them: an item that holds two is two.
 */
export function addressesOf(value: string): string[] {
  const out: string[] = [];
  for (const raw of listItems(value)) {
    // Group syntax ("team: a@x, b@y;"): the members count.
    const item = raw.replace(/^[^"<>(@]*:/, '').replace(/;\s*$/, '');
    const angle = [...item.matchAll(/<([^<>\s]+@[^<>\s]+)>/g)].map((m) => m[1]!);
    if (angle.length) out.push(...angle);
    else {
      const bare = item.replace(/\([^()]*\)/g, '').trim();
      if (/^(?:"(?:[^"\\]|\\.)*"|[^\s@<>"]+)@[^\s@<>"]+$/.test(bare)) out.push(bare);
    }
  }
  return out;
}

/**
 * The one place the binding compares addresses: by their canonical form (core/address.ts: IDNA
 * A-label domain per UTS #46, case, needless quoting), so that two spellings of one mailbox — a
 * certificate's U-label domain, a From: in A-labels — are the same author, and two mailboxes never are.
 */
export const sameMailbox = (a: string, b: string): boolean => sameAddress(a, b);

/** What a message's header allows a signature to be bound to. */
export interface FromBinding {
  /** Every address of every From: field, in order (for look-ups and for the reason text). */
  addresses: string[];
  /** Set when no signature can be the author's, naming the fields: several From: fields, … */
  problem?: string;
}

/** An address shown in a display name ("bob@example.com" <eve@evil.example>), other than the real one. */
function shownAddress(value: string, real: string): string | undefined {
  const display = decodeWords(value.replace(/<[^<>]*>/g, ' '));
  const shown = /[^\s"'<>(),;:@]+@[^\s"'<>(),;:@]+\.[^\s"'<>(),;:@]+/u.exec(display)?.[0];
  return shown && !sameMailbox(shown, real) ? shown : undefined;
}

/**
 * The From: binding of a header (its fields, names lower-case): the one author address, or the
 * reason there is none. Never picks "the one that matches" among several: a forger adds a second
 * From: field or address precisely so that some reader shows it.
 */
export function fromBinding(fields: Map<string, string[]>): FromBinding {
  const froms = fields.get('from') ?? [];
  const addresses = froms.flatMap(addressesOf);
  const list = addresses.join(', ') || 'none';
  if (!froms.length) return { addresses, problem: 'the message has no From: field' };
  if (froms.length > 1) return { addresses, problem: `the message has ${froms.length} From: fields (${list}): a signature cannot vouch for all of them` };
  if (addresses.length !== 1) return { addresses, problem: addresses.length ? `the From: field holds ${addresses.length} addresses (${list}): a signature cannot vouch for all of them` : 'the From: field holds no address' };
  const from = addresses[0]!;
  const shown = shownAddress(froms[0]!, from);
  if (shown) return { addresses, problem: `the From: field shows the address ${shown} in its display name but is from ${from}` };
  const senders = fields.get('sender') ?? [];
  if (senders.length > 1) return { addresses, problem: `the message has ${senders.length} Sender: fields` };
  if (senders.length === 1) {
    const sender = addressesOf(senders[0]!);
    if (sender.length !== 1 || !sameMailbox(sender[0]!, from)) return { addresses, problem: `the Sender: field (${sender.join(', ') || 'no address'}) differs from the From: address (${from})` };
  }
  return { addresses };
}

/**
 * A signer bound to the From: binding: `address` is the signer's address shown in the result
 * (the From: one when it matches, else its first), `mismatch` the reason it is not the author's
 * (worded for a certificate's addresses or an OpenPGP key's user ids).
 */
export function bindSigner(signer: readonly string[], from: FromBinding, of: 'certificate' | 'key' = 'certificate'): { address?: string; mismatch?: string } {
  const matched = signer.find((s) => from.addresses.some((f) => sameMailbox(s, f)));
  const address = matched ?? signer[0];
  const shown = address === undefined ? {} : { address };
  if (from.problem) return { ...shown, mismatch: `the signer cannot be bound to the sender: ${from.problem}` };
  if (matched) return shown;
  const header = from.addresses.join(', ');
  if (of === 'key') return { ...shown, mismatch: `the key's user ids (${signer.join(', ') || 'no address'}) do not include the From: address${header ? ` (${header})` : ''}` };
  return { ...shown, mismatch: signer.length ? `the signer's addresses (${signer.join(', ')}) do not match the From: header (${header || 'empty'})` : `the signer's certificate has no e-mail address to match the From: header (${header || 'empty'})` };
}

/**
 * What signature checks bind to, read once: the message split into outer header and body entity,
 * the From: binding, and the Date: when it parses (an unreadable Date: gives no date, so the
 * signing-time rule does not apply).
 */
export function signedMessageContext(message: Buffer): { split: SplitMessage; from: FromBinding; messageDate?: Date } {
  const split = splitMessage(message);
  const outerFields = readEntity(Buffer.concat([split.outer, Buffer.from('\r\n')])).headers;
  const dateValue = outerFields.get('date')?.[0];
  const messageDate = dateValue && !Number.isNaN(Date.parse(dateValue)) ? new Date(dateValue) : undefined;
  return { split, from: fromBinding(outerFields), ...(messageDate ? { messageDate } : {}) };
}
