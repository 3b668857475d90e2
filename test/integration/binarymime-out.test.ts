/**
 * BINARYMIME content (RFC 3030) on its way out of a running gateway to a real Postfix next hop over
 * DATA. The messages are put into the gateway's spool as smtpd spools a BDAT BODY=BINARYMIME
 * transaction (byte for byte, envelope body BINARYMIME): all 256 byte values, bare CR and LF,
 * NUL, "\r\n.\r\n" inside the data, a line of 100 000 octets, a 2 MB random part. What Postfix
 * keeps is read by Python's email package: base64 parts that decode to exactly the original
 * bytes, sent with BODY=8BITMIME. Signed and encrypted by S/MIME, openssl opens and verifies it
 * and gives back the same bytes. A signed binary message cannot be converted without breaking its
 * signature: it bounces 5.6.3 with a clear notice, from the relay (passed unchanged) or from the
 * worker (its plan would encrypt it), and never reaches the recipient. End to end, one message
 * comes in through smtpd by BDAT BODY=BINARYMIME in pipelined chunks (test/helpers/bdat-client.ts).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/core/index.js';
import { Spool } from '../../src/spool/index.js';
import { binaryMultipart, binaryParts, binarySingle, hostileBytes, signedBinary, type BinaryParts } from '../helpers/binary-mail.js';
import { tempDir } from '../helpers/config.js';
import { parseDsn } from '../helpers/dsn-parse.js';
import { runPostern, startGateway, writeGatewayConfig, freePort, type Gateway } from '../helpers/gateway.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { startPostfix, type PostfixInstance, type PostfixMessage } from '../helpers/postfix-instance.js';
import { envelope } from '../helpers/relay.js';
import { BdatClient } from '../helpers/bdat-client.js';

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

/** The four leaves of binaryMultipart, as Python decoded them, against the originals. */
function expectParts(got: ParsedPart[], p: BinaryParts, textCte = '8bit'): void {
  expect(got.map((l) => l.cte)).toEqual([textCte, 'base64', 'base64', 'base64']);
  expect(got[0]!.payload!.toString('utf8').replace(/\r\n/g, '\n')).toBe(p.text.toString('utf8').replace(/\r\n/g, '\n'));
  expect(got[1]!.payload!.equals(p.hostile), 'all byte values, bare CR/LF, NUL').toBe(true);
  expect(got[2]!.payload!.equals(p.large), 'the large random part').toBe(true);
  expect(got[3]!.payload!.equals(p.line), 'the 100 000-octet line').toBe(true);
}

describe('BINARYMIME content leaving the gateway for a next hop without BINARYMIME', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let postfix: PostfixInstance;
  let spool: Spool;
  let ourCa: Issued, partnerCa: Issued, alice: Issued, bob: Issued;
  let smtpPort: number;

  /** As smtpd spools a BDAT BODY=BINARYMIME transaction: the bytes as they came. */
  async function spoolBinary(sender: string, rcpts: string[], body: Buffer): Promise<void> {
    const env: Envelope = envelope(sender, rcpts, { body: 'BINARYMIME' });
    const w = await spool.createIncoming(env);
    w.write(body);
    await w.commit();
  }

  async function messageFor(recipient: string, messageId: string, timeoutMs = 60_000): Promise<PostfixMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = postfix.messages().find((x) => x.recipient === recipient && x.raw.includes(messageId));
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`no message ${messageId} for ${recipient} at the Postfix next hop`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-binarymime-'));
    [ourCa, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    [alice, bob] = await Promise.all([opensslMailbox(dir, ourCa, 'alice@example.com'), opensslMailbox(dir, partnerCa, 'bob@partner.example')]);
    postfix = await startPostfix({ debugPeers: true });
    smtpPort = await freePort();
    const config = await writeGatewayConfig(dir, smtpPort, '', `smtp://${postfix.host}:${postfix.port}`);
    for (const args of [['cert', 'import', ourCa.cert, '--trust'], ['cert', 'import', partnerCa.cert, '--trust'], ['cert', 'import', alice.cert, '--key', alice.key], ['cert', 'import', bob.cert]]) {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
    }
    gw = await startGateway(config);
    spool = await Spool.open(dir);
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
    await postfix?.stop();
    await cleanup?.();
  });

  it('passes binary parts on as base64 that decodes to exactly the original bytes (2 MB: streamed from the spool)', async () => {
    const p = binaryParts(2 * 1024 * 1024);
    await spoolBinary('carol@example.com', ['dave@partner.example'], binaryMultipart(p, { from: 'carol@example.com', to: 'dave@partner.example', messageId: 'bin-large@example.com' }));
    const m = await messageFor('dave@partner.example', 'bin-large@example.com');
    const parsed = await parseMail(m.raw);
    expect(parsed.defects).toEqual([]);
    expectParts(leaves(parsed), p);
    // Streamed (large.ts), not loaded: the DATA form was made from the file range as it was written.
    expect(gw.logs.some((l) => l.event === 'worker.large_streamed')).toBe(true);
    expect(gw.logs.find((l) => l.event === 'worker.binary_converted' && l.bodyType === '8BITMIME')).toBeDefined();
    // Over DATA, declared 8BITMIME (the UTF-8 text part is still 8-bit): Postfix's own log of the conversation.
    expect(await postfix.waitForLog(/MAIL FROM:<carol@example\.com>.*BODY=8BITMIME/)).toBeTruthy();
    expect(postfix.log()).not.toMatch(/BINARYMIME/);
  }, 90_000);

  it('end to end: BDAT BODY=BINARYMIME in pipelined chunks through smtpd, base64 out to Postfix over DATA', async () => {
    const p = binaryParts(300_000);
    const message = binaryMultipart(p, { from: 'carol@example.com', to: 'grace@partner.example', messageId: 'bin-bdat@example.com' });
    const client = await BdatClient.connect(smtpPort);
    try {
      await client.envelope('carol@example.com', ['grace@partner.example'], 'BODY=BINARYMIME');
      // Cut anywhere, also inside a CRLF and inside the binary parts.
      const cuts = [0, 1001, 1002, 50_000, 250_001, message.length];
      const replies = await client.send(cuts.slice(1).map((end, i) => message.subarray(cuts[i], end)));
      expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 250, 250]);
      await client.quit();
    } finally {
      client.smtp.destroy();
    }
    const m = await messageFor('grace@partner.example', 'bin-bdat@example.com');
    const parsed = await parseMail(m.raw);
    expect(parsed.defects).toEqual([]);
    expectParts(leaves(parsed), p);
  }, 60_000);

  it('passes a small binary body (in memory) as base64, declared 7BIT once nothing 8-bit is left', async () => {
    const data = hostileBytes();
    await spoolBinary('carol@example.com', ['erin@partner.example'], binarySingle(data, { messageId: 'bin-small@example.com' }));
    const m = await messageFor('erin@partner.example', 'bin-small@example.com');
    const parsed = await parseMail(m.raw);
    expect(parsed.cte).toBe('base64');
    expect(parsed.payload!.equals(data)).toBe(true);
    expect(await postfix.waitForLog(/MAIL FROM:<carol@example\.com>/)).toBeTruthy();
    const mailLines = postfix.log().split('\n').filter((l) => /MAIL FROM:<carol@example\.com>/.test(l));
    expect(mailLines.some((l) => !/BODY=/.test(l)), 'a 7-bit message is sent without BODY=').toBe(true);
  }, 60_000);

  it('signs and encrypts a binary message with S/MIME; openssl decrypts and verifies it back to the original bytes', async () => {
    const p = binaryParts(2 * 1024 * 1024);
    await spoolBinary('alice@example.com', ['bob@partner.example'], binaryMultipart(p, { messageId: 'bin-smime@example.com' }));
    const m = await messageFor('bob@partner.example', 'bin-smime@example.com', 90_000);
    expect(m.raw.toString('latin1')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    const enc = join(dir, 'smime-bob.eml');
    await writeFile(enc, m.raw);
    const dec = join(dir, 'smime-bob.dec');
    await run('openssl', ['cms', '-decrypt', '-in', enc, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    const content = join(dir, 'smime-bob.content');
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', content]);
    const parsed = await parseMail(await readFile(content));
    // Signing made the 8-bit text part 7-bit (RFC 8551 canonical form): quoted-printable.
    expectParts(leaves(parsed), p, 'quoted-printable');
    // Streamed through the S/MIME seal too (the first test's message was the other one).
    expect(gw.logs.filter((l) => l.event === 'worker.large_streamed')).toHaveLength(2);
  }, 120_000);

  it('bounces a signed binary message 5.6.3 at the relay rather than re-encode a signed part or send binary over DATA', async () => {
    const fromCarol = Buffer.from(signedBinary(hostileBytes()).toString('latin1').replace('From: alice@example.com', 'From: carol@example.com'), 'latin1');
    await spoolBinary('carol@example.com', ['frank@partner.example'], fromCarol);
    const notice = await messageFor('carol@example.com', 'signed-bin@example.com');
    const dsn = await parseDsn(notice.raw);
    expect(dsn.recipients[0]).toMatchObject({ 'final-recipient': 'rfc822; frank@partner.example', action: 'failed', status: '5.6.3' });
    expect(dsn.recipients[0]!['diagnostic-code']).toMatch(/conversion required but prohibited: the message is BINARYMIME/);
    // Its binary content is not returned: the headers only.
    expect(dsn.returned?.type).toMatch(/rfc822-headers/);
    expect(gw.logs.find((l) => l.event === 'worker.binary_unconvertible')?.reason).toMatch(/multipart\/signed/);
    expect(postfix.messages().some((x) => x.recipient === 'frank@partner.example')).toBe(false);
  }, 60_000);

  it('bounces it 5.6.3 at the worker when the plan would encrypt it (a signed part cannot be re-encoded)', async () => {
    await spoolBinary('alice@example.com', ['bob@partner.example'], signedBinary(hostileBytes()));
    const notice = await messageFor('alice@example.com', 'signed-bin@example.com');
    const dsn = await parseDsn(notice.raw);
    expect(dsn.recipients[0]).toMatchObject({ 'final-recipient': 'rfc822; bob@partner.example', action: 'failed', status: '5.6.3' });
    expect(dsn.recipients[0]!['diagnostic-code']).toMatch(/conversion required but prohibited: the message is BINARYMIME and must be re-encoded to be signed, encrypted or opened/);
    expect(postfix.messages().filter((x) => x.recipient === 'bob@partner.example' && x.raw.includes('signed-bin@example.com'))).toEqual([]);
  }, 60_000);
});
