/**
 * A message of a few MB through the running gateway on the large-message path (worker/large.ts):
 * smtpd streams it to the spool, the worker streams it through S/MIME sign and encrypt from the
 * spool file range (header protection on), the relay streams the output into the Maildir. openssl
 * is the independent peer: it decrypts Bob's copy and verifies the signature inside, and verifies
 * Carol's signed-only copy; the text comes out byte for byte. A multipart/mixed with a binary
 * attachment streams too (its facts read in one pass), shaped as the in-memory path shapes the
 * same message with a small file; one signed by the sender's client still goes the in-memory way.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendRaw } from '../helpers/send.js';

/** ~3 MB of 7-bit text lines, numbered so that a lost or reordered chunk shows. */
function text(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`line ${String(i).padStart(7, '0')} the quick brown fox jumps over the lazy dog, 0123456789`);
  return out.join('\r\n') + '\r\n';
}

describe('a large message streamed through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let ourCa: Issued, partnerCa: Issued, alice: Issued, bob: Issued;
  const { waitDelivered } = maildirOf(() => dir);
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-large-'));
    [ourCa, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    [alice, bob] = await Promise.all([opensslMailbox(dir, ourCa, 'alice@example.com'), opensslMailbox(dir, partnerCa, 'bob@partner.example')]);
    port = await freePort();
    config = await writeGatewayConfig(dir, port, 'header_protection: { mode: obscure }\n');
    await ok(['cert', 'import', ourCa.cert, '--trust']);
    await ok(['cert', 'import', partnerCa.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    await ok(['cert', 'import', bob.cert]);
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('signs and encrypts a 3 MB message as streams; openssl decrypts and verifies it byte for byte', async () => {
    const body = text(44_000);
    expect(body.length).toBeGreaterThan(3_000_000);
    const raw = Buffer.from(
      'From: Alice <alice@example.com>\r\nTo: bob@partner.example, carol@partner.example\r\nSubject: the big report\r\nMessage-ID: <big1.token@example.com>\r\n' +
        `Date: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n${body}`,
      'latin1',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example', 'carol@partner.example'], raw)).toMatch(/^250 /);
    const streamed = await gw.waitFor((l) => l.event === 'worker.large_streamed', 60_000);
    expect(streamed.outputs).toBe(2);

    const toBob = await waitDelivered('bob@partner.example', 'big1.token', 60_000);
    const bobText = await readFile(toBob, 'latin1');
    expect(bobText).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    // Header protection: the Subject travels inside; outside it is obscured.
    expect(bobText).toMatch(/^Subject: \[\.\.\.\]\r$/m);
    expect(bobText).not.toContain('quick brown fox');
    const dec = join(dir, 'big-bob.eml');
    await run('openssl', ['cms', '-decrypt', '-in', toBob, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    const signed = await readFile(dec, 'latin1');
    expect(signed).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256/);
    const content = join(dir, 'big-bob.txt');
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', content]);
    const inner = await readFile(content, 'latin1');
    const innerHead = inner.slice(0, inner.indexOf('\r\n\r\n'));
    expect(innerHead).toMatch(/^Content-Type: text\/plain; charset=us-ascii;[\s\S]*hp="cipher"/);
    expect(innerHead).toMatch(/^Subject: the big report$/m);
    expect(inner.slice(inner.indexOf('\r\n\r\n') + 4)).toBe(body);

    const toCarol = await waitDelivered('carol@partner.example', 'big1.token', 60_000);
    const carolText = await readFile(toCarol, 'latin1');
    expect(carolText).toMatch(/^Content-Type: multipart\/signed/m);
    await run('openssl', ['cms', '-verify', '-in', toCarol, '-CAfile', ourCa.cert, '-out', join(dir, 'big-carol.txt')]);
    const carolInner = await readFile(join(dir, 'big-carol.txt'), 'latin1');
    expect(carolInner.slice(0, carolInner.indexOf('\r\n\r\n'))).toMatch(/hp="clear"/);
    expect(carolInner.slice(carolInner.indexOf('\r\n\r\n') + 4)).toBe(body);
  }, 120_000);

  /** A multipart/mixed: a text part and a binary attachment (base64), the same header fields whatever its size. */
  function mixed(token: string, attachment: Buffer, text = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nsee the file\r\n'): Buffer {
    const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
    return Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: with a file\r\nMessage-ID: <${token}@example.com>\r\n` +
        `Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b2"\r\n\r\n` +
        `This is a multi-part message in MIME format.\r\n--b2\r\n${text}` +
        `--b2\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\n${b64}\r\n--b2--\r\n`,
      'latin1',
    );
  }
  const bytes = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 9)) & 0xff;
    return b;
  };
  const queueIdOf = (reply: string) => /queued as (\S+)/.exec(reply)?.[1];

  /** Bob's copy decrypted and verified by openssl: the outer header, the signed entity's header, and the content openssl verified. */
  async function openForBob(file: string, name: string): Promise<{ outer: string; signedHead: string; inner: string }> {
    const outer = await readFile(file, 'latin1');
    const dec = join(dir, `${name}.eml`);
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    const signed = await readFile(dec, 'latin1');
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', join(dir, `${name}.txt`)]);
    return { outer: outer.slice(0, outer.indexOf('\r\n\r\n')), signedHead: signed.slice(0, signed.indexOf('\r\n\r\n')), inner: await readFile(join(dir, `${name}.txt`), 'latin1') };
  }
  /** The shape of a header block: field names in order, and each Content-Type's type and parameter names (boundaries are random). */
  const shape = (head: string) =>
    head
      .replace(/\r\n[ \t]+/g, ' ')
      .split('\r\n')
      .map((f) => (/^content-type:/i.test(f) ? f.replace(/boundary="?[^";]+"?/, 'boundary=*') : f.slice(0, f.indexOf(':'))))
      .filter((f) => !/^(received|message-id)$/i.test(f));

  it('streams a 3 MB multipart/mixed (text + base64 attachment): openssl decrypts and verifies it, the file comes out byte for byte, shaped as the in-memory path shapes it', async () => {
    const attachment = bytes(2_400_000);
    const raw = mixed('big2.token', attachment);
    expect(raw.length).toBeGreaterThan(3_000_000);
    const reply = await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw);
    expect(reply).toMatch(/^250 /);
    const streamed = await gw.waitFor((l) => l.event === 'worker.large_streamed' && l.queueId === queueIdOf(reply), 60_000);
    expect(streamed.outputs).toBe(1);
    const big = await openForBob(await waitDelivered('bob@partner.example', 'big2.token', 60_000), 'big2');
    expect(big.outer).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    expect(big.outer).toMatch(/^Subject: \[\.\.\.\]$/m);
    expect(big.signedHead).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256/);
    // The signed content is the MIME entity: its Content-* fields (with the protected header), then the multipart body as sent.
    const innerHead = big.inner.slice(0, big.inner.indexOf('\r\n\r\n'));
    expect(innerHead).toMatch(/^Content-Type: multipart\/mixed; boundary="b2";[\s\S]*hp="cipher"/);
    expect(innerHead).toMatch(/^Subject: with a file$/m);
    expect(big.inner.slice(big.inner.indexOf('\r\n\r\n') + 4)).toBe(raw.toString('latin1').slice(raw.indexOf('\r\n\r\n') + 4));
    const part = big.inner.slice(big.inner.indexOf('filename="data.bin"'));
    const data = part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n--b2--'));
    expect(Buffer.from(data.replace(/\r\n/g, ''), 'base64').equals(attachment)).toBe(true);

    // The same message with a small file goes the in-memory way; both come out the same shape.
    const smallReply = await sendRaw(port, 'alice@example.com', ['bob@partner.example'], mixed('small2.token', bytes(3000)));
    expect(smallReply).toMatch(/^250 /);
    const small = await openForBob(await waitDelivered('bob@partner.example', 'small2.token', 60_000), 'small2');
    expect(gw.logs.some((l) => l.event === 'worker.large_streamed' && l.queueId === queueIdOf(smallReply))).toBe(false);
    expect(shape(big.outer)).toEqual(shape(small.outer));
    expect(shape(big.signedHead)).toEqual(shape(small.signedHead));
    expect(shape(innerHead)).toEqual(shape(small.inner.slice(0, small.inner.indexOf('\r\n\r\n'))));
  }, 120_000);

  it('streams a large multipart whose text part is 8-bit UTF-8: the text re-encoded as quoted-printable (as in memory), the file byte for byte, openssl verifies', async () => {
    const attachment = bytes(1_600_000);
    const raw = mixed('big4.token', attachment, 'Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' + Buffer.from('Grüße aus Köln — die Datei anbei.\r\n', 'utf8').toString('latin1'));
    const reply = await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw);
    expect(reply).toMatch(/^250 /);
    await gw.waitFor((l) => l.event === 'worker.large_streamed' && l.queueId === queueIdOf(reply), 60_000);
    const big = await openForBob(await waitDelivered('bob@partner.example', 'big4.token', 60_000), 'big4');
    expect(big.inner).toContain('Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe aus K=C3=B6ln =E2=80=94 die Datei anbei.\r\n');
    const part = big.inner.slice(big.inner.indexOf('filename="data.bin"'));
    const data = part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n--b2--'));
    expect(Buffer.from(data.replace(/\r\n/g, ''), 'base64').equals(attachment)).toBe(true);
  }, 120_000);

  it('a large multipart that is signed already still takes the in-memory path, and arrives encrypted with its signature intact', async () => {
    // Alice's client signed it (openssl as the client): the gateway must not stream it.
    const attachment = bytes(1_600_000);
    const entity = mixed('unused', attachment);
    const content = join(dir, 'signed-in.eml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(content, entity.subarray(entity.indexOf('Content-Type: multipart/mixed')));
    const signedFile = join(dir, 'signed-out.eml');
    await run('openssl', ['cms', '-sign', '-in', content, '-signer', alice.cert, '-inkey', alice.key, '-md', 'sha256', '-out', signedFile, '-crlfeol']);
    const signedMime = await readFile(signedFile, 'latin1');
    const raw = Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: signed by her client\r\nMessage-ID: <big3.token@example.com>\r\nDate: ${new Date().toUTCString()}\r\n${signedMime.replace(/\r?\n/g, '\r\n')}`,
      'latin1',
    );
    expect(raw.length).toBeGreaterThan(2_000_000);
    const reply = await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw);
    expect(reply).toMatch(/^250 /);
    const toBob = await waitDelivered('bob@partner.example', 'big3.token', 60_000);
    expect(gw.logs.some((l) => l.event === 'worker.large_streamed' && l.queueId === queueIdOf(reply))).toBe(false);
    expect(await readFile(toBob, 'latin1')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    const dec = join(dir, 'big3-bob.eml');
    await run('openssl', ['cms', '-decrypt', '-in', toBob, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', join(dir, 'big3.txt')]);
    const inner = await readFile(join(dir, 'big3.txt'), 'latin1');
    const part = inner.slice(inner.indexOf('filename="data.bin"'));
    const data = part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n--b2--'));
    expect(Buffer.from(data.replace(/\r\n/g, ''), 'base64').equals(attachment)).toBe(true);
  }, 120_000);
});
