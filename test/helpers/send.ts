import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmtpTestClient } from './smtp-client.js';

/** A message whose token header lets a test find it again after delivery. */
export function tokenMessage(token: string, from = 'alice@example.org', to = 'bob@example.com'): Buffer {
  return Buffer.from(
    `From: ${from}\r\nTo: ${to}\r\nSubject: test ${token}\r\nMessage-ID: <${token}@test.example>\r\nX-Test-Token: ${token}\r\n` +
      `Date: ${new Date().toUTCString()}\r\n\r\nbody of ${token}\r\n`,
  );
}

export interface SendResult {
  accepted: string[];
  failed: { token: string; error: string }[];
}

/**
 * SMTP-ready bytes of a message: bare CR or LF made CRLF, a final CRLF added, lines starting with
 * "." doubled, and the end-of-data line — what any SMTP client library does with a raw message.
 */
export function dataBytes(raw: Buffer): Buffer {
  let text = raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text.replace(/^\./gm, '..') + '.\r\n', 'latin1');
}

/** One transaction on an open session; the reply to the end of data, or throws with the refusal. */
export async function transaction(c: SmtpTestClient, from: string, to: string[], raw: Buffer): Promise<string> {
  const utf8 = /[^\x00-\x7f]/.test([from, ...to].join(''));
  const mail = await c.cmd(`MAIL FROM:<${from}>${utf8 ? ' SMTPUTF8' : ''}`, utf8);
  if (mail.code !== 250) throw new Error(mail.raw);
  let accepted = 0;
  let refusal = '';
  for (const r of to) {
    const reply = await c.cmd(`RCPT TO:<${r}>`, utf8);
    if (reply.code === 250 || reply.code === 251) accepted++;
    else refusal = reply.raw;
  }
  if (!accepted) {
    await c.cmd('RSET');
    throw new Error(refusal);
  }
  const data = await c.cmd('DATA');
  if (data.code !== 354) throw new Error(data.raw);
  c.write(dataBytes(raw));
  const end = await c.read(30_000);
  if (!end) throw new Error('connection closed before the reply to the end of data');
  if (end.code !== 250) throw new Error(end.raw);
  return end.raw;
}

export async function session(port: number): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  if (c.greeting.code !== 220) {
    c.destroy();
    throw new Error(c.greeting.raw);
  }
  const ehlo = await c.cmd('EHLO client.test');
  if (ehlo.code !== 250) throw new Error(ehlo.raw);
  return c;
}

/**
 * Send `tokens` as separate messages over a few connections (reused, as real relays do; one that
 * fails is replaced for the next message). A message counts as accepted only when the server
 * answered 250 to its end of data.
 */
export async function sendTokens(port: number, tokens: string[], opts: { connections?: number; to?: string[] | ((token: string) => string[]); from?: string } = {}): Promise<SendResult> {
  const result: SendResult = { accepted: [], failed: [] };
  const recipients = (token: string) => (typeof opts.to === 'function' ? opts.to(token) : (opts.to ?? ['bob@example.com']));
  const from = opts.from ?? 'alice@example.org';
  const queue = [...tokens];
  const worker = async () => {
    let c: SmtpTestClient | null = null;
    for (let token = queue.shift(); token !== undefined; token = queue.shift()) {
      try {
        c ??= await session(port);
        const to = recipients(token);
        await transaction(c, from, to, tokenMessage(token, from, to.join(', ')));
        result.accepted.push(token);
      } catch (err) {
        result.failed.push({ token, error: (err as Error).message });
        c?.destroy();
        c = null;
      }
    }
    if (c) {
      await c.cmd('QUIT').catch(() => undefined);
      c.destroy();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.connections ?? 8, tokens.length)) }, worker));
  return result;
}

/**
 * The token of each file ever read from a maildir's new/, by path. A file there never changes (the
 * maildir transport writes in tmp/ and renames), and the crash tests poll hundreds of them ten
 * times a second: read each once, not at every poll, so the test costs the gateway no CPU time.
 */
const tokenOfFile = new Map<string, string | null>();

/** Count deliveries per token in a maildir's new/ folder. */
export async function maildirTokens(maildir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let names: string[] = [];
  try {
    names = await readdir(join(maildir, 'new'));
  } catch {
    return counts;
  }
  for (const n of names) {
    const path = join(maildir, 'new', n);
    let token = tokenOfFile.get(path);
    if (token === undefined) {
      token = /^X-Test-Token: (\S+)/m.exec(await readFile(path, 'latin1'))?.[1] ?? null;
      tokenOfFile.set(path, token);
    }
    if (token !== null) counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return counts;
}

export async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${what}`);
}

/** Send one raw message with the given envelope; resolves with the server's reply to the end of data. */
export async function sendRaw(port: number, from: string, to: string[], raw: Buffer): Promise<string> {
  const c = await session(port);
  try {
    const reply = await transaction(c, from, to, raw);
    await c.cmd('QUIT').catch(() => undefined);
    return reply;
  } finally {
    c.destroy();
  }
}
