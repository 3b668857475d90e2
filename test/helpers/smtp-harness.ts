/**
 * Starts smtpd in-process on 127.0.0.1:0 with a temporary spool, and reads back what it queued.
 */
import { readdir } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Config } from '../../src/config/types.js';
import { startSmtpd, type Smtpd } from '../../src/smtpd/index.js';
import { Spool, type DecodedEntry } from '../../src/spool/index.js';
import { tempDir, testConfig } from './config.js';

type Overrides = Parameters<typeof testConfig>[1];

export interface SmtpdHarness {
  smtpd: Smtpd;
  spool: Spool;
  config: Config;
  dir: string;
  port: number;
  /** Every log line smtpd wrote (parsed JSON). */
  logs: Record<string, unknown>[];
  /** Decoded entries of incoming/. */
  incoming(): Promise<DecodedEntry[]>;
  tmpFiles(): Promise<string[]>;
  stop(): Promise<void>;
}

export function captureLogger(into: Record<string, unknown>[]): Logger {
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) into.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return pino({ level: 'debug' }, dest);
}

export async function startTestSmtpd(over: Overrides = {}): Promise<SmtpdHarness> {
  const { dir, cleanup } = await tempDir('postern-smtpd-');
  const config = testConfig(dir, over);
  const spool = await Spool.open(config.data_dir);
  const logs: Record<string, unknown>[] = [];
  let smtpd: Smtpd;
  try {
    smtpd = await startSmtpd({ config, spool, log: captureLogger(logs) });
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    smtpd,
    spool,
    config,
    dir,
    port: smtpd.addresses[0]!.port,
    logs,
    async incoming() {
      const names = await spool.list('incoming');
      return Promise.all(names.map((n) => spool.read('incoming', n)));
    },
    tmpFiles: () => readdir(spool.dir('tmp')),
    async stop() {
      await smtpd.close(2000);
      await cleanup();
    },
  };
}

/** Split a spooled body into its first (Received) header field and the rest. */
export function splitReceived(body: Buffer): { received: string; rest: Buffer } {
  const s = body.toString('latin1');
  if (!s.startsWith('Received: ')) throw new Error('spooled message does not start with Received:');
  let end = s.indexOf('\r\n') + 2;
  while (s[end] === '\t' || s[end] === ' ') end = s.indexOf('\r\n', end) + 2;
  return { received: s.slice(0, end), rest: body.subarray(end) };
}

/** Poll until `cond` holds (spool commits are asynchronous to the client's view). */
export async function eventually(cond: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

