/**
 * A message of a few MB through the running gateway on the large-message path with OpenPGP:
 * smtpd streams it to the spool, the worker streams it through PGP/MIME sign+encrypt (for the
 * recipient with a key, header protection on) and sign only (for the one without) from the
 * spool file range, the relay streams the output into the Maildir. gpg 2.2 is the independent
 * peer, with the recipient's secret key in a temporary GNUPGHOME: it decrypts Bob's copy to the
 * original entity with a good signature from Alice's key, and verifies Carol's detached signature
 * over the exact first part. A multipart message with a file streams the same way.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multipartLayout, readEntity } from '../../src/mime/entity.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendRaw } from '../helpers/send.js';

/** ~3 MB of 7-bit text lines, numbered so that a lost or reordered chunk shows. */
function text(lines: number): string {
  const out: string[] = [];
  for (let i = 0; i < lines; i++) out.push(`line ${String(i).padStart(7, '0')} the quick brown fox jumps over the lazy dog, 0123456789`);
  return out.join('\r\n') + '\r\n';
}

const parts = (message: Buffer) => {
  const e = readEntity(message);
  return multipartLayout(e.body, e.type.params.get('boundary')!).parts;
};

describe('a large message streamed through the gateway with OpenPGP', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let gpg: GpgHome;
  const { waitDelivered } = maildirOf(() => dir);
  const cli = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
    ({ dir, cleanup } = await tempDir('postern-large-pgp-'));
    gpg = gpgHome();
    const bob = gpg.generate('Bob <bob@partner.example>', 'ed25519');
    port = await freePort();
    config = await writeGatewayConfig(dir, port, 'header_protection: { mode: obscure }\n');
    const bobPub = gpg.file('bob.asc', gpg.exportPublic(bob));
    await cli(['pgp', 'import', bobPub]);
    const fp = /^generated: ([0-9A-F]{40,64})\b/im.exec(await cli(['pgp', 'generate', 'alice@example.com', '--name', 'Alice']))?.[1];
    expect(fp).toBeTruthy();
    gpg.import(await cli(['pgp', 'export', fp!]));
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    gpg?.close();
    await cleanup();
  });

  it('signs and encrypts a 3 MB message as streams for Bob, signs it for Carol; gpg decrypts and verifies both byte for byte', async () => {
    const body = text(44_000);
    expect(body.length).toBeGreaterThan(3_000_000);
    const entity = `Content-Type: text/plain; charset=us-ascii\r\n\r\n${body}`;
    const raw = Buffer.from(
      'From: Alice <alice@example.com>\r\nTo: bob@partner.example, carol@partner.example\r\nSubject: the big report\r\nMessage-ID: <bigpgp.token@example.com>\r\n' +
        `Date: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n${entity}`,
      'latin1',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example', 'carol@partner.example'], raw)).toMatch(/^250 /);
    const streamed = await gw.waitFor((l) => l.event === 'worker.large_streamed', 60_000);
    expect(streamed.outputs).toBe(2);

    const toBob = await readFile(await waitDelivered('bob@partner.example', 'bigpgp.token', 60_000));
    const bobText = toBob.toString('latin1');
    expect(bobText).toMatch(/^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";/m);
    // Header protection: the Subject travels inside; outside it is obscured.
    expect(bobText).toMatch(/^Subject: \[\.\.\.\]\r$/m);
    expect(bobText).not.toContain('quick brown fox');
    const [control, data] = parts(toBob);
    expect(control!.toString('latin1')).toMatch(/\r\n\r\nVersion: 1\r\n/);
    const r = gpg.run(['--decrypt'], readEntity(data!).body);
    expect(r.stderr).toMatch(/Good signature from "Alice <alice@example.com>"/);
    const inner = r.stdout.toString('latin1');
    const innerHead = inner.slice(0, inner.indexOf('\r\n\r\n'));
    expect(innerHead).toMatch(/^Content-Type: text\/plain; charset=us-ascii;[\s\S]*hp="cipher"/);
    expect(innerHead).toMatch(/^Subject: the big report$/m);
    expect(inner.slice(inner.indexOf('\r\n\r\n') + 4)).toBe(body);

    const toCarol = await readFile(await waitDelivered('carol@partner.example', 'bigpgp.token', 60_000));
    expect(toCarol.toString('latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pgp-signature"; micalg=pgp-sha\d+;/m);
    const [signedPart, sigPart] = parts(toCarol);
    const v = gpg.run(['--verify', gpg.file('carol.sig', readEntity(sigPart!).body), gpg.file('carol.eml', signedPart!)]);
    expect(v.stderr).toMatch(/Good signature from "Alice <alice@example.com>"/);
    const signed = signedPart!.toString('latin1');
    expect(signed.slice(0, signed.indexOf('\r\n\r\n'))).toMatch(/hp="clear"/);
    expect(signed.slice(signed.indexOf('\r\n\r\n') + 4)).toBe(body);
  }, 120_000);

  it('a large multipart message with a file streams too; gpg decrypts it to the entity, the file byte for byte', async () => {
    const file = Buffer.alloc(1_600_000);
    for (let i = 0; i < file.length; i++) file[i] = (i * 131) & 0xff;
    const entity =
      'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n--b2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee the file\r\n' +
      `--b2\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\n${file.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b2--\r\n`;
    const raw = Buffer.from(
      `From: Alice <alice@example.com>\r\nTo: bob@partner.example\r\nSubject: with a file\r\nMessage-ID: <bigpgp2.token@example.com>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n${entity}`,
      'latin1',
    );
    expect(raw.length).toBeGreaterThan(2_000_000);
    const before = gw.logs.filter((l) => l.event === 'worker.large_streamed').length;
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);
    const toBob = await readFile(await waitDelivered('bob@partner.example', 'bigpgp2.token', 60_000));
    expect(gw.logs.filter((l) => l.event === 'worker.large_streamed').length).toBe(before + 1);
    const r = gpg.run(['--decrypt'], readEntity(parts(toBob)[1]!).body);
    expect(r.stderr).toMatch(/Good signature from "Alice <alice@example.com>"/);
    const inner = r.stdout.toString('latin1');
    expect(inner.slice(inner.indexOf('\r\n\r\n') + 4)).toBe(entity.slice(entity.indexOf('\r\n\r\n') + 4));
    const attached = inner.slice(inner.indexOf('filename="data.bin"'));
    const data = attached.slice(attached.indexOf('\r\n\r\n') + 4, attached.indexOf('\r\n--b2--'));
    expect(Buffer.from(data.replace(/\r\n/g, ''), 'base64').equals(file)).toBe(true);
  }, 120_000);
});
