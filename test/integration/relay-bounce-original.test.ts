/**
 * A bounce returns the message as its sender wrote it — never the copy the gateway made for the
 * recipient. Through the running gateway: Alice's mail, signed and S/MIME-encrypted to Bob, meets a
 * next hop (Postfix's smtp-sink) that refuses Bob with 550; Alice's bounce carries her own
 * plaintext, not the ciphertext nor the signed form. And a partner's encrypted mail, decrypted
 * here for Frank whose next hop refuses him, goes back with its headers only — the headers the
 * partner sent, nothing the decryption revealed (partner2.example's mail, bounces included, goes to
 * the test maildir). Python's email package reads the bounces.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run } from '../helpers/pki-openssl.js';
import { startPostfixSink, type PostfixSink } from '../helpers/postfix-sink.js';
import { sendRaw } from '../helpers/send.js';

describe('bounces return what the sender wrote', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let refusing: PostfixSink;
  const { waitDelivered } = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-bounce-original-'));
    const [ourCa, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    const [alice, bob, frank] = await Promise.all([
      opensslMailbox(dir, ourCa, 'alice@example.com'),
      opensslMailbox(dir, partnerCa, 'bob@partner.example'),
      opensslMailbox(dir, ourCa, 'frank@sub.example.com'),
    ]);
    // Refuses every recipient at RCPT TO, as a Postfix refuses an unknown user.
    refusing = await startPostfixSink(['-f', 'RCPT', '-B', '550 5.1.1 Recipient address rejected: User unknown']);
    port = await freePort();
    const config = await writeGatewayConfig(dir, port);
    const hop = `smtp://127.0.0.1:${refusing.port}`;
    await writeFile(
      config,
      (await readFile(config, 'utf8'))
        .replace('internal_domains: [example.com]', 'internal_domains: [example.com, sub.example.com]')
        .replace('relay:\n  routes:\n', `relay:\n  routes:\n    partner.example: ${hop}\n    sub.example.com: ${hop}\n`),
    );
    for (const args of [
      ['cert', 'import', ourCa.cert, '--trust'],
      ['cert', 'import', partnerCa.cert, '--trust'],
      ['cert', 'import', alice.cert, '--key', alice.key],
      ['cert', 'import', bob.cert],
      ['cert', 'import', frank.cert, '--key', frank.key],
    ]) {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
    }
    gw = await startGateway(config);
    // The inbound message of the second test, encrypted by openssl to Frank.
    await writeFile(join(dir, 'd1-inner.txt'), 'Content-Type: text/plain; charset=us-ascii\r\n\r\nthe decrypted secret, token d1\r\n');
    await run('openssl', ['cms', '-encrypt', '-in', join(dir, 'd1-inner.txt'), '-aes256', '-out', join(dir, 'd1-enc.eml'), frank.cert]);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await refusing?.stop();
    await cleanup();
  });

  it('an S/MIME-encrypted message refused with 550 bounces with the plaintext Alice wrote', async () => {
    const written =
      'From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: figures b1\r\nMessage-ID: <b1@example.com>\r\n' +
      `Date: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAlice's own words, token b1.\r\n`;
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], Buffer.from(written))).toMatch(/^250 /);
    // The copy for Bob was encrypted (and refused): the worker made it, the relay tried it.
    await gw.waitFor((l) => l.event === 'relay.bounce' && JSON.stringify(l.recipients).includes('bob@partner.example'));
    const file = await waitDelivered('alice@example.com', 'Undelivered Mail Returned to Sender');
    const bounce = await readFile(file);
    const dsn = await parseDsn(bounce);
    expect(dsn.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; bob@partner.example', action: 'failed', status: '5.1.1', 'remote-mta': 'dns; 127.0.0.1' })]);
    expect(dsn.recipients[0]!['diagnostic-code']).toBe('smtp; 550 5.1.1 Recipient address rejected: User unknown');
    expect(dsn.returned).toMatchObject({ type: 'message/rfc822' });
    expect(dsn.returned!.headers).toMatchObject({ subject: 'figures b1', 'message-id': '<b1@example.com>', 'content-type': 'text/plain; charset=us-ascii' });
    expect(dsn.returned!.body).toMatch(/^Alice's own words, token b1\.\r?\n$/); // Python reads the line end as \n
    // Byte for byte what she sent, below the Received header smtpd put on it.
    expect(bounce.toString('latin1')).toContain(written);
    expect(bounce.toString('latin1')).not.toMatch(/pkcs7|multipart\/signed/i);
  });

  it('a message decrypted here for a recipient refused with 550 goes back as its sender sent it, headers only', async () => {
    const enc = (await readFile(join(dir, 'd1-enc.eml'), 'latin1')).replace(/\r?\n/g, '\r\n');
    const raw = Buffer.from(`From: dave@partner2.example\r\nTo: frank@sub.example.com\r\nSubject: sealed d1\r\nMessage-ID: <d1@partner2.example>\r\nDate: ${new Date().toUTCString()}\r\n${enc}`, 'latin1');
    expect(await sendRaw(port, 'dave@partner2.example', ['frank@sub.example.com'], raw)).toMatch(/^250 /);
    await gw.waitFor((l) => l.event === 'worker.decrypted');
    const file = await waitDelivered('dave@partner2.example', 'Undelivered Mail Returned to Sender');
    const bounce = await readFile(file, 'latin1');
    const dsn = await parseDsn(Buffer.from(bounce, 'latin1'));
    expect(dsn.recipients).toEqual([expect.objectContaining({ 'final-recipient': 'rfc822; frank@sub.example.com', action: 'failed' })]);
    expect(dsn.returned).toMatchObject({ type: 'text/rfc822-headers' });
    // The headers Dave's message came with: its S/MIME type, no result of our decryption.
    expect(dsn.returned!.headers).toMatchObject({ subject: 'sealed d1', 'message-id': '<d1@partner2.example>' });
    expect(dsn.returned!.headers['content-type']).toMatch(/^application\/(x-)?pkcs7-mime/);
    expect(dsn.returned!.headers).not.toHaveProperty('x-postern-encryption');
    expect(bounce).not.toContain('token d1');
    expect(bounce).not.toContain('the decrypted secret');
  });
});
