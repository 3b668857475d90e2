/** Relay tests: feeding the relay exactly as a worker does (createIncoming → claim → commitOutgoing), and their set-up. */
import { afterEach, beforeEach } from 'vitest';
import type { Config } from '../../src/config/types.js';
import type { Envelope, OutgoingNotes } from '../../src/core/index.js';
import { startRelay, type Relay, type RelayOptions } from '../../src/relay/index.js';
import { Spool } from '../../src/spool/index.js';
import { tempDir } from './config.js';
import { startSink, type SinkOptions, type SmtpSink } from './sink-smtp.js';
import { captureLogger } from './smtp-harness.js';

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
export async function queueMessage(spool: Spool, env: Envelope, body: Buffer, notes?: OutgoingNotes): Promise<string> {
  const w = await spool.createIncoming(env);
  w.write(body);
  const id = await w.commit();
  const claimed = (await spool.claim(id))!;
  const [name] = await spool.commitOutgoing(claimed, [{ envelope: claimed.meta.envelope, body: claimed.body, ...(notes ? { notes } : {}) }]);
  return name!;
}

/**
 * The per-test set-up shared by the relay's integration tests: a fresh data dir and spool, a log
 * capture, and the relays and SMTP sinks a test starts, all stopped after it.
 */
export interface RelayHarness {
  readonly dir: string;
  readonly spool: Spool;
  readonly logs: Record<string, unknown>[];
  sink(opts?: SinkOptions): Promise<SmtpSink>;
  start(config: Config, extra?: Partial<RelayOptions>): Promise<Relay>;
  events(event: string): Record<string, unknown>[];
}

export function useRelayHarness(prefix: string): RelayHarness {
  let dir = '';
  let spool: Spool | undefined;
  let cleanup: () => Promise<void> = async () => undefined;
  let logs: Record<string, unknown>[] = [];
  let relays: Relay[] = [];
  let sinks: SmtpSink[] = [];
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir(prefix));
    spool = await Spool.open(dir);
    logs = [];
    relays = [];
    sinks = [];
  });
  afterEach(async () => {
    for (const r of relays) await r.close(2000);
    for (const s of sinks) await s.close();
    await cleanup();
  });
  return {
    get dir() {
      return dir;
    },
    get spool() {
      return spool!;
    },
    get logs() {
      return logs;
    },
    async sink(opts = {}) {
      const s = await startSink(opts);
      sinks.push(s);
      return s;
    },
    async start(config, extra = {}) {
      const r = await startRelay({ config, spool: spool!, log: captureLogger(logs), smtpTimeouts: { connection: 2000, greeting: 2000, socket: 5000 }, ...extra });
      relays.push(r);
      return r;
    },
    events: (event) => logs.filter((l) => l.event === event),
  };
}
