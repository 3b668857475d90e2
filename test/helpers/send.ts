import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodemailer from 'nodemailer';

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
 * Send `tokens` as separate messages over a pool of connections (reused, as real relays do).
 * A message counts as accepted only when the server answered 250 to its DATA.
 */
export async function sendTokens(port: number, tokens: string[], opts: { connections?: number; to?: string[]; from?: string } = {}): Promise<SendResult> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: opts.connections ?? 8,
    maxMessages: Infinity,
    connectionTimeout: 5000,
    socketTimeout: 10_000,
  });
  const result: SendResult = { accepted: [], failed: [] };
  const to = opts.to ?? ['bob@example.com'];
  const from = opts.from ?? 'alice@example.org';
  try {
    await Promise.all(
      tokens.map(async (token) => {
        try {
          const info = await transport.sendMail({ envelope: { from, to }, raw: tokenMessage(token, from, to.join(', ')) });
          if (/^250 /.test(info.response)) result.accepted.push(token);
          else result.failed.push({ token, error: info.response });
        } catch (err) {
          result.failed.push({ token, error: (err as Error).message });
        }
      }),
    );
  } finally {
    transport.close();
  }
  return result;
}

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
    const text = await readFile(join(maildir, 'new', n), 'latin1');
    const m = /^X-Test-Token: (\S+)/m.exec(text);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
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

/** Send one raw message (CRLF throughout) with the given envelope; resolves with the server's reply. */
export async function sendRaw(port: number, from: string, to: string[], raw: Buffer): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 5000, socketTimeout: 10_000 });
  try {
    const info = await transport.sendMail({ envelope: { from, to }, raw });
    return info.response;
  } finally {
    transport.close();
  }
}
