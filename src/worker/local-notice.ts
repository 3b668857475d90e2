/**
 * A notice Postern writes to one of its own users outside the processing of a message (an admin
 * reset a PDF or webmail password): queued straight into outgoing/ like a bounce the relay writes,
 * so the running relay delivers it (its directory watch) and no policy touches it again.
 */
import type { Config } from '../config/types.js';
import { newQueueId } from '../core/queue-id.js';
import type { Spool } from '../spool/index.js';

/** Queue `body` from <> to `to` (NOTIFY=NEVER: a notice that cannot be delivered starts no loop); its queue id. */
export async function queueLocalNotice(spool: Spool, config: Config, to: string, build: (queueId: string) => Buffer, key: string): Promise<string> {
  const id = newQueueId();
  const smtputf8 = /[^\x00-\x7f]/.test(to);
  await spool.inject(id, {
    envelope: {
      sender: '',
      recipients: [{ address: to, notify: ['NEVER'] }],
      client: { address: '127.0.0.1', port: 0, helo: config.hostname, hostname: 'localhost', protocol: 'local', trusted: true },
      receivedAt: new Date().toISOString(),
      ...(smtputf8 ? { smtputf8: true } : {}),
    },
    body: build(id),
    key,
  });
  return id;
}
