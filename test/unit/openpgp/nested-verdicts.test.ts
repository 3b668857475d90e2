/**
 * Verdicts that hold under attack, OpenPGP side, with every signature and ciphertext made by gpg
 * 2.2 or openpgp.js and the message around it written here:
 * - PGP/MIME signed and encrypted parts inside multipart/mixed or alternative; armour in an HTML
 *   body and in attachments (.asc, binary .gpg); clear-signed text sent as an attachment or in
 *   HTML; a signed-only message as a file; a detached .sig beside the file it signs — each found:
 *   signatures partial (naming the part and the unsigned ones), ciphertext not-decrypted, nested;
 * - the From: binding (two From: fields, two addresses, a differing Sender:);
 * - several signatures (gpg -u A -u B; a good and a bad signature packet together, both orders;
 *   openpgp.js with a key we do not have): the first X-Postern-Signature is the weakest.
 */
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgpOpenMessage, pgpResultHeaders, preparePgpDecryptionKey, preparePgpVerificationKey, type PgpDecryptionKey, type PgpOpenOptions, type PgpOpenResult, type PgpVerificationKey } from '../../../src/openpgp/index.js';
import { gpgAvailable, gpgHome, type GpgHome } from '../../helpers/gpg-home.js';

const ENTITY = 'Content-Type: text/plain; charset=utf-8\r\n\r\nthe signed words\r\n';
const TEXT = 'Content-Type: text/plain; charset=utf-8\r\n\r\nwritten around it by someone else\r\n';
const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
let bn = 0;
const multipart = (sub: string, parts: string[], params = '') => {
  const b = `o${bn++}`;
  // The line break before a delimiter belongs to the delimiter (RFC 2046): each part keeps its own.
  return `Content-Type: multipart/${sub}; boundary="${b}"${params}\r\n\r\n${parts.map((p) => `--${b}\r\n${p}\r\n`).join('')}--${b}--\r\n`;
};
const mail = (head: string, entity: string) => Buffer.from(`${crlf(head)}\r\nTo: bob@example.org\r\nSubject: verdicts\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n${entity}`, 'utf8');
const pgpSigned = (content: string, signature: string) => multipart('signed', [content, `Content-Type: application/pgp-signature; name=signature.asc\r\n\r\n${crlf(signature)}`], '; protocol="application/pgp-signature"; micalg=pgp-sha256');
const pgpEncrypted = (armour: string) => multipart('encrypted', ['Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n', `Content-Type: application/octet-stream; name=encrypted.asc\r\n\r\n${crlf(armour)}`], '; protocol="application/pgp-encrypted"');
const file = (name: string, type: string, data: Buffer) => `Content-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${data.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n`;
const sigFields = (r: PgpOpenResult) => pgpResultHeaders(r).filter(([n]) => n === 'X-Postern-Signature').map(([, v]) => v);
const encFields = (r: PgpOpenResult) => pgpResultHeaders(r).filter(([n]) => n === 'X-Postern-Encryption').map(([, v]) => v);

describe('OpenPGP verdicts under attack, made by gpg and openpgp.js', () => {
  beforeAll(() => {
    if (!gpgAvailable()) throw new Error('gpg is not installed: run scripts/setup-test-deps.sh as root (npm test does)');
  });
  let gpg: GpgHome;
  let alice: string;
  let aliceWork: string;
  let decrypt: PgpDecryptionKey[];
  let verify: PgpVerificationKey[];
  let js: { alice: openpgp.PrivateKey; stranger: openpgp.PrivateKey };
  const opts = (over: Partial<PgpOpenOptions> = {}): PgpOpenOptions => ({ keysFor: async () => decrypt, verificationKeysFor: async () => verify, ...over });
  const open = (m: Buffer, over: Partial<PgpOpenOptions> = {}) => pgpOpenMessage(m, opts(over));
  const detach = (who: string, data: Buffer | string, armour = true) => gpg.run(['--detach-sign', ...(armour ? ['--armor'] : []), '-u', who], data).stdout;
  const encryptTo = (data: Buffer | string, armour = true) => gpg.run(['--encrypt', ...(armour ? ['--armor'] : []), '-r', 'bob@example.org'], data).stdout;

  beforeAll(async () => {
    gpg = gpgHome();
    alice = gpg.generate('Alice <alice@example.org>', 'ed25519');
    aliceWork = gpg.generate('Alice at work <alice@example.org>', 'ed25519');
    gpg.generate('Bob <bob@example.org>', 'ed25519');
    const made = async (email: string) => (await openpgp.generateKey({ userIDs: [{ email }], type: 'ecc', curve: 'curve25519Legacy', format: 'object' })).privateKey;
    js = { alice: await made('alice@example.org'), stranger: await made('stranger@example.net') };
    decrypt = [await preparePgpDecryptionKey(gpg.exportSecret('bob@example.org'))];
    verify = await Promise.all([gpg.exportPublic(alice), gpg.exportPublic(aliceWork), Buffer.from(js.alice.toPublic().write())].map((k) => preparePgpVerificationKey(Buffer.from(k))));
  }, 120_000);
  afterAll(() => gpg?.close());

  describe('crypto below the top is found and reported', () => {
    it('a gpg-signed PGP/MIME part in mixed and in alternative: partial, with the signed and the unsigned parts', async () => {
      const part = pgpSigned(ENTITY, detach(alice, ENTITY).toString());
      for (const [entity, at, unsigned] of [
        [multipart('mixed', [part, TEXT]), '1', ['2']],
        [multipart('alternative', [TEXT, part]), '2', ['1']],
      ] as const) {
        const r = await open(mail('From: alice@example.org', entity));
        expect(r.signatures).toMatchObject([{ status: 'valid', scope: 'partial', part: at, unsigned, address: 'alice@example.org' }]);
        expect(sigFields(r)[0]).toMatch(new RegExp(`^partial; method=pgp; scope=partial; signature=valid; signer=alice@example\\.org; key=${alice}; part=${at}; unsigned=${unsigned[0]}; reason="only part ${at} of the message is signed; part ${unsigned[0]} is not"$`));
      }
    });

    it('ciphertext in alternative and mixed — PGP/MIME, armour in HTML, an .asc and a binary .gpg file — is left as it is and listed', async () => {
      const armour = encryptTo(ENTITY).toString();
      const html = `Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hi Bob,</p><pre>${armour.replace(/\n/g, '<br>\n')}</pre></body></html>\r\n`;
      const m = mail('From: alice@example.org', multipart('mixed', [multipart('alternative', [TEXT, pgpEncrypted(armour)]), html, file('secret.asc', 'application/pgp-encrypted', Buffer.from(armour)), file('secret.gpg', 'application/octet-stream', encryptTo('binary', false))]));
      const r = await open(m);
      expect(r.encryption).toMatchObject({ status: 'not-decrypted', nested: true });
      expect(r.nested).toEqual(['1.2', '2', '3', '4']);
      expect(r.message.equals(m)).toBe(true);
      expect(encFields(r)).toEqual(['not-decrypted; method=pgp; reason=nested; parts="1.2,2,3,4"; detail="encrypted content inside another MIME part, or among other text, was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)"']);
      // Attachments decrypted as files (decrypt: { pgp_attachments }) are that feature's to report, not nested ciphertext.
      expect((await open(m, { attachmentFiles: true })).nested).toEqual(['1.2', '2']);
    });

    it('armour that is the whole HTML body: decrypted only where the policy reads HTML armour, else reported', async () => {
      const armour = encryptTo(ENTITY).toString();
      const m = mail('From: alice@example.org', `Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><pre>${armour.replace(/\n/g, '<br>\n')}</pre></body></html>\r\n`);
      const plain = await open(m);
      expect(plain.encryption).toMatchObject({ status: 'not-decrypted', nested: true });
      expect(plain.nested).toEqual(['1']);
      expect((await open(m, { inlineHtml: true })).encryption?.status).toBe('decrypted');
    });

    it('signed text sent as attachments: clear-signed .txt (gpg) and in HTML (openpgp.js), a signed-only .asc and .gpg, a detached .sig beside its file', async () => {
      const clear = gpg.run(['--clearsign', '-u', alice], 'the terms we agreed\n').stdout;
      const jsClear = await openpgp.sign({ message: await openpgp.createCleartextMessage({ text: 'also agreed' }), signingKeys: js.alice });
      const html = `Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>As agreed:</p><pre>${crlf(jsClear)}</pre></body></html>\r\n`;
      const report = Buffer.from('%PDF-1.4 not really a pdf, but bytes\n\x00\x01\x02');
      const m = mail('From: Alice <alice@example.org>', multipart('mixed', [
        TEXT,
        file('terms.txt', 'text/plain', clear),
        multipart('alternative', [TEXT, html]),
        file('signed.asc', 'application/pgp-encrypted', gpg.run(['--sign', '--armor', '-u', alice], 'armoured signed file').stdout),
        file('signed.gpg', 'application/octet-stream', gpg.run(['--sign', '-u', aliceWork], 'binary signed file').stdout),
        file('report.pdf', 'application/pdf', report),
        file('report.pdf.sig', 'application/pgp-signature', detach(alice, report, false)),
      ]));
      const r = await open(m);
      expect(r.signatures.map((s) => [s.part, s.status, s.scope])).toEqual([
        ['2', 'valid', 'partial'],
        ['3.2', 'valid', 'partial'],
        ['4', 'valid', 'partial'],
        ['5', 'valid', 'partial'],
        ['6', 'valid', 'partial'],
      ]);
      expect(r.signatures[4]!.unsigned).toEqual(['1', '2', '3.1', '3.2', '4', '5']);
      expect(r.nested).toEqual([]);
      expect(sigFields(r)[0]).toBe(`partial; method=pgp; signatures=5; signer=alice@example.org; reason="only parts of the message are signed"`);
      // The file changed after signing: that signature, and so the summary, is invalid.
      const changed = await open(Buffer.from(m.toString('latin1').replace(report.toString('base64').slice(0, 20), Buffer.from('%PDF-1.5').toString('base64').slice(0, 12) + report.toString('base64').slice(12, 20)), 'latin1'));
      expect(changed.signatures[4]).toMatchObject({ part: '6', status: 'invalid' });
      expect(sigFields(changed)[0]).toMatch(/^invalid; method=pgp; signatures=5; not-valid=1; .*signature 5 of 5/);
    });
  });

  describe('From: binding without loopholes', () => {
    it.each([
      ['one From:', 'From: Alice <alice@example.org>', 'valid', null],
      ['two From: fields, Alice first', 'From: alice@example.org\nFrom: ceo@example.org', 'mismatch', /2 From: fields/],
      ['two From: fields, Alice second', 'From: ceo@example.org\nFrom: Alice <alice@example.org>', 'mismatch', /2 From: fields/],
      ['two addresses', 'From: alice@example.org, ceo@example.org', 'mismatch', /holds 2 addresses/],
      ['a Sender: that differs', 'From: alice@example.org\nSender: ceo@example.org', 'mismatch', /Sender: field \(ceo@example\.org\) differs/],
    ])('%s (a gpg-signed PGP/MIME message): %s', async (_, head, status, why) => {
      const r = await open(mail(head, pgpSigned(ENTITY, detach(alice, ENTITY).toString())));
      expect(r.signatures).toMatchObject([{ status, scope: 'whole', address: 'alice@example.org', ...(why ? { reason: expect.stringMatching(why) } : {}) }]);
    });
    it('inline PGP too: a clear-signed body (gpg) and an armoured signed-and-encrypted body (openpgp.js) under a differing Sender:', async () => {
      const clear = gpg.run(['--clearsign', '-u', alice], 'pay the invoice\n').stdout.toString();
      const head = 'From: alice@example.org\nSender: ceo@example.org';
      const r = await open(mail(head, `Content-Type: text/plain; charset=utf-8\r\n\r\n${crlf(clear)}`));
      expect(r.signatures).toMatchObject([{ status: 'mismatch', scope: 'whole', reason: expect.stringMatching(/Sender: field \(ceo@example\.org\) differs/) }]);
      const bobKey = await openpgp.readKey({ armoredKey: gpg.exportPublic('bob@example.org').toString() });
      const armour = (await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'pay the invoice' }), encryptionKeys: bobKey, signingKeys: js.alice })) as string;
      const e = await open(mail(head, `Content-Type: text/plain; charset=utf-8\r\n\r\n${crlf(armour)}`));
      expect(e.encryption).toMatchObject({ status: 'decrypted', form: 'inline' });
      expect(e.signatures).toMatchObject([{ status: 'mismatch', reason: expect.stringMatching(/Sender: field/) }]);
      expect((await open(mail('From: alice@example.org', `Content-Type: text/plain; charset=utf-8\r\n\r\n${crlf(armour)}`))).signatures).toMatchObject([{ status: 'valid' }]);
    });
    it('inside encryption too (gpg --sign --encrypt, openpgp.js as the checker of the bytes)', async () => {
      const armour = gpg.run(['--sign', '--encrypt', '--armor', '-u', alice, '-r', 'bob@example.org'], ENTITY).stdout.toString();
      const r = await open(mail('From: alice@example.org\nFrom: ceo@example.org', pgpEncrypted(armour)));
      expect(r.encryption?.status).toBe('decrypted');
      expect(r.signatures).toMatchObject([{ status: 'mismatch', reason: expect.stringMatching(/cannot be bound to the sender: the message has 2 From: fields/) }]);
    });
  });

  describe('several signatures, one honest summary', () => {
    const whole = (signature: string | Buffer) => mail('From: alice@example.org', pgpSigned(ENTITY, Buffer.isBuffer(signature) ? signature.toString() : signature));
    const armor = (packets: Buffer) => openpgp.armor(openpgp.enums.armor.signature, new Uint8Array(packets));

    it('gpg -u A -u B: two good signature packets, a summary and one field each', async () => {
      const r = await open(whole(gpg.run(['--detach-sign', '--armor', '-u', alice, '-u', aliceWork], ENTITY).stdout));
      expect(r.signatures.map((s) => s.status)).toEqual(['valid', 'valid']);
      expect(sigFields(r)).toHaveLength(3);
      expect(sigFields(r)[0]).toBe('valid; method=pgp; signatures=2; signer=alice@example.org');
    });

    it('a good and a bad signature packet (made over other bytes), in either order: the summary is invalid', async () => {
      const good = detach(alice, ENTITY, false);
      const bad = detach(aliceWork, `${ENTITY}changed`, false);
      for (const [packets, badIndex] of [[Buffer.concat([good, bad]), 1], [Buffer.concat([bad, good]), 0]] as const) {
        const r = await open(whole(armor(packets)));
        expect(r.signatures.map((s) => s.status)).toEqual(badIndex === 1 ? ['valid', 'invalid'] : ['invalid', 'valid']);
        expect(sigFields(r)[0]).toMatch(new RegExp(`^invalid; method=pgp; signatures=2; not-valid=1; signer=alice@example\\.org; reason="signature ${badIndex + 1} of 2 \\(alice@example\\.org\\): the signature does not match`));
      }
    });

    it('openpgp.js signing with a known and an unknown key, in either order: the summary is unknown', async () => {
      for (const keys of [[js.alice, js.stranger], [js.stranger, js.alice]]) {
        const signature = await openpgp.sign({ message: await openpgp.createMessage({ binary: Buffer.from(ENTITY) }), signingKeys: keys, detached: true });
        const r = await open(whole(signature as string));
        expect(r.signatures.map((s) => s.status).sort()).toEqual(['unknown', 'valid']);
        expect(sigFields(r)[0]).toMatch(/^unknown; method=pgp; signatures=2; not-valid=1; signer=0x[0-9A-F]{16}; reason="signature \d of 2 \(0x[0-9A-F]{16}\): the signer's key/);
      }
    });
  });
});
