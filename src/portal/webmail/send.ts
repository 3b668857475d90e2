/**
 * How the role hands webmail replies to the gateway: composed by compose.ts (shared with the PDF
 * reply page), written into spool/incoming as smtpd would, and the worker woken.
 */
import type { Spool } from '../../spool/index.js';
import { composeReply, replyEnvelope, spoolReply } from '../compose.js';
import type { WebmailReply } from './context.js';

export function spooledReplies(o: { spool: Spool; portalHost: string; tls: boolean; queued?: (id: string) => void }): (r: WebmailReply) => Promise<string> {
  const protocol = o.tls ? 'HTTPS' : 'HTTP';
  return async (r) => {
    const now = new Date();
    const body = composeReply({ ...r, portalHost: o.portalHost, protocol, now });
    const id = await spoolReply(o.spool, replyEnvelope({ from: r.from, to: r.to, client: r.client, protocol, now }), body);
    o.queued?.(id);
    return id;
  };
}
