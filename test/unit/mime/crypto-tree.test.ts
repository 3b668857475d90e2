/**
 * The pieces of "verdicts that hold under attack" that need no crypto peer: where crypto sits in
 * a MIME tree (IMAP part numbers, what is outside a signed part), the bounds that keep hostile
 * nesting cheap, the From: binding rules, the summary of several signatures, and which bodies are
 * ciphertext as a whole. The real signatures and ciphertexts, made by openssl, gpgsm, gpg and
 * openpgp.js, are in test/unit/smime/nested-verdicts.test.ts and test/unit/openpgp/nested-verdicts.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { bindSigner, bodyCiphertext, cryptoMethods, cryptoTree, fromBinding, outside, parseHeaders, resultFields, type MethodResults } from '../../../src/mime/index.js';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const text = (body: string, extra = '') => `Content-Type: text/plain; charset=utf-8${extra}\n\n${body}`;
let n = 0;
const multipart = (sub: string, parts: string[], params = '') => {
  const b = `b${n++}`;
  return `Content-Type: multipart/${sub}; boundary="${b}"${params}\n\n${parts.map((p) => `--${b}\n${p}\n`).join('')}--${b}--\n`;
};
const msg = (entity: string) => Buffer.from(crlf(`From: a@example.org\nTo: b@example.org\nSubject: t\nMIME-Version: 1.0\n${entity}`));
const ARMOUR = '-----BEGIN PGP MESSAGE-----\n\nhQEMA1234\n=abcd\n-----END PGP MESSAGE-----\n';
const SIGNED = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n-----BEGIN PGP SIGNATURE-----\n\niQEz\n=abcd\n-----END PGP SIGNATURE-----\n';
const pkcs7 = (smimeType: string) => `Content-Type: application/pkcs7-mime; smime-type=${smimeType}; name=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAx\n`;
const pgpSigned = (content: string) => multipart('signed', [content, 'Content-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----'], '; protocol="application/pgp-signature"; micalg=pgp-sha256');
const smimeSigned = (content: string) => multipart('signed', [content, 'Content-Type: application/pkcs7-signature; name=smime.p7s\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHAqCAMIACAQEx'], '; protocol="application/pkcs7-signature"; micalg=sha-256');

describe('cryptoTree: crypto anywhere, by IMAP part number', () => {
  it('finds signed and encrypted parts in mixed, alternative and forwarded messages, and names what is outside each', () => {
    const forwarded = `Content-Type: message/rfc822\n\nFrom: c@example.org\nSubject: fwd\nMIME-Version: 1.0\n${multipart('mixed', [text('inner'), pkcs7('enveloped-data')])}`;
    const m = msg(multipart('mixed', [multipart('alternative', [text('plain'), smimeSigned(text('signed'))]), pgpSigned(text('pgp signed')), forwarded, text(ARMOUR, '\nContent-Disposition: attachment; filename=secret.asc')]));
    const tree = cryptoTree(m);
    expect(tree.nodes.map((x) => [x.part, x.kind])).toEqual([
      ['1.2', 'smime-signed'],
      ['2', 'pgp-signed'],
      ['3.2', 'smime-encrypted'],
      ['4', 'pgp-armour'],
    ]);
    // Signature parts are structure, not content; ciphertext is content no signature covers.
    expect(tree.leaves).toEqual(['1.1', '1.2.1', '2.1', '3.1', '3.2', '4']);
    expect(outside(tree.leaves, '1.2')).toEqual(['1.1', '2.1', '3.1', '3.2', '4']);
    expect(tree.nodes.find((x) => x.part === '1.2.1')).toBeUndefined();
    expect(tree.truncated).toBe(false);
    expect(cryptoMethods(m).sort()).toEqual(['pgp', 'smime']);
  });

  it('armour in HTML (after a tag), clear-signed text in an attachment, binary .gpg files, a detached .sig beside its file; a quoted armour block is not crypto', () => {
    const html = 'Content-Type: text/html; charset=utf-8\n\n<html><body><pre>' + ARMOUR.replace(/\n/g, '<br>') + '</pre></body></html>';
    const gpgFile = (first: number) => `Content-Type: application/octet-stream; name=x${first}.gpg\nContent-Transfer-Encoding: base64\n\n${Buffer.from([first, 1, 2, 3]).toString('base64')}\n`;
    const file = 'Content-Type: application/pdf; name=report.pdf\nContent-Disposition: attachment; filename=report.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n';
    const sig = 'Content-Type: application/pgp-signature; name=report.pdf.sig\nContent-Disposition: attachment; filename=report.pdf.sig\n\n-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\n';
    const quoted = text(`you wrote:\n> ${ARMOUR.replace(/\n/g, '\n> ')}`);
    const m = msg(multipart('mixed', [html, text(SIGNED, '\nContent-Disposition: attachment; filename=note.txt'), gpgFile(0x85), gpgFile(0x90), file, sig, quoted]));
    const tree = cryptoTree(m);
    expect(tree.nodes.map((x) => [x.part, x.kind, x.html, x.whole])).toEqual([
      ['1', 'pgp-armour', true, true],
      ['2', 'pgp-cleartext', false, true],
      ['3', 'pgp-encrypted', false, false],
      ['4', 'pgp-armour', false, true],
      ['6', 'pgp-signature-file', false, false],
    ]);
    expect(tree.nodes.at(-1)!.target!.part).toBe('5');
    // The signature file is no content of its own.
    expect(tree.leaves).toEqual(['1', '2', '3', '4', '5', '7']);
  });

  it('a body that is one part is part 1; the root of a walk below the top keeps its number', () => {
    expect(cryptoTree(msg(text(`see below\n${ARMOUR}`))).nodes.map((x) => [x.part, x.whole])).toEqual([['1', false]]);
    const inner = Buffer.from(crlf(multipart('mixed', [text('a'), pkcs7('enveloped-data')])));
    expect(cryptoTree(inner, '1').nodes.map((x) => x.part)).toEqual(['1.2']);
  });

  it('hostile nesting stays bounded: 100 000 levels deep, 200 000 empty parts, 10 000 armoured parts', () => {
    let deep = text('bottom');
    for (let i = 0; i < 100_000; i++) deep = `Content-Type: multipart/mixed; boundary=d${i}\n\n--d${i}\n${deep}\n--d${i}--`;
    const a = cryptoTree(msg(deep));
    expect(a.truncated).toBe(true);
    expect(a.nodes).toEqual([]);
    const wide = msg(`Content-Type: multipart/mixed; boundary=w\n\n${'--w\n\n'.repeat(200_000)}--w--\n`);
    const b = cryptoTree(wide);
    expect(b.truncated).toBe(true);
    expect(b.leaves.length).toBeLessThanOrEqual(500);
    const many = cryptoTree(msg(multipart('mixed', Array.from({ length: 10_000 }, () => text(ARMOUR)))));
    expect(many.truncated).toBe(true);
    expect(many.nodes.length).toBeLessThanOrEqual(50);
  });
});

describe('fromBinding: one From: field, one address, no other sender', () => {
  const bind = (head: string) => fromBinding(parseHeaders(Buffer.from(crlf(`${head}\n`))));
  it('binds a single From: (with a display name, an encoded word, a matching Sender:)', () => {
    expect(bind('From: Alice <alice@example.org>')).toEqual({ addresses: ['alice@example.org'] });
    expect(bind('From: =?utf-8?q?Al=C3=AFce?= <alice@example.org>\nSender: ALICE@example.org')).toEqual({ addresses: ['alice@example.org'] });
  });
  it('compares canonical forms: an IDN domain in U-labels or A-labels, upper case, needless quotes are one mailbox', () => {
    expect(bind('From: "alice"@XN--BCHER-KVA.example\nSender: Alice@bücher.example')).toEqual({ addresses: ['"alice"@XN--BCHER-KVA.example'] });
    expect(bindSigner(['alice@bücher.example'], bind('From: <ALICE@xn--bcher-kva.example>'))).toEqual({ address: 'alice@bücher.example' });
    expect(bind('From: "alice@BÜCHER.example" <alice@xn--bcher-kva.example>').problem).toBeUndefined();
    expect(bindSigner(['alice@bucher.example'], bind('From: alice@xn--bcher-kva.example')).mismatch).toMatch(/do not match the From: header/);
  });
  it.each([
    ['From: alice@example.org\nFrom: eve@evil.example', /2 From: fields \(alice@example.org, eve@evil.example\)/],
    ['From: eve@evil.example\nFrom: alice@example.org', /2 From: fields \(eve@evil.example, alice@example.org\)/],
    ['From: alice@example.org, eve@evil.example', /From: field holds 2 addresses/],
    ['From: "<alice@example.org>" <eve@evil.example>', /From: field holds 2 addresses/],
    ['From: <alice@example.org> <eve@evil.example>', /From: field holds 2 addresses/],
    ['From: Alice <alice@example.org>, eve@evil.example', /From: field holds 2 addresses \(alice@example.org, eve@evil.example\)/],
    ['From: team: alice@example.org, eve@evil.example;', /From: field holds 2 addresses/],
    ['From: alice@example.org <eve@evil.example>', /shows the address alice@example.org in its display name but is from eve@evil.example/],
    ['From: =?utf-8?q?alice=40example.org?= <eve@evil.example>', /shows the address alice@example.org/],
    ['From: alice@example.org\nSender: eve@evil.example', /Sender: field \(eve@evil.example\) differs from the From: address \(alice@example.org\)/],
    ['From: alice@example.org\nSender: alice@example.org\nSender: eve@evil.example', /2 Sender: fields/],
    ['From: undisclosed-recipients:;', /holds no address/],
    ['To: alice@example.org', /no From: field/],
  ])('%s → never bindable', (head, problem) => {
    expect(bind(head).problem).toMatch(problem);
  });
});

describe('resultFields: one summary for several signatures', () => {
  const smime = (...sigs: [string, string, string?][]): MethodResults => ({
    method: 'smime',
    encryption: [],
    problems: [],
    signatures: sigs.map(([status, signer, reason]) => ({ status, scope: 'whole' as const, signer, ...(reason ? { reason } : {}) })),
  });
  it('the weakest verdict first, whichever order the signers came in; then each signer', () => {
    for (const order of [smime(['valid', 'alice@example.org'], ['invalid', 'bob@example.org', 'digest mismatch']), smime(['invalid', 'bob@example.org', 'digest mismatch'], ['valid', 'alice@example.org'])]) {
      const f = resultFields([order]);
      expect(f).toHaveLength(3);
      expect(f[0]![1]).toMatch(/^invalid; method=smime; signatures=2; not-valid=1; signer=bob@example\.org; reason="signature \d of 2 \(bob@example\.org\): digest mismatch"$/);
      expect(f.slice(1).map((x) => x[1].split(';')[0])).toEqual(order.signatures.map((s) => s.status));
    }
  });
  it('unknown ranks below untrusted and mismatch; all valid is valid; across methods it says mixed', () => {
    expect(resultFields([smime(['mismatch', 'a@x.example', 'm']), { method: 'pgp', encryption: [], problems: [], signatures: [{ status: 'unknown', scope: 'whole', signer: '0xAB', reason: 'no key' }] }])[0]![1]).toMatch(/^unknown; method=mixed; signatures=2; not-valid=2; signer=0xAB/);
    expect(resultFields([smime(['valid', 'a@x.example'], ['valid', 'b@x.example'])])[0]![1]).toBe('valid; method=smime; signatures=2; signer=a@x.example');
    expect(resultFields([smime(['untrusted', 'a@x.example', 'no chain'], ['mismatch', 'b@x.example', 'from'])])[0]![1]).toMatch(/^untrusted;/);
  });
  it('good signatures of parts only: the summary is partial; one signature has no separate summary', () => {
    const parts: MethodResults = { method: 'pgp', encryption: [], problems: [], signatures: [1, 2].map((i) => ({ status: 'valid', scope: 'partial' as const, signer: `s${i}@x.example`, part: String(i), unsigned: ['3'] })) };
    const f = resultFields([parts]);
    expect(f[0]![1]).toBe('partial; method=pgp; signatures=2; signer=s1@x.example; reason="only parts of the message are signed"');
    expect(f[1]![1]).toBe('partial; method=pgp; scope=partial; signature=valid; signer=s1@x.example; part=1; unsigned=3; reason="only part 1 of the message is signed; part 3 is not"');
    expect(resultFields([smime(['valid', 'a@x.example'])])).toEqual([['X-Postern-Signature', 'valid; method=smime; signer=a@x.example']]);
  });
  it('a signer that is not a plain address is quoted (a certificate subject cannot add parameters)', () => {
    expect(resultFields([smime(['untrusted', 'CN=x; status=valid, O=y', 'no chain'])])[0]![1]).toBe('untrusted; method=smime; signer="CN=x; status=valid, O=y"; reason="no chain"');
  });
});

describe('bodyCiphertext: is the whole body ciphertext already?', () => {
  const pgpMime = (data: string) => multipart('encrypted', ['Content-Type: application/pgp-encrypted\n\nVersion: 1\n', `Content-Type: application/octet-stream\n\n${data}`], '; protocol="application/pgp-encrypted"');
  it('S/MIME enveloped-data (the label is not enough: the content type inside decides), PGP/MIME, Exchange\'s form, and either inside a signature', () => {
    const enveloped = Buffer.from('3080' + '06092a864886f70d010703' + 'a080', 'hex').toString('base64');
    const signedData = Buffer.from('3080' + '06092a864886f70d010702' + 'a080', 'hex').toString('base64');
    const smime = (b64: string) => `Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\nContent-Transfer-Encoding: base64\n\n${b64}\n`;
    expect(bodyCiphertext(msg(smime(enveloped)))?.method).toBe('smime');
    expect(bodyCiphertext(msg(smime(signedData)))).toBeNull();
    expect(bodyCiphertext(msg(pgpMime(ARMOUR)))).toMatchObject({ method: 'pgp' });
    expect(bodyCiphertext(msg(multipart('mixed', [text(''), 'Content-Type: application/pgp-encrypted\n\nVersion: 1\n', `Content-Type: application/octet-stream\n\n${ARMOUR}`])))?.method).toBe('pgp');
    expect(bodyCiphertext(msg(pgpSigned(pgpMime(ARMOUR))))?.method).toBe('pgp');
  });
  it('armour in a text part, ciphertext beside other parts, a PGP/MIME body without its control part: not ciphertext as a whole', () => {
    expect(bodyCiphertext(msg(text(ARMOUR)))).toBeNull();
    expect(bodyCiphertext(msg(multipart('mixed', [text('hi'), pgpMime(ARMOUR)])))).toBeNull();
    expect(bodyCiphertext(msg(multipart('encrypted', [`Content-Type: application/octet-stream\n\n${ARMOUR}`], '; protocol="application/pgp-encrypted"')))).toBeNull();
    expect(bodyCiphertext(msg(multipart('signed', [pgpMime(ARMOUR), text('not a signature')], '; protocol="application/pgp-signature"')))).toBeNull();
  });
});
