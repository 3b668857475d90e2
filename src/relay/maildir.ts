/**
 * Local delivery to a Maildir (https://cr.yp.to/proto/maildir.html): write to tmp/, fsync, rename
 * into new/, fsync new/. A reader never sees a partial file, and once we report "delivered" the
 * file survives a power cut. One file per recipient, because each copy carries its own
 * Delivered-To: (what a mail store or sieve filter keys on).
 */
import type { MessageSource } from './smtp-client-body.js';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { outcomeLine } from '../core/index.js';
import { writeAll } from '../spool/index.js';
import type { OutboundMessage, RecipientOutcome } from './outcome.js';

let counter = 0;

/** Maildir forbids "/" and ":" in the host part (":" starts the info suffix in cur/). */
function safeHostname(): string {
  return hostname().replace(/\//g, '\\057').replace(/:/g, '\\072') || 'localhost';
}

/** `<time>.<pid>_<counter>.<hostname>`: unique per process by the counter, across hosts by name. */
export function maildirName(now = Date.now()): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${Math.floor(now / 1000)}.${process.pid}_${counter}.${safeHostname()}`;
}

/** Header lines must not be able to inject more header lines. */
function headerSafe(s: string): boolean {
  return !/[\r\n\0]/.test(s);
}

async function ensureMaildir(path: string): Promise<void> {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(path, sub), { recursive: true, mode: 0o700 });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Write one copy into tmp/ (exclusive create: a name clash retries rather than overwrites). */
async function writeTmp(path: string, parts: Buffer[], body: MessageSource): Promise<string> {
  for (let tries = 0; ; tries++) {
    const name = maildirName();
    const file = join(path, 'tmp', name);
    let fh;
    try {
      fh = await open(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && tries < 5) continue;
      throw err;
    }
    try {
      // Checked to the last byte: a short write on a full disk must not become a "delivered".
      await writeAll(fh, Buffer.isBuffer(body) ? [...parts, body] : parts);
      // A spool file range is copied chunk by chunk, never held whole.
      if (!Buffer.isBuffer(body)) for await (const chunk of body.open()) await writeAll(fh, [chunk as Buffer]);
      await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(file, { force: true });
      throw err;
    }
    await fh.close();
    return name;
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return outcomeLine('deferred_local', { reason: `maildir write failed: ${e.code ?? ''} ${e.message ?? String(err)}` }).replace(/\s+/g, ' ').trim();
}

/**
 * Deliver to every recipient of `msg`. Local I/O problems (disk full, permissions) are temporary:
 * the admin can fix them and the message must wait, not bounce.
 */
export async function deliverMaildir(path: string, msg: OutboundMessage): Promise<RecipientOutcome[]> {
  try {
    await ensureMaildir(path);
  } catch (err) {
    return msg.recipients.map((recipient) => ({ recipient, status: 'deferred', reply: reason(err) }));
  }
  if (!headerSafe(msg.sender)) {
    return msg.recipients.map((recipient) => ({ recipient, status: 'failed', reply: outcomeLine('bounced_bad_sender', {}) }));
  }
  const returnPath = Buffer.from(`Return-Path: <${msg.sender}>\r\n`, 'utf8');
  const outcomes: RecipientOutcome[] = [];
  let renamed = false;
  for (const recipient of msg.recipients) {
    if (!headerSafe(recipient)) {
      outcomes.push({ recipient, status: 'failed', reply: outcomeLine('bounced_bad_recipient', {}) });
      continue;
    }
    try {
      const name = await writeTmp(path, [returnPath, Buffer.from(`Delivered-To: ${recipient}\r\n`, 'utf8')], msg.body);
      await rename(join(path, 'tmp', name), join(path, 'new', name));
      renamed = true;
      outcomes.push({ recipient, status: 'delivered', reply: outcomeLine('delivered', { file: name }) });
    } catch (err) {
      outcomes.push({ recipient, status: 'deferred', reply: reason(err) });
    }
  }
  if (renamed) {
    try {
      await fsyncDir(join(path, 'new'));
    } catch (err) {
      // Not durable yet: say so and retry. A retry may leave a second copy after a crash, which
      // beats reporting a delivery that a power cut could undo.
      for (const o of outcomes) if (o.status === 'delivered') Object.assign(o, { status: 'deferred', reply: reason(err) });
    }
  }
  return outcomes;
}
