/**
 * ETRN (RFC 1985) against the running gateway: a next hop refuses the first attempt (451), so the
 * message waits in deferred/ with an hour until its next try; ETRN from the trusted internal
 * server (127.0.0.2) has it delivered at once, ETRN from an outsider (127.0.0.1) is refused and
 * changes nothing.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { tokenMessage, transaction, waitUntil } from '../helpers/send.js';
import { startSink, type SmtpSink } from '../helpers/sink-smtp.js';
import { SmtpTestClient } from '../helpers/smtp-client.js';

const INSIDE = '127.0.0.2';
const OUTSIDE = '127.0.0.1';

describe('ETRN starts delivery of deferred mail (the real gateway)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  let sink: SmtpSink | undefined;
  let port: number;
  const attempts = new Map<string, number>();

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-etrn-'));
    // Greylisting next hop: each recipient's first RCPT is refused for now.
    sink = await startSink({
      rcptReply: (address) => {
        const n = (attempts.get(address) ?? 0) + 1;
        attempts.set(address, n);
        return n === 1 ? { code: 451, message: '4.7.1 greylisted, try again later' } : undefined;
      },
    });
    port = await freePort();
    const config = await writeGatewayConfig(dir, port, '', `smtp://127.0.0.1:${sink.port}\n  retry: [1h]`);
    await writeFile(config, (await readFile(config, 'utf8')).replace('trusted_networks: [127.0.0.0/8]', `trusted_networks: [${INSIDE}/32]`));
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await sink?.close();
    await cleanup?.();
  });

  const deferred = () => readdir(join(dir, 'spool', 'deferred')).catch(() => [] as string[]);

  async function etrn(from: string, node: string): Promise<string> {
    const c = await SmtpTestClient.connect(port, '127.0.0.1', from);
    expect((await c.cmd('EHLO etrn.client.test')).lines).toContain('ETRN');
    const r = await c.cmd(`ETRN ${node}`);
    c.write('QUIT\r\n');
    await c.readUntilClosed();
    return r.raw;
  }

  it('delivers the deferred mail of a domain at once for a trusted client, refuses an outsider', { timeout: 60_000 }, async () => {
    const c = await SmtpTestClient.connect(port, '127.0.0.1', INSIDE);
    expect((await c.cmd('EHLO inside.test')).code).toBe(250);
    await transaction(c, 'alice@example.com', ['far@partner.example'], tokenMessage('etrn-1', 'alice@example.com', 'far@partner.example'));
    await transaction(c, 'alice@example.com', ['near@other.example'], tokenMessage('etrn-2', 'alice@example.com', 'near@other.example'));
    c.destroy();
    await waitUntil(async () => (await deferred()).length === 2, 30_000, 'both messages deferred after the 451');
    expect(sink!.transactions).toHaveLength(0);

    // An outsider may not start deliveries: refused, nothing moves.
    expect(await etrn(OUTSIDE, 'partner.example')).toBe('459 4.7.1 Node partner.example not allowed: client not in trusted_networks');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await deferred()).toHaveLength(2);
    expect(sink!.transactions).toHaveLength(0);

    // The internal server asks for @partner.example (the domain and its subdomains): one message.
    expect(await etrn(INSIDE, '@partner.example')).toBe('253 2.0.0 OK, 1 pending messages for node @partner.example started');
    await sink!.waitFor(1, 20_000);
    expect(sink!.transactions[0]!.rcptTo).toEqual(['far@partner.example']);
    expect(sink!.transactions[0]!.data.toString('latin1')).toContain('body of etrn-1');
    // The other domain's message is left to its timer.
    await waitUntil(async () => (await deferred()).length === 1, 10_000, 'one message left deferred');
    expect(sink!.transactions).toHaveLength(1);
    // The gateway's log comes through a pipe, a little after the delivery.
    await gw!.waitFor((l) => l.event === 'smtpd.etrn' && l.node === '@partner.example' && l.messages === 1);

    // A second trusted client session a moment later for the other domain.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await etrn(INSIDE, 'other.example')).toMatch(/^253 2\.0\.0 OK, 1 pending messages for node other\.example started$/);
    await sink!.waitFor(2, 20_000);
    expect(sink!.transactions[1]!.rcptTo).toEqual(['near@other.example']);
  });
});
