/**
 * Postfix's smtp-sink as a next hop on a free loopback port, with its own ways to misbehave
 * (`-q cmd`: hang up without a reply after a command; `-W cmd:secs`: answer late) and, with
 * `-v`, its account of each conversation line by line ("connect (AF_INET …)", "EHLO x", "QUIT",
 * "disconnect"), so a test can see what our client did on the wire without a hand-made server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './gateway.js';
import { waitUntil } from './send.js';

export interface PostfixSink {
  host: string;
  port: number;
  /** smtp-sink -v lines, "smtp-sink: " removed, in order (only with verbose). */
  lines: string[];
  stop(): Promise<void>;
}

export async function startPostfixSink(args: string[] = [], opts: { verbose?: boolean } = {}): Promise<PostfixSink> {
  const port = await freePort();
  const host = '127.0.0.1';
  const child: ChildProcess = spawn('/usr/sbin/smtp-sink', [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), ...(opts.verbose ? ['-v'] : []), ...args, `${host}:${port}`, '50'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let rest = '';
  const onData = (d: Buffer) => {
    const parts = (rest + d.toString('latin1')).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) lines.push(p.replace(/^\S*smtp-sink: /, '').trimEnd());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Ready when it accepts a connection (that probe is the first "connect" in `lines`).
  await waitUntil(
    () =>
      new Promise<boolean>((res) => {
        const s = connect({ host, port }, () => (s.destroy(), res(true)));
        s.on('error', () => res(false));
      }),
    5000,
    `smtp-sink on ${port}`,
  );
  if (opts.verbose) await waitUntil(async () => lines.filter((l) => l === 'disconnect').length >= 1, 5000, 'smtp-sink saw the probe go');
  lines.length = 0;
  return {
    host,
    port,
    lines,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
