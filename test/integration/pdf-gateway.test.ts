/**
 * PDF mail end to end through the running gateway (issue 16): the policy encrypts with S/MIME,
 * OpenPGP or PDF per recipient; what the PDF recipient gets is opened by three independent readers
 * (qpdf, poppler, MuPDF) with the password the sender was told in a notice, and by none without
 * it; the raw file carries no plaintext; the pair's next mail reuses the password without a second
 * notice; `postern pdf password reset` makes a new one and the sender is told it.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { plaintextsIn } from '../helpers/pdf-encrypted.js';
import { inkShare, mupdfText, popplerAttachments, popplerText, qpdfDecryptCheck, reader, renderPage, showEncryption } from '../helpers/pdf-mail.js';
import { opensslCa, opensslMailbox } from '../helpers/pki-openssl.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const UNICODE = 'Grüße aus München, Ελληνικά γράμματα, Кириллица здесь, 中文测试, 日本語のテキスト, 한국어 문장';

function leaves(p: ParsedPart): ParsedPart[] {
  return p.parts.length ? p.parts.flatMap(leaves) : [p];
}

describe('PDF mail through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let gpg: GpgHome;
  const md = maildirOf(() => dir);
  const text = async (rcpt: string, token: string) => readFile(await md.waitDelivered(rcpt, token), 'latin1');
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  /** The PDF of a delivered carrier mail, written next to it for the readers. */
  async function pdfOf(rcpt: string, token: string): Promise<{ file: string; bytes: Buffer; mail: ParsedPart }> {
    const mail = await parseMail(Buffer.from(await text(rcpt, token), 'latin1'));
    const pdf = leaves(mail).find((p) => p.contentType === 'application/pdf');
    expect(pdf, 'the carrier mail has a PDF attachment').toBeDefined();
    const file = join(dir, 'pdfs', `${token.replace(/\W/g, '_')}.pdf`);
    await writeFile(file, pdf!.payload!);
    return { file, bytes: pdf!.payload!, mail };
  }
  /** The password the sender was told about mail to `rcpt`, from the notice delivered to them. */
  async function toldPassword(sender: string, rcpt: string, subjectToken: string): Promise<string> {
    const notice = Buffer.from(await text(sender, subjectToken), 'latin1').toString('utf8');
    expect(notice).toMatch(new RegExp(`^Subject: .*PDF mail to ${rcpt.replace(/\./g, '\\.')}`, 'm'));
    return /\r\n\r\n {4}(\S+)\r\n\r\n/.exec(notice.replace(/=\r\n/g, ''))![1]!;
  }

  /** `queue show --json` of the held entry for `rcpt`, once there is one. */
  async function heldReason(rcpt: string): Promise<string> {
    let name = '';
    await waitUntil(async () => {
      const list = (await runPostern(config, ['queue', 'list', '--json'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; state: string; recipients: string[] });
      name = list.find((e) => e.state === 'hold' && e.recipients.includes(rcpt))?.name ?? '';
      return name !== '';
    }, 20_000, `the hold for ${rcpt}`);
    return (await runPostern(config, ['queue', 'show', name, '--json'])).stdout;
  }

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-pdf-gw-'));
    await mkdir(join(dir, 'pdfs'));
    port = await freePort();
    gpg = gpgHome();
    config = await writeGatewayConfig(dir, port, 'portal:\n  url: https://mail.example.com/\npdf:\n  organisation: Example Ltd\n');
    // writeGatewayConfig has an smtp section of its own: the size goes into it.
    await writeFile(config, (await readFile(config, 'utf8')).replace(/^smtp:\n/m, 'smtp:\n  max_message_size: 64MB\n'));
    await writeFile(
      join(dir, 'policy.yaml'),
      'rules:\n  - name: old readers\n    when: { recipient: { domain: old.example } }\n    do: [{ encrypt: { methods: [pdf], require: true, pdf: { cipher: aes-128 } } }, notify_sender]\n' +
        '  - name: outbound, always protected\n    when: { direction: outbound }\n    do: [sign, { encrypt: { methods: [smime, pgp, pdf], require: true } }]\n',
    );
    gpg.generate('Paula <paula@pgp.example>', 'ed25519');
    await writeFile(join(dir, 'paula.asc'), gpg.exportPublic('paula@pgp.example'));
    await ok(['pgp', 'import', join(dir, 'paula.asc')]);
    const ca = await opensslCa(dir, 'Partner');
    const bob = await opensslMailbox(dir, ca, 'bob@partner.example');
    await ok(['cert', 'import', bob.cert]);
    gw = await startGateway(config);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    gpg?.close();
    await cleanup();
  });

  it('mixed recipients: S/MIME to the certificate holder, OpenPGP to the key holder, a PDF to the third that three readers open with the told password', async () => {
    // Binary, with a marker the plaintext scan can look for.
    const attachment = Buffer.concat([Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff)), Buffer.from('attachment-marker-q7'), Buffer.alloc(100, 0xfe)]);
    const subject = `=?UTF-8?B?${Buffer.from(`Quartalszahlen Ελληνικά 中文 m1`).toString('base64')}?=`;
    const raw = Buffer.from(
      `From: Alice Example <alice@example.com>\r\nTo: paula@pgp.example, bob@partner.example, Carol Plain <carol@plain.example>\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n` +
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' +
        `Secret figures, bodyword zanzibar7.\r\n${UNICODE}\r\n` +
        `--b1\r\nContent-Type: application/octet-stream; name="figures.bin"\r\nContent-Disposition: attachment; filename="figures.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`,
      'utf8',
    );
    expect(await sendRaw(port, 'alice@example.com', ['paula@pgp.example', 'bob@partner.example', 'carol@plain.example'], raw)).toMatch(/^250 /);
    expect(await text('paula@pgp.example', 'm1@example.com')).toMatch(/^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"/m);
    expect(await text('bob@partner.example', 'm1@example.com')).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);

    const { file, bytes, mail } = await pdfOf('carol@plain.example', 'm1@example.com');
    // The carrier: the original's header, a text that explains, the PDF; nothing of the body outside.
    const carrier = await text('carol@plain.example', 'm1@example.com');
    expect(carrier).not.toContain('zanzibar7');
    expect(leaves(mail).find((p) => p.contentType === 'text/plain')!.payload!.toString('utf8')).toMatch(/alice@example\.com has sent you a confidential message/);
    const password = await toldPassword('alice@example.com', 'carol@plain.example', 'PDF mail to carol@plain.example');
    expect(password.length).toBeGreaterThanOrEqual(16);

    // qpdf: AES-256, revision 6; decrypts to a file qpdf finds clean.
    const enc = await showEncryption(file, password);
    expect(enc.stdout).toMatch(/R = 6/);
    expect(enc.stdout).toMatch(/AESv3/);
    const check = await qpdfDecryptCheck(file, password, join(dir, 'pdfs', 'm1-clear.pdf'));
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/No syntax or stream encoding errors found/);
    // poppler and MuPDF: the body text, Unicode as sent, and the header lines.
    for (const r of [await popplerText(file, password), await mupdfText(file, password)]) {
      expect(r.code, r.stderr).toBe(0);
      const words = r.stdout.replace(/\s+/g, ' ');
      expect(words).toContain('zanzibar7');
      for (const w of UNICODE.split(/,\s*/)) expect(words).toContain(w);
      expect(words).toContain('Quartalszahlen Ελληνικά 中文 m1');
      expect(words).toContain('alice@example.com');
    }
    // The attachment, byte for byte.
    expect((await popplerAttachments(file, password)).get('figures.bin')?.equals(attachment)).toBe(true);
    // Wrong password: every reader refuses.
    const wrong = await qpdfDecryptCheck(file, 'wrong-password', join(dir, 'pdfs', 'm1-wrong.pdf'));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/invalid password/);
    expect((await popplerText(file, 'wrong-password')).code).not.toBe(0);
    expect((await mupdfText(file, 'wrong-password')).code).not.toBe(0);
    // No plaintext in the raw file, streams inflated or not.
    expect(plaintextsIn(bytes, ['zanzibar7', 'Quartalszahlen', 'Ελληνικά', 'figures.bin', 'attachment-marker-q7', 'carol@plain.example', 'alice@example.com', 'Alice Example', 'm1@example.com', 'mail.example.com/r/'])).toEqual([]);
    // The Reply button links to the portal with a token; the rendered mail page has ink.
    // Control: decrypted, the same scan finds what is stored as strings and streams (text is drawn
    // as glyph ids, so body words are looked for by the readers above, not here).
    expect(plaintextsIn(await readFile(join(dir, 'pdfs', 'm1-clear.pdf')), ['figures.bin', 'attachment-marker-q7', 'mail.example.com/r/'])).toEqual(['figures.bin', 'attachment-marker-q7', 'mail.example.com/r/']);
    const clear = await reader('qpdf', ['--qdf', '--object-streams=disable', join(dir, 'pdfs', 'm1-clear.pdf'), join(dir, 'pdfs', 'm1-qdf.pdf')]);
    expect(clear.code, clear.stderr).toBe(0);
    expect(await readFile(join(dir, 'pdfs', 'm1-qdf.pdf'), 'latin1')).toMatch(/\/URI \(https:\/\/mail\.example\.com\/r\/[A-Za-z0-9_-]{22,}\)/);
    // Kept outside the test's directory, so it can be looked at after the run.
    const png = await renderPage(file, password, 2, join(tmpdir(), 'postern-pdf-mail-page2'));
    console.log(`PDF mail page 2 (the mail) rendered by pdftoppm: ${png}`);
    expect(await inkShare(file, password, 2)).toBeGreaterThan(0.005);
  }, 60_000);

  it("the pair's second message reuses the password and sends no second notice; a reset makes a new one and tells the sender", async () => {
    const send = (token: string) =>
      sendRaw(port, 'alice@example.com', ['dave@plain.example'], Buffer.from(`From: alice@example.com\r\nTo: dave@plain.example\r\nSubject: again ${token}\r\nMessage-ID: <${token}@example.com>\r\n\r\nbody ${token}\r\n`));
    expect(await send('r1')).toMatch(/^250 /);
    const first = await pdfOf('dave@plain.example', 'r1@example.com');
    const password = await toldPassword('alice@example.com', 'dave@plain.example', 'again r1');
    expect((await popplerText(first.file, password)).stdout).toContain('body r1');

    expect(await send('r2')).toMatch(/^250 /);
    const second = await pdfOf('dave@plain.example', 'r2@example.com');
    expect((await popplerText(second.file, password)).stdout).toContain('body r2');
    // No notice about r2: the one for r1 is the only one that names dave.
    await new Promise((r) => setTimeout(r, 500));
    expect(await md.delivered('alice@example.com', 'again r2')).toBeUndefined();

    // A reset tells the sender at once (a notice the relay delivers), not with the next message.
    expect(await ok(['pdf', 'password', 'reset', '--from', 'alice@example.com', '--to', 'dave@plain.example'])).toMatch(/new password made .*the sender \(alice@example\.com\) is told it in a notice/);
    const renewed = await toldPassword('alice@example.com', 'dave@plain.example', 'New password for encrypted PDF mail to dave@plain.example');
    expect(await send('r3')).toMatch(/^250 /);
    const third = await pdfOf('dave@plain.example', 'r3@example.com');
    expect(renewed).not.toBe(password);
    expect((await popplerText(third.file, renewed)).stdout).toContain('body r3');
    expect((await popplerText(third.file, password)).code).not.toBe(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(await md.delivered('alice@example.com', 'again r3')).toBeUndefined();
    // The CLI shows it (audited) and lists the pair without it.
    expect(await ok(['pdf', 'password', 'show', '--from', 'alice@example.com', '--to', 'dave@plain.example'])).toContain(renewed);
    const list = await ok(['pdf', 'list', '--from', 'alice@example.com']);
    expect(list).toContain('dave@plain.example');
    expect(list).not.toContain(renewed);
  }, 60_000);

  it("an administrator's password (pdf password set) is told at once and opens the pair's next PDF; the worker tells nothing more", async () => {
    const set = await runPostern(config, ['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'kim@plain.example'], { ...process.env, POSTERN_PDF_PASSWORD: 'Sommer-Regen-2026' });
    expect(set.code, set.stderr).toBe(0);
    expect(await toldPassword('alice@example.com', 'kim@plain.example', 'New password for encrypted PDF mail to kim@plain.example')).toBe('Sommer-Regen-2026');
    expect(await sendRaw(port, 'alice@example.com', ['kim@plain.example'], Buffer.from('From: alice@example.com\r\nTo: kim@plain.example\r\nSubject: chosen k1\r\n\r\nk1body\r\n'))).toMatch(/^250 /);
    const { file } = await pdfOf('kim@plain.example', 'chosen k1');
    expect((await popplerText(file, 'Sommer-Regen-2026')).stdout).toContain('k1body');
    await new Promise((r) => setTimeout(r, 500));
    expect(await md.delivered('alice@example.com', 'chosen k1')).toBeUndefined();
  }, 60_000);

  it('five messages for a new pair at once: five PDFs with one password, and one notice, not five', async () => {
    const sent = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => sendRaw(port, 'alice@example.com', ['frank@plain.example'], Buffer.from(`From: alice@example.com\r\nTo: frank@plain.example\r\nSubject: burst b${i}\r\n\r\nburst body ${i}\r\n`))),
    );
    expect(sent.every((r) => r.startsWith('250 '))).toBe(true);
    const pdfs = await Promise.all([1, 2, 3, 4, 5].map((i) => pdfOf('frank@plain.example', `burst b${i}`)));
    const password = await toldPassword('alice@example.com', 'frank@plain.example', 'PDF mail to frank@plain.example');
    for (const [i, p] of pdfs.entries()) expect((await popplerText(p.file, password)).stdout).toContain(`burst body ${i + 1}`);
    await new Promise((r) => setTimeout(r, 1000));
    const notices = (await readdir(join(dir, 'maildir', 'new'))).map((n) => join(dir, 'maildir', 'new', n));
    const toAlice = await Promise.all(notices.map(async (f) => (await readFile(f, 'latin1')).match(/^Subject: Password for encrypted PDF mail to frank@plain\.example\r$/m) !== null));
    expect(toAlice.filter(Boolean)).toHaveLength(1);
  }, 60_000);

  it('a rule with pdf: { cipher: aes-128 } gives R4, notify_sender reports the PDF, and mail from <> or from outside is held, not sent in clear', async () => {
    const raw = Buffer.from('From: alice@example.com\r\nTo: gina@old.example\r\nSubject: legacy l1\r\n\r\nfor an old reader, l1body\r\n');
    expect(await sendRaw(port, 'alice@example.com', ['gina@old.example'], raw)).toMatch(/^250 /);
    const { file } = await pdfOf('gina@old.example', 'legacy l1');
    const password = await toldPassword('alice@example.com', 'gina@old.example', 'PDF mail to gina@old.example');
    const enc = await showEncryption(file, password);
    expect(enc.stdout).toMatch(/R = 4/);
    expect(enc.stdout).toMatch(/AESv2/);
    expect((await popplerText(file, password)).stdout).toContain('l1body');
    expect((await mupdfText(file, password)).stdout).toContain('l1body');
    const report = Buffer.from(await text('alice@example.com', 'Delivery report: legacy l1'), 'latin1').toString('utf8');
    expect(report).toContain('sent as an encrypted PDF to gina@old.example');

    // Nobody to tell the password to: held with the reason.
    expect(await sendRaw(port, '', ['hank@old.example'], Buffer.from('From: robot@elsewhere.example\r\nTo: hank@old.example\r\nSubject: bounce n1\r\n\r\nn1body\r\n'))).toMatch(/^250 /);
    expect(await heldReason('hank@old.example')).toMatch(/PDF mail needs a sender to tell the password to/);
    expect(await md.delivered('hank@old.example', 'n1body')).toBeUndefined();
    // An outside sender: the password would cross the Internet in a mail beside the PDF — held too.
    expect(await sendRaw(port, 'robot@elsewhere.example', ['ivan@old.example'], Buffer.from('From: robot@elsewhere.example\r\nTo: ivan@old.example\r\nSubject: outside o1\r\n\r\no1body\r\n'))).toMatch(/^250 /);
    expect(await heldReason('ivan@old.example')).toMatch(/PDF mail tells the password to the sender, and robot@elsewhere\.example is not in internal_domains/);
  }, 60_000);

  it('{pdf} from a trusted client sends a PDF even to a certificate holder', async () => {
    const raw = Buffer.from('From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: {pdf} by hand c1\r\nMessage-ID: <c1@example.com>\r\n\r\nc1body\r\n');
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], raw)).toMatch(/^250 /);
    const { file } = await pdfOf('bob@partner.example', 'c1@example.com');
    const password = await toldPassword('alice@example.com', 'bob@partner.example', 'PDF mail to bob@partner.example');
    expect((await popplerText(file, password)).stdout).toContain('c1body');
  }, 60_000);

  it('policy explain says whether the pair has a password and whether the sender will be told', async () => {
    const known = await ok(['policy', 'explain', '--from', 'alice@example.com', '--to', 'carol@plain.example', '--to', 'nobody-yet@plain.example', '--to', 'bob@partner.example']);
    expect(known).toMatch(/<carol@plain\.example>[^]*→ PDF, password exists since \d{4}-\d\d-\d\d/);
    expect(known).toMatch(/<nobody-yet@plain\.example>[^]*→ PDF, new password, the sender will be told it/);
    expect(known).toMatch(/<bob@partner\.example>[^]*→ S\/MIME/);
    expect(known).toMatch(/deliver to <carol@plain\.example>: encrypt with PDF mail/);
  });

  it('hostile input: 500 attachments, broken HTML, a PDF and an encrypted file as attachments, 30 MB — a correct PDF or a hold, never clear text', async () => {
    const parts: string[] = [];
    parts.push('Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>broken <b>html <a href="https://example.net/x">link h1word<table><tr><td>cell</p></body\r\n');
    parts.push(`Content-Type: application/pdf; name="inner.pdf"\r\nContent-Disposition: attachment; filename="inner.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('%PDF-1.7\n1 0 obj <</Type/Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n').toString('base64')}\r\n`);
    parts.push(`Content-Type: application/pgp-encrypted; name="secret.gpg"\r\nContent-Disposition: attachment; filename="secret.gpg"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from([0x85, 0x01, 0x0c, 0x03, 0xaa, 0xbb]).toString('base64')}\r\n`);
    for (let i = 0; i < 500; i++) parts.push(`Content-Type: text/plain; name="n${i}.txt"\r\nContent-Disposition: attachment; filename="n${i}.txt"\r\n\r\nfile ${i}\r\n`);
    const many = Buffer.from(`From: alice@example.com\r\nTo: erin@plain.example\r\nSubject: hostile h1\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="hh"\r\n\r\n${parts.map((p) => `--hh\r\n${p}`).join('')}--hh--\r\n`);
    expect(await sendRaw(port, 'alice@example.com', ['erin@plain.example'], many)).toMatch(/^250 /);
    const got = await pdfOf('erin@plain.example', 'hostile h1');
    const password = await toldPassword('alice@example.com', 'erin@plain.example', 'hostile h1');
    const files = await popplerAttachments(got.file, password);
    expect(files.size).toBe(502);
    expect(files.get('inner.pdf')!.toString('latin1')).toContain('%PDF-1.7');
    // (The line break before a boundary belongs to the boundary, RFC 2046 5.1.1.)
    expect(files.get('n499.txt')!.toString()).toBe('file 499');
    expect((await popplerText(got.file, password)).stdout).toContain('h1word');

    const big = Buffer.alloc(30 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const huge = Buffer.from(
      `From: alice@example.com\r\nTo: erin@plain.example\r\nSubject: huge z1\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nthe big file\r\n` +
        `--zz\r\nContent-Type: application/octet-stream; name="big.bin"\r\nContent-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${big.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--zz--\r\n`,
    );
    expect(await sendRaw(port, 'alice@example.com', ['erin@plain.example'], huge)).toMatch(/^250 /);
    const hugePdf = await pdfOf('erin@plain.example', 'huge z1');
    expect((await popplerAttachments(hugePdf.file, password)).get('big.bin')?.equals(big)).toBe(true);
  }, 120_000);
});
