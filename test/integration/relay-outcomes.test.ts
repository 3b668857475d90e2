/**
 * The outcome catalogue in the relay's hands: the worker's notes (typed, and as an older Postern
 * wrote them) and a next hop's replies become the catalogue's outcome — its reply and status in
 * the recipient's record and the notice, its name in the relay's log line.
 */
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Config, Route } from '../../src/config/types.js';
import { testConfig } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { envelope, queueMessage, useRelayHarness } from '../helpers/relay.js';
import { waitUntil } from '../helpers/send.js';
import type { SmtpSink } from '../helpers/sink-smtp.js';

const message = Buffer.from('From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: figures\r\n\r\nHello.\r\n');

describe('relay: outcomes from the catalogue', () => {
  const h = useRelayHarness('postern-relay-outcomes-');
  const configOf = (s: SmtpSink, relay: Partial<Config['relay']> = {}): Config => {
    const target: Route['target'] = { kind: 'smtp', host: s.host, port: s.port, tls: 'none' };
    return testConfig(h.dir, { relay: { routes: [{ pattern: '*', target }], retry: [100], concurrency: 2, ...relay } as Config['relay'] });
  };
  const notices = (s: SmtpSink) => s.transactions.filter((t) => t.mailFrom === '');

  it('a refusal the worker names bounced_encryption: 550 5.7.1, a bounce, and the outcome in the log', async () => {
    const s = await h.sink();
    await h.start(configOf(s));
    await queueMessage(h.spool, envelope('alice@example.org', ['bob@example.net']), message, {
      reject: 'encryption required, but there is no S/MIME certificate for bob@example.net',
      rejectAs: 'bounced_encryption',
    });
    await waitUntil(async () => notices(s).length === 1, 10_000, 'bounce');
    expect(s.transactions.filter((t) => t.mailFrom !== '')).toEqual([]);
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.recipients[0]).toMatchObject({
      action: 'failed',
      status: '5.7.1',
      'diagnostic-code': 'X-Postern; 550 5.7.1 encryption required, but there is no S/MIME certificate for bob@example.net',
    });
    expect(h.events('relay.bounce')).toEqual([expect.objectContaining({ outcome: 'bounced_encryption' })]);
  });

  it('an entry an older Postern wrote (reject note only) still bounces, as bounced_policy', async () => {
    const s = await h.sink();
    // The bytes of an outgoing entry as the previous version wrote them (POSTERN-SPOOL/1).
    const env = envelope('alice@example.org', ['bob@example.net']);
    const head = `POSTERN-SPOOL/1\n${JSON.stringify({ id: 'LEGACY1', envelope: env, group: 0, notes: { reject: 'no mail to competitors' } })}\n`;
    const sum = createHash('sha256').update(message).digest('hex');
    const tmp = join(h.spool.dir('tmp'), 'LEGACY1.0');
    await writeFile(tmp, Buffer.concat([Buffer.from(head), message, Buffer.from(`\nPOSTERN-END/1 ${message.length} ${sum}\n`)]));
    await rename(tmp, join(h.spool.dir('outgoing'), 'LEGACY1.0'));
    await h.start(configOf(s));
    await waitUntil(async () => notices(s).length === 1, 10_000, 'bounce');
    const dsn = await parseDsn(notices(s)[0]!.data);
    expect(dsn.recipients[0]).toMatchObject({ status: '5.7.1', 'diagnostic-code': 'X-Postern; 550 5.7.1 no mail to competitors' });
    expect(h.events('relay.bounce')).toEqual([expect.objectContaining({ queueId: 'LEGACY1', outcome: 'bounced_policy' })]);
  });

  it("a next hop's size refusal is bounced_size, a 4xx deferred_remote", async () => {
    const s = await h.sink({
      rcptReply: (a) =>
        a === 'big@example.net' ? { code: 552, message: '5.3.4 Message size exceeds fixed limit' } : a === 'grey@example.net' ? { code: 450, message: '4.7.1 greylisted, try again' } : undefined,
    });
    await h.start(configOf(s));
    await queueMessage(h.spool, envelope('alice@example.org', ['big@example.net', 'grey@example.net', 'ok@example.net']), message);
    await waitUntil(async () => h.events('relay.deferred').length >= 1 && h.events('relay.bounce').length === 1, 10_000, `outcomes; logs: ${JSON.stringify(h.logs.slice(-4))}`);
    expect(h.events('relay.delivered')[0]).toMatchObject({ outcome: 'relayed' });
    expect(h.events('relay.bounce')[0]).toMatchObject({ recipients: [expect.objectContaining({ address: 'big@example.net', outcome: 'bounced_size', dsn: '5.3.4' })] });
    expect(h.events('relay.deferred')[0]).toMatchObject({ outcome: 'deferred_remote', dsn: '4.7.1' });
  });
});
