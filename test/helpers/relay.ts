/** Feeding the relay in tests exactly as a worker does: createIncoming → claim → commitOutgoing. */
import type { Envelope } from '../../src/core/index.js';
import type { Spool } from '../../src/spool/index.js';

export function envelope(sender: string, rcpts: (string | Envelope['recipients'][number])[], over: Partial<Envelope> = {}): Envelope {
  return {
    sender,
    recipients: rcpts.map((r) => (typeof r === 'string' ? { address: r } : r)),
    client: { address: '127.0.0.1', port: 1234, helo: 'client', hostname: '[127.0.0.1]', protocol: 'ESMTP', trusted: true },
    receivedAt: new Date().toISOString(),
    ...over,
  };
}

/** Spool a message the way the worker hands it to the relay; returns the outgoing name. */
export async function queueMessage(spool: Spool, env: Envelope, body: Buffer): Promise<string> {
  const w = await spool.createIncoming(env);
  w.write(body);
  const id = await w.commit();
  const claimed = (await spool.claim(id))!;
  const [name] = await spool.commitOutgoing(claimed, [{ envelope: claimed.meta.envelope, body: claimed.body }]);
  return name!;
}
