/**
 * Header protection (RFC 9788) end to end through the running gateway, with the independent peers
 * reading what it sent and writing what it receives:
 * - outbound S/MIME, signed and encrypted: `openssl cms -decrypt` and `-verify` show the protected
 *   header section (hp="cipher", protected-headers="v1", HP-Outer) and the legacy display, while
 *   the outer Subject is "[...]"; signed only to a recipient without a certificate: hp="clear",
 *   Subject as it was; a rule's `header_protection: copy` leaves the Subject outside;
 * - outbound OpenPGP: `gpg --decrypt` shows the same section and a good signature;
 * - inbound: openssl-made S/MIME (RFC 9788 form) and gpg-made PGP/MIME (Thunderbird's v1 form) whose
 *   outer header gained a Reply-To on the way: the Reply-To is removed and kept as
 *   X-Postern-Outer-Reply-To, the hidden Subject restored, X-Postern-Header-Protection says so; a
 *   signed-only message whose outer From: was rewritten is verified against the protected From:.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const headOf = (text: string) => text.slice(0, text.indexOf('\r\n\r\n') + 2);
const fields = (text: string, name: string) => [...headOf(text).matchAll(new RegExp(`^${name}: (.*)\\r$`, 'gmi'))].map((m) => m[1]);
/** Quoted-printable undone (for the legacy display element, which the text part carries encoded). */
const unqp = (s: string) => s.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

describe('header protection through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let gpg: GpgHome;
  let ourCa: Issued, partnerCa: Issued, alice: Issued, bob: Issued, dave: Issued, archive: Issued;
  let aliceFpr: string;
  const md = maildirOf(() => dir);
  const delivered = async (rcpt: string, token: string) => readFile(await md.waitDelivered(rcpt, token), 'latin1');
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const outbound = (to: string, token: string, extra = '') =>
    Buffer.from(
      crlf(`From: Alice <alice@example.com>\nTo: ${to}\nSubject: quarterly figures ${token}\nComments: for the board only\nDate: ${new Date().toUTCString()}\nMessage-ID: <${token}@example.com>\n${extra}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße, the figures ${token}\n`),
      'utf8',
    );

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-hp-gw-'));
    port = await freePort();
    // The default mode (obscure): the section is named only so that the test helper's `copy` stays out.
    config = await writeGatewayConfig(dir, port, 'header_protection:\n  legacy_display: true\n');
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: the archive files by Subject\n    when: { recipient: { domain: archive.example } }\n    do: [sign, { encrypt: { header_protection: copy } }]\n');
    [ourCa, partnerCa] = await Promise.all([opensslCa(dir, 'Example Corp'), opensslCa(dir, 'Partner')]);
    [alice, bob, dave, archive] = await Promise.all([
      opensslMailbox(dir, ourCa, 'alice@example.com'),
      opensslMailbox(dir, partnerCa, 'bob@partner.example'),
      opensslMailbox(dir, partnerCa, 'dave@partner.example'),
      opensslMailbox(dir, partnerCa, 'files@archive.example'),
    ]);
    await ok(['cert', 'import', ourCa.cert, '--trust']);
    await ok(['cert', 'import', partnerCa.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    await ok(['cert', 'import', bob.cert]);
    await ok(['cert', 'import', archive.cert]);
    gpg = gpgHome();
    gpg.generate('Paula <paula@pgp.example>', 'ed25519');
    await writeFile(join(dir, 'paula.asc'), gpg.exportPublic('paula@pgp.example'));
    await ok(['pgp', 'import', join(dir, 'paula.asc')]);
    aliceFpr = /([0-9A-F]{40})/.exec(await ok(['pgp', 'generate', 'alice@example.com', '--name', 'Alice']))![1]!;
    await ok(['pgp', 'export', aliceFpr, '--out', join(dir, 'alice.asc')]);
    gpg.import(await readFile(join(dir, 'alice.asc')));
    gw = await startGateway(config);
  }, 90_000);
  afterAll(async () => {
    await gw?.stop();
    gpg?.close();
    await cleanup?.();
  });

  it('S/MIME, signed and encrypted: openssl reads the protected header section inside, the Subject is "[...]" outside', async () => {
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], outbound('bob@partner.example', 'hp-o1'))).toMatch(/^250 /);
    const file = await md.waitDelivered('bob@partner.example', 'hp-o1@example.com');
    const text = await readFile(file, 'latin1');
    expect(fields(text, 'Subject')).toEqual(['[...]']);
    expect(fields(text, 'Comments')).toEqual([]);
    expect(fields(text, 'From')).toEqual(['Alice <alice@example.com>']);
    expect(text).not.toContain('quarterly figures');
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', bob.cert, '-inkey', bob.key, '-out', join(dir, 'o1.dec')]);
    expect(await readFile(join(dir, 'o1.dec'), 'latin1')).toMatch(/^Content-Type: multipart\/signed; protocol="application\/pkcs7-signature"/m);
    await run('openssl', ['cms', '-verify', '-in', join(dir, 'o1.dec'), '-CAfile', ourCa.cert, '-out', join(dir, 'o1.txt')]);
    const payload = await readFile(join(dir, 'o1.txt'), 'latin1');
    const head = headOf(crlf(payload));
    expect(head).toMatch(/^Content-Type: text\/plain;.*\r\n(?:[ \t].*\r\n)*/m);
    expect(head.replace(/\r\n[ \t]+/g, ' ')).toMatch(/^Content-Type: text\/plain; .*hp="cipher"; protected-headers="v1"/m);
    expect(fields(crlf(payload), 'Subject')).toEqual(['quarterly figures hp-o1']);
    expect(fields(crlf(payload), 'Comments')).toEqual(['for the board only']);
    expect(fields(crlf(payload), 'From')).toEqual(['Alice <alice@example.com>']);
    const hpOuter = fields(crlf(payload), 'HP-Outer');
    expect(hpOuter).toContain('Subject: [...]');
    expect(hpOuter).toContain('From: Alice <alice@example.com>');
    expect(hpOuter.some((v) => v!.startsWith('Comments:'))).toBe(false);
    // The legacy display element: readers without RFC 9788 see the Subject above the text.
    expect(unqp(crlf(payload).slice(head.length + 2))).toBe('Subject: quarterly figures hp-o1\r\n\r\nGr\xc3\xbc\xc3\x9fe, the figures hp-o1\r\n');
  });

  it('S/MIME signed only (no certificate for the recipient): hp="clear" inside, the outer header as it was', async () => {
    expect(await sendRaw(port, 'alice@example.com', ['carol@plain.example'], outbound('carol@plain.example', 'hp-o2'))).toMatch(/^250 /);
    const file = await md.waitDelivered('carol@plain.example', 'hp-o2@example.com');
    const text = await readFile(file, 'latin1');
    expect(fields(text, 'Subject')).toEqual(['quarterly figures hp-o2']);
    expect(fields(text, 'Comments')).toEqual(['for the board only']);
    await run('openssl', ['cms', '-verify', '-in', file, '-CAfile', ourCa.cert, '-out', join(dir, 'o2.txt')]);
    const payload = crlf(await readFile(join(dir, 'o2.txt'), 'latin1'));
    expect(headOf(payload).replace(/\r\n[ \t]+/g, ' ')).toMatch(/hp="clear"/);
    expect(fields(payload, 'Subject')).toEqual(['quarterly figures hp-o2']);
    expect(fields(payload, 'HP-Outer')).toEqual([]);
  });

  it("a rule's header_protection: copy keeps the Subject outside, and says so inside (HP-Outer)", async () => {
    expect(await sendRaw(port, 'alice@example.com', ['files@archive.example'], outbound('files@archive.example', 'hp-o3'))).toMatch(/^250 /);
    const file = await md.waitDelivered('files@archive.example', 'hp-o3@example.com');
    expect(fields(await readFile(file, 'latin1'), 'Subject')).toEqual(['quarterly figures hp-o3']);
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', archive.cert, '-inkey', archive.key, '-out', join(dir, 'o3.dec')]);
    await run('openssl', ['cms', '-verify', '-in', join(dir, 'o3.dec'), '-CAfile', ourCa.cert, '-out', join(dir, 'o3.txt')]);
    const payload = crlf(await readFile(join(dir, 'o3.txt'), 'latin1'));
    expect(fields(payload, 'HP-Outer')).toContain('Subject: quarterly figures hp-o3');
    expect(headOf(payload)).not.toMatch(/hp-legacy-display/);
  });

  it('OpenPGP, signed and encrypted: gpg decrypts the protected header section, signature good; "[...]" outside', async () => {
    expect(await sendRaw(port, 'alice@example.com', ['paula@pgp.example'], outbound('paula@pgp.example', 'hp-o4'))).toMatch(/^250 /);
    const text = await delivered('paula@pgp.example', 'hp-o4@example.com');
    expect(fields(text, 'Subject')).toEqual(['[...]']);
    const armored = text.slice(text.indexOf('-----BEGIN PGP MESSAGE-----'), text.indexOf('-----END PGP MESSAGE-----') + 25);
    const dec = gpg.run(['--status-fd', '2', '--decrypt'], armored);
    expect(dec.stderr).toMatch(/GOODSIG [0-9A-F]+ Alice <alice@example\.com>/);
    const payload = crlf(dec.stdout.toString('latin1'));
    expect(headOf(payload).replace(/\r\n[ \t]+/g, ' ')).toMatch(/^Content-Type: text\/plain; .*hp="cipher"; protected-headers="v1"/m);
    expect(fields(payload, 'Subject')).toEqual(['quarterly figures hp-o4']);
    expect(fields(payload, 'HP-Outer')).toContain('Subject: [...]');
  });

  it("S/MIME inbound (openssl, RFC 9788 form): a Reply-To added outside is removed and kept, the hidden Subject restored; forged result fields go", async () => {
    const date = new Date().toUTCString();
    const protectedFields = `From: Dave <dave@partner.example>\r\nTo: alice@example.com\r\nSubject: contract hp-i1\r\nDate: ${date}\r\nMessage-ID: <hp-i1@partner.example>\r\n`;
    const hpOuter = protectedFields.replace('Subject: contract hp-i1', 'Subject: [...]').split('\r\n').filter(Boolean).map((l) => `HP-Outer: ${l}\r\n`).join('');
    await writeFile(join(dir, 'i1.txt'), `Content-Type: text/plain; charset=us-ascii; hp="cipher"\r\n${protectedFields}${hpOuter}\r\nplease reply with the figures, token i1\r\n`);
    await run('openssl', ['cms', '-sign', '-in', join(dir, 'i1.txt'), '-signer', dave.cert, '-inkey', dave.key, '-out', join(dir, 'i1.sig')]);
    await run('openssl', ['cms', '-encrypt', '-aes256', '-in', join(dir, 'i1.sig'), '-out', join(dir, 'i1.enc'), alice.cert]);
    const outer = protectedFields.replace('Subject: contract hp-i1', 'Subject: [...]') + 'Reply-To: Dave <attacker@evil.example>\r\nX-Postern-Header-Protection: protected; method=smime\r\nX-Postern-Outer-Reply-To: dave@partner.example\r\n';
    const raw = Buffer.from(outer + crlf(await readFile(join(dir, 'i1.enc'), 'latin1')), 'latin1');
    expect(await sendRaw(port, 'dave@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const text = await delivered('alice@example.com', 'contract hp-i1');
    expect(text).toContain('token i1');
    expect(fields(text, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=dave@partner.example']);
    expect(fields(text, 'X-Postern-Header-Protection')).toEqual(['replaced; method=smime; form=rfc9788; hp=cipher; protected-by=encryption,signature; restored="Subject"; replaced="Reply-To"']);
    expect(fields(text, 'Reply-To')).toEqual([]);
    expect(fields(text, 'X-Postern-Outer-Reply-To')).toEqual(['Dave <attacker@evil.example>']);
    expect(fields(text, 'Subject')).toEqual(['contract hp-i1']);
    expect(fields(text, 'X-Postern-Outer-Subject')).toEqual(['[...]']);
  });

  it('S/MIME inbound, signed only (hp="clear") with the outer From: rewritten: the signature is checked against the protected From:, which replaces the outer one', async () => {
    const protectedFields = `From: Dave <dave@partner.example>\r\nTo: alice@example.com\r\nSubject: invoice hp-i3\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <hp-i3@partner.example>\r\n`;
    await writeFile(join(dir, 'i3.txt'), `Content-Type: text/plain; charset=us-ascii; hp="clear"\r\n${protectedFields}\r\nthe invoice, token i3\r\n`);
    await run('openssl', ['cms', '-sign', '-in', join(dir, 'i3.txt'), '-signer', dave.cert, '-inkey', dave.key, '-out', join(dir, 'i3.sig')]);
    const outer = protectedFields.replace('From: Dave <dave@partner.example>', 'From: Billing <billing@partner.example>');
    const raw = Buffer.from(outer + crlf(await readFile(join(dir, 'i3.sig'), 'latin1')), 'latin1');
    expect(await sendRaw(port, 'billing@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const text = await delivered('alice@example.com', 'invoice hp-i3');
    expect(fields(text, 'X-Postern-Signature')).toEqual(['valid; method=smime; signer=dave@partner.example']);
    expect(fields(text, 'X-Postern-Header-Protection')).toEqual(['replaced; method=smime; form=rfc9788; hp=clear; protected-by=signature; replaced="From"']);
    expect(fields(text, 'From')).toEqual(['Dave <dave@partner.example>']);
    expect(fields(text, 'X-Postern-Outer-From')).toEqual(['Billing <billing@partner.example>']);
  });

  it("OpenPGP inbound (gpg, Thunderbird's protected-headers=\"v1\"): a changed Reply-To outside is replaced by the protected one", async () => {
    const inner = crlf(
      'Content-Type: multipart/mixed; boundary="tb"; protected-headers="v1"\nFrom: Paula <paula@pgp.example>\nTo: alice@example.com\nReply-To: paula@pgp.example\nSubject: offer hp-i2\nMessage-ID: <hp-i2@pgp.example>\n\n' +
        '--tb\nContent-Type: text/plain; charset=utf-8\n\nreply to me with the offer, token i2\n--tb--\n',
    );
    const armored = gpg.run(['--armor', '--sign', '--local-user', 'paula@pgp.example', '--encrypt', '--recipient', aliceFpr], inner).stdout.toString();
    const raw = Buffer.from(
      crlf(`From: Paula <paula@pgp.example>\nTo: alice@example.com\nReply-To: paula-desk@evil.example\nSubject: ...\nDate: ${new Date().toUTCString()}\nMessage-ID: <hp-i2@pgp.example>\nMIME-Version: 1.0\n`) +
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pp"\r\n\r\n--pp\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
        `--pp\r\nContent-Type: application/octet-stream\r\n\r\n${crlf(armored)}\r\n--pp--\r\n`,
    );
    expect(await sendRaw(port, 'paula@pgp.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const text = await delivered('alice@example.com', 'offer hp-i2');
    expect(text).toContain('token i2');
    expect(fields(text, 'X-Postern-Signature')[0]).toMatch(/^valid; method=pgp; signer=paula@pgp\.example/);
    expect(fields(text, 'X-Postern-Header-Protection')).toEqual(['replaced; method=pgp; form=v1; protected-by=encryption,signature; restored="Subject"; replaced="Reply-To"']);
    expect(fields(text, 'Reply-To')).toEqual(['paula@pgp.example']);
    expect(fields(text, 'X-Postern-Outer-Reply-To')).toEqual(['paula-desk@evil.example']);
  });
});
