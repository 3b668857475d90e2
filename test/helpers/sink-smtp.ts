/**
 * An in-process SMTP sink (smtp-server) on 127.0.0.1:0 that records every transaction byte-exact,
 * with optional STARTTLS or implicit TLS (a fresh self-signed certificate from openssl) and
 * scriptable per-recipient replies, so relay tests can see exactly what went over the wire.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { tempDir } from './config.js';

export interface SinkTransaction {
  /** MAIL FROM address; "" for <>. */
  mailFrom: string;
  rcptTo: string[];
  /** The message as received (dot-unstuffed by smtp-server, otherwise untouched). */
  data: Buffer;
  /** The session was encrypted (STARTTLS or implicit TLS). */
  secure: boolean;
  /** BODY= given with MAIL FROM, if any. */
  body?: string;
  /** The DSN parameters as smtp-server parsed them (xtext decoded); per recipient, undefined when none. */
  dsn?: { ret?: string; envid?: string; rcpt: ({ notify?: string[]; orcpt?: string } | undefined)[] };
}

export interface SinkReply {
  code: number;
  message: string;
}

export interface SinkOptions {
  /** Offer STARTTLS with a self-signed certificate (off: STARTTLS is neither offered nor accepted). */
  starttls?: boolean;
  /** Implicit TLS from the first byte (smtps). */
  secure?: boolean;
  /** Reply to RCPT TO; undefined accepts. Called once per RCPT command. */
  rcptReply?: (address: string) => SinkReply | undefined;
  /** Hold the reply to the end of DATA this long (a slow next hop). */
  dataDelayMs?: number;
  /** Reply to the end of DATA; undefined accepts. The transaction is recorded either way. */
  dataReply?: (t: SinkTransaction) => SinkReply | undefined;
  /** Announce DSN (RFC 3461) and record the parameters (smtp-server hides it by default). */
  dsn?: boolean;
  /** Announce this SIZE limit in EHLO (RFC 1870). */
  size?: number;
  /** Listen on this loopback address (127.0.0.1 by default) and port (ephemeral by default). */
  host?: string;
  port?: number;
}

export interface SmtpSink {
  host: string;
  port: number;
  transactions: SinkTransaction[];
  /** Every RCPT TO address seen, accepted or not, in order. */
  rcptAttempts: string[];
  /** Wait until at least `n` transactions were recorded. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function selfSigned(): Promise<{ key: Buffer; cert: Buffer }> {
  const { dir, cleanup } = await tempDir('postern-sink-tls-');
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=sink.test', '-days', '1', '-keyout', key, '-out', cert,
    ]);
    return { key: await readFile(key), cert: await readFile(cert) };
  } finally {
    await cleanup();
  }
}

export async function startSink(opts: SinkOptions = {}): Promise<SmtpSink> {
  const tls = opts.starttls || opts.secure ? await selfSigned() : undefined;
  const transactions: SinkTransaction[] = [];
  const rcptAttempts: string[] = [];
  const server = new SMTPServer({
    secure: !!opts.secure,
    ...(tls ? { key: tls.key, cert: tls.cert } : {}),
    // Never the library's built-in key: without a certificate there is no STARTTLS at all.
    hideSTARTTLS: !opts.starttls,
    disabledCommands: opts.starttls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    authOptional: true,
    disableReverseLookup: true,
    ...(opts.size ? { size: opts.size } : {}),
    hideDSN: !opts.dsn,
    logger: false,
    onRcptTo(address, _session, cb) {
      rcptAttempts.push(address.address);
      const r = opts.rcptReply?.(address.address);
      if (!r) return cb();
      const err = new Error(r.message) as Error & { responseCode: number };
      err.responseCode = r.code;
      cb(err);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        // Recorded before the (possibly delayed) reply: what arrived, not what was acknowledged.
        const t: SinkTransaction = {
          mailFrom: from ? from.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
          body: from && typeof from.args === 'object' && from.args ? (from.args as Record<string, string>).BODY : undefined,
          dsn: {
            ...(session.envelope.dsn?.ret ? { ret: session.envelope.dsn.ret } : {}),
            ...(session.envelope.dsn?.envid ? { envid: session.envelope.dsn.envid } : {}),
            rcpt: session.envelope.rcptTo.map((r) => (r as { dsn?: { notify?: string[]; orcpt?: string } }).dsn),
          },
        };
        transactions.push(t);
        const refusal = opts.dataReply?.(t);
        const reply = () => {
          if (!refusal) return cb(null, 'Ok: sunk');
          cb(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
        };
        if (opts.dataDelayMs) setTimeout(reply, opts.dataDelayMs).unref();
        else reply();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => res());
  });
  const { port } = server.server.address() as AddressInfo;
  return {
    host: opts.host ?? '127.0.0.1',
    port,
    transactions,
    rcptAttempts,
    async waitFor(n, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (transactions.length < n) {
        if (Date.now() > end) throw new Error(`sink: ${transactions.length} of ${n} transactions after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}
