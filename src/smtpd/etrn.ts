/**
 * ETRN (RFC 1985): a client inside trusted_networks asks for the deferred mail of a domain
 * ("ETRN example.com") or of a domain and its subdomains ("ETRN @example.com") to be tried now;
 * the entries go back to outgoing/, where the relay takes them at once (spool/admin.ts
 * flushDeferred, as `postern queue flush --domain` does; under the supervisor smtpd has no rights
 * on deferred/ and asks the supervisor to do it). Everyone else is refused: the queue's
 * contents and timing are ours to decide, and each ETRN makes smtpd read the deferred queue.
 * So that a trusted client cannot make it do so in a loop either, one ETRN runs at a time per
 * spool, at most one per ETRN_INTERVAL; a request in between is told to try again later.
 */
import { canonicalDomain } from '../core/index.js';
import type { Spool } from '../spool/index.js';
import type { Connection } from './connection.js';
import { reply } from './replies.js';

/** Least time between two scans of the deferred queue on behalf of ETRN clients. */
export const ETRN_INTERVAL = 1000;

const recent = new WeakMap<Spool, { running: boolean; last: number }>();

export async function etrn(conn: Connection, _line: Buffer, args: string): Promise<void> {
  const node = args.trim();
  if (conn.state.tx) return conn.protocolError(reply(503, '5.5.1 Error: ETRN not allowed in a mail transaction'));
  if (!node || /\s/.test(node)) return conn.protocolError(reply(501, '5.5.4 Syntax: ETRN <domain> | @<domain>'));
  const shown = node.replace(/[^\x21-\x7e]/g, '?');
  if (!conn.state.trusted) return conn.send(reply(459, `4.7.1 Node ${shown} not allowed: client not in trusted_networks`), 'etrn');
  // "#queue" names a queue of the server's own making (RFC 1985 §3); Postern has none.
  if (node.startsWith('#')) return conn.send(reply(459, `4.3.0 Node ${shown} not allowed: no such queue`), 'etrn');
  const domain = node.startsWith('@') ? node.slice(1) : node;
  if (!canonicalDomain(domain.replace(/\.$/, ''))) return conn.protocolError(reply(501, `5.5.4 Syntax: ${shown} is not a domain name`));

  const spool = conn.host.spool;
  const gate = recent.get(spool) ?? { running: false, last: 0 };
  recent.set(spool, gate);
  if (gate.running || Date.now() - gate.last < ETRN_INTERVAL) {
    return conn.send(reply(458, `4.3.0 Unable to queue messages for node ${shown}: busy, try again later`), 'etrn');
  }
  gate.running = true;
  try {
    const done = await conn.host.etrn(node);
    // Entries are "deferred/<id>.<group>": the client is told messages, not recipient groups.
    const messages = new Set(done.map((e) => e.slice(e.indexOf('/') + 1).split('.')[0]));
    conn.host.log.info({ event: 'smtpd.etrn', client: conn.state.remoteAddress, node: shown, entries: done.length, messages: messages.size }, 'ETRN');
    if (messages.size === 0) conn.send(reply(251, `2.0.0 OK, no messages waiting for node ${shown}`));
    else conn.send(reply(253, `2.0.0 OK, ${messages.size} pending messages for node ${shown} started`));
  } catch (err) {
    conn.host.log.error({ event: 'smtpd.etrn_failed', err }, 'ETRN failed');
    conn.send(reply(458, `4.3.0 Unable to queue messages for node ${shown}`), 'etrn');
  } finally {
    gate.running = false;
    gate.last = Date.now();
  }
}
