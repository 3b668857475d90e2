/**
 * RFC 1845 across a crash: smtpd is SIGKILLed in the middle of a checkpointed DATA (no chance to
 * keep anything on the way out), the supervisor starts a new one, and the client resumes. The
 * offset announced must be one a checkpoint had made durable before the kill, and the message
 * delivered to the maildir must be the original, once.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { dataStream, openTransaction, sendRest, transactionOffset } from '../helpers/checkpoint-client.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { waitUntil } from '../helpers/send.js';

/** The offset of the checkpoint record on disk (spool/partial/<key>.ckpt), or 0. */
async function durableOffset(partialDir: string): Promise<number> {
  for (const n of await readdir(partialDir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{40}\.ckpt$/.test(n)) continue;
    const m = /"offset":(\d+)/.exec(await readFile(join(partialDir, n), 'utf8').catch(() => ''));
    if (m) return Number(m[1]);
  }
  return 0;
}

describe('CHECKPOINT/RESTART when smtpd is killed', () => {
  let gw: Gateway | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterAll(async () => {
    gw?.killAll();
    await cleanup?.();
  });

  it('resumes from a checkpoint made before the kill and delivers the message once, byte for byte', { timeout: 120_000 }, async () => {
    const t = await tempDir('postern-ckpt-crash-');
    cleanup = t.cleanup;
    const port = await freePort();
    const file = await writeGatewayConfig(t.dir, port);
    await writeFile(file, (await readFile(file, 'utf8')).replace(/^smtp:\n/m, 'smtp:\n  checkpoint: true\n'));
    gw = await startGateway(file);

    const lines = ['From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: crash resume\r\n\r\n'];
    for (let i = 0; i < 40_000; i++) lines.push(i % 11 === 5 ? `.dot-led ${i}\r\n` : `line ${i} ${'y'.repeat(64)}\r\n`);
    const msg = Buffer.from(lines.join(''), 'latin1');
    const stream = dataStream(msg);
    const tx = { helo: 'mta.example.org', sender: 'alice@example.org', recipients: ['bob@example.com'], transid: '<crash.1@mta.example.org>' };

    const { client, mail } = await openTransaction(port, tx);
    expect(mail.code).toBe(250);
    expect((await client.cmd('DATA')).code).toBe(354);
    const sent = Math.floor(stream.length * 0.8);
    client.write(stream.subarray(0, sent));
    const partial = join(t.dir, 'spool', 'partial');
    // Two periodic checkpoints (every MiB) on disk, then the kill: nothing is kept on the way out.
    await waitUntil(async () => (await durableOffset(partial)) >= 2 * (1 << 20), 30_000, 'a checkpoint past 2 MiB');
    const before = await durableOffset(partial);
    const [smtpd] = gw.rolePids('smtpd');
    process.kill(smtpd!, 'SIGKILL');
    await client.closed;
    await waitUntil(async () => gw!.rolePids('smtpd').length > 1 && gw!.logs.filter((l) => l.event === 'smtpd.listening').length > 1, 30_000, 'smtpd restarted');

    const again = await openTransaction(port, tx);
    const offset = transactionOffset(again.mail);
    expect(offset).toBeGreaterThanOrEqual(before);
    expect(offset).toBeLessThan(sent);
    expect(msg.subarray(offset - 2, offset).toString()).toBe('\r\n');
    expect((await sendRest(again.client, msg, offset)).code).toBe(250);
    await again.client.cmd('QUIT');

    const maildir = join(t.dir, 'maildir', 'new');
    await waitUntil(async () => (await readdir(maildir).catch(() => [])).length > 0, 60_000, 'delivered');
    await new Promise((r) => setTimeout(r, 500));
    const delivered = await readdir(maildir);
    expect(delivered.length).toBe(1);
    const bytes = await readFile(join(maildir, delivered[0]!));
    // Postern's own header fields come first; the message itself follows unchanged.
    expect(bytes.subarray(bytes.length - msg.length).equals(msg)).toBe(true);
    expect(await readdir(partial)).toEqual([]);
    expect(await gw.stop()).toEqual({ code: 0, signal: null });
  });
});
