/**
 * Verdicts that hold under attack, S/MIME side, with every signature and ciphertext made by an
 * independent peer (openssl cms, gpgsm) and the message around it written here:
 * - a signed part inside multipart/mixed or alternative, a signed message forwarded as an
 *   attachment, an opaque signed .p7m file: partial, naming the signed part and the unsigned ones;
 * - an encrypted part inside mixed or alternative: not decrypted, reason=nested, message untouched;
 * - the From: binding: two From: fields (either order), two addresses, a display name showing
 *   another address, a Sender: that differs — each a mismatch naming the fields, never valid;
 * - two signers where one fails (a damaged signerInfo, an untrusted certificate), both orders:
 *   the first X-Postern-Signature field is the weakest verdict.
 */
import { createPrivateKey } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMessage, prepareDecryptionKey, prepareTrustStore, resultHeaders, type OpenResult, type SmimeDecryptionKey, type TrustStore } from '../../../src/smime/index.js';
import { parseSignedData } from '../../../src/smime/sig-parse.js';
import { tempDir } from '../../helpers/config.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../../helpers/pki-openssl.js';
import { startGpgsm, type Gpgsm } from '../../helpers/smime-sig-peers.js';

const der = async (pemFile: string) => Buffer.from((await readFile(pemFile, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (d: Buffer) => d.toString('base64').replace(/.{76}/g, '$&\r\n');
const INNER = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nthe signed words\r\n';
const TEXT = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nwritten around it by someone else\r\n';
let bn = 0;
const multipart = (sub: string, parts: string[]) => {
  const b = `outer-${bn++}`;
  return `Content-Type: multipart/${sub}; boundary="${b}"\r\n\r\n${parts.map((p) => `--${b}\r\n${p.replace(/(\r\n)+$/, '')}\r\n`).join('')}--${b}--\r\n`;
};
const mail = (head: string, entity: string) => Buffer.from(`${crlf(head)}\r\nTo: bob@example.org\r\nSubject: verdicts\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n${entity}`, 'latin1');
const fields = (r: OpenResult, name: string) => resultHeaders(r).filter(([n]) => n === name).map(([, v]) => v);

describe('S/MIME verdicts under attack, made by openssl cms and gpgsm', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let ca: Issued, rogue: Issued, alice: Issued, aliceEc: Issued, aliceRogue: Issued, bob: Issued;
  let trust: TrustStore;
  let keys: SmimeDecryptionKey[];
  let gpgsm: Gpgsm;
  let n = 0;
  const open = (m: Buffer) => openMessage(m, { trust, keysFor: async () => keys });

  /** openssl cms with IN/OUT files; the output as text with CRLF line ends. */
  async function cms(args: string[], input: string | Buffer): Promise<string> {
    const i = join(dir, `in-${n}`);
    const o = join(dir, `out-${n++}`);
    await writeFile(i, input);
    await run('openssl', ['cms', ...args.map((a) => (a === 'IN' ? i : a === 'OUT' ? o : a))]);
    return crlf(await readFile(o, 'latin1'));
  }
  const signed = (signers: Issued[], content = INNER) => cms(['-sign', '-in', 'IN', '-out', 'OUT', ...signers.flatMap((s) => ['-signer', s.cert, '-inkey', s.key])], content);
  const encrypted = (to: Issued, content = INNER) => cms(['-encrypt', '-aes256', '-in', 'IN', '-out', 'OUT', to.cert], content);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-nested-smime-'));
    [ca, rogue] = await Promise.all([opensslCa(dir, 'Peers'), opensslCa(dir, 'Rogue')]);
    // One address, three certificates: each in its own folder (the helper names files by address).
    await Promise.all(['ec', 'rogue'].map((d) => mkdir(join(dir, d))));
    [alice, aliceEc, aliceRogue, bob] = await Promise.all([
      opensslMailbox(dir, ca, 'alice@example.org'),
      opensslMailbox(join(dir, 'ec'), ca, 'alice@example.org', 'ec'),
      opensslMailbox(join(dir, 'rogue'), rogue, 'alice@example.org'),
      opensslMailbox(dir, ca, 'bob@example.org'),
    ]);
    trust = prepareTrustStore([await der(ca.cert)], []);
    keys = [prepareDecryptionKey(await der(bob.cert), createPrivateKey(await readFile(bob.key, 'utf8')).export({ format: 'der', type: 'pkcs8' }))];
    gpgsm = await startGpgsm(join(dir, 'gpgsm'), await readFile(ca.cert, 'utf8'), [await readFile(bob.cert, 'utf8')]);
    const imported = await gpgsm.importKey(alice.cert, alice.key);
    expect(imported.stderr).toContain('secret keys imported: 1');
  }, 120_000);
  afterAll(async () => {
    await gpgsm?.stop();
    await cleanup?.();
  });

  describe('crypto below the top is found and reported', () => {
    it('an openssl-signed part in multipart/mixed (a list footer beside it) and in multipart/alternative: partial, with the signed and the unsigned parts', async () => {
      const part = await signed([alice]);
      for (const [entity, part_, unsigned] of [
        [multipart('mixed', [part, TEXT]), '1', ['2']],
        [multipart('alternative', [TEXT, part]), '2', ['1']],
        [multipart('mixed', [TEXT, multipart('alternative', [TEXT, part])]), '2.2', ['1', '2.1']],
      ] as const) {
        const r = await open(mail('From: Alice <alice@example.org>', entity));
        expect(r.signatures).toMatchObject([{ status: 'valid', scope: 'partial', part: part_, unsigned, address: 'alice@example.org' }]);
        expect(fields(r, 'X-Postern-Signature')).toEqual([
          `partial; method=smime; scope=partial; signature=valid; signer=alice@example.org; part=${part_}; unsigned=${unsigned.length > 1 ? `"${unsigned.join(',')}"` : unsigned[0]}; reason="only part ${part_} of the message is signed; part${unsigned.length > 1 ? 's' : ''} ${unsigned.join(', ')} ${unsigned.length > 1 ? 'are' : 'is'} not"`,
        ]);
      }
    });

    it('a gpgsm detached signature of a part, a signed message forwarded as message/rfc822, an opaque signed .p7m file: each partial', async () => {
      await writeFile(join(dir, 'gpgsm-content'), INNER);
      const s = await gpgsm.run(['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '-u', 'alice@example.org', '--detach-sign', '-o', join(dir, 'gpgsm.p7s'), join(dir, 'gpgsm-content')], 'x\n');
      expect(s.code, s.stderr).toBe(0);
      const gpgsmPart = `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="gs"\r\n\r\n--gs\r\n${INNER}\r\n--gs\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(await readFile(join(dir, 'gpgsm.p7s')))}\r\n--gs--\r\n`;
      const forwarded = `Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename=fwd.eml\r\n\r\nFrom: alice@example.org\r\nSubject: the original\r\nMIME-Version: 1.0\r\n${await signed([alice])}`;
      await run('openssl', ['cms', '-sign', '-nodetach', '-outform', 'DER', '-in', join(dir, 'gpgsm-content'), '-out', join(dir, 'opaque.p7m'), '-signer', alice.cert, '-inkey', alice.key]);
      const opaqueDer = await readFile(join(dir, 'opaque.p7m'));
      const opaque = `Content-Type: application/pkcs7-mime; smime-type=signed-data; name=report.p7m\r\nContent-Disposition: attachment; filename=report.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(opaqueDer)}\r\n`;
      const r = await open(mail('From: alice@example.org', multipart('mixed', [TEXT, gpgsmPart, forwarded, opaque])));
      expect(r.signatures.map((x) => [x.part, x.form, x.scope, x.status])).toEqual([
        ['2', 'detached', 'partial', 'valid'],
        ['3', 'detached', 'partial', 'valid'],
        ['4', 'opaque', 'partial', 'valid'],
      ]);
      expect(r.signatures[0]!.unsigned).toEqual(['1', '3.1', '4']);
      // Three signatures: a summary first, which says that only parts are signed.
      expect(fields(r, 'X-Postern-Signature')[0]).toBe('partial; method=smime; signatures=3; signer=alice@example.org; reason="only parts of the message are signed"');
      // A changed byte in the forwarded message makes its signature, and so the summary, invalid.
      const tampered = mail('From: alice@example.org', multipart('mixed', [TEXT, gpgsmPart, forwarded.replace('the signed words', 'the signed wordz'), opaque]));
      const t = await open(tampered);
      expect(t.signatures.map((x) => x.status)).toEqual(['valid', 'invalid', 'valid']);
      expect(fields(t, 'X-Postern-Signature')[0]).toMatch(/^invalid; method=smime; signatures=3; not-valid=1; signer=alice@example\.org; reason="signature 2 of 3 \(alice@example\.org\): the content does not match/);
    });

    it('ciphertext inside multipart/mixed or alternative (openssl cms, gpgsm) is left as it is: not-decrypted; reason=nested, the parts named, the message byte for byte', async () => {
      const ossl = await encrypted(bob);
      const out = join(dir, 'gpgsm.p7m');
      const g = await gpgsm.run(['--encrypt', '-r', 'bob@example.org', '-o', out, join(dir, 'gpgsm-content')]);
      expect(g.code, g.stderr).toBe(0);
      const gpgsmPart = `Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(await readFile(out))}\r\n`;
      for (const [entity, parts] of [
        [multipart('mixed', [TEXT, ossl]), ['2']],
        [multipart('alternative', [ossl, gpgsmPart]), ['1', '2']],
        [multipart('mixed', [TEXT, multipart('alternative', [TEXT, gpgsmPart])]), ['2.2']],
      ] as const) {
        const m = mail('From: alice@example.org', entity);
        const r = await open(m);
        expect(r.encryption).toMatchObject({ status: 'not-decrypted', nested: true });
        expect(r.nested).toEqual(parts);
        expect(r.message.equals(m)).toBe(true);
        expect(fields(r, 'X-Postern-Encryption')).toEqual([`not-decrypted; method=smime; reason=nested; parts=${parts.length > 1 ? `"${parts.join(',')}"` : parts[0]}; detail="encrypted content inside another MIME part was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)"`]);
      }
      // The same ciphertext as the whole body is decrypted (the rule is where it is, not what it is).
      const whole = await open(mail('From: alice@example.org', ossl.replace(/^MIME-Version: 1.0\r\n/, '')));
      expect(whole.encryption?.status).toBe('decrypted');
      expect(whole.nested).toEqual([]);
    });
  });

  describe('From: binding without loopholes', () => {
    let entity: string;
    beforeAll(async () => {
      entity = (await signed([alice])).replace(/^MIME-Version: 1.0\r\n/, '');
    });
    it('one From: with Alice (and a Sender: that is Alice) is valid', async () => {
      for (const head of ['From: Alice <alice@example.org>', 'From: Alice <ALICE@example.org>\nSender: alice@example.org']) {
        expect((await open(mail(head, entity))).signatures).toMatchObject([{ status: 'valid', scope: 'whole', address: 'alice@example.org' }]);
      }
    });
    it.each([
      ['two From: fields, Alice first', 'From: alice@example.org\nFrom: ceo@example.org', /2 From: fields \(alice@example\.org, ceo@example\.org\)/],
      ['two From: fields, Alice second', 'From: ceo@example.org\nFrom: alice@example.org', /2 From: fields \(ceo@example\.org, alice@example\.org\)/],
      ['two addresses in From:', 'From: ceo@example.org, Alice <alice@example.org>', /From: field holds 2 addresses \(ceo@example\.org, alice@example\.org\)/],
      ['a display name showing another address', 'From: "ceo@example.org" <alice@example.org>', /shows the address ceo@example\.org in its display name/],
      ['a Sender: that differs', 'From: alice@example.org\nSender: ceo@example.org', /Sender: field \(ceo@example\.org\) differs from the From: address \(alice@example\.org\)/],
    ])('%s: mismatch, the reason naming the fields', async (_, head, why) => {
      const r = await open(mail(head, entity));
      expect(r.signatures).toMatchObject([{ status: 'mismatch', problem: 'from-mismatch', reason: expect.stringMatching(why) }]);
      expect(fields(r, 'X-Postern-Signature')[0]).toMatch(/^mismatch; method=smime; signer=alice@example\.org; reason="the signer cannot be bound to the sender: /);
    });
  });

  describe('several signers, one honest summary (openssl cms -sign with two -signer)', () => {
    /** Flip a byte of the signature value of signerInfo `index` in the p7s of a multipart/signed. */
    const damage = (entity: string, index: number): string => {
      const m = /(Content-Type: application\/(?:x-)?pkcs7-signature[^]*?\r\n\r\n)([A-Za-z0-9+/=\r\n]+)/.exec(entity)!;
      const p7s = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
      const sig = parseSignedData(p7s).signerInfos[index]!.signature;
      const at = p7s.indexOf(sig);
      expect(at).toBeGreaterThan(0);
      p7s[at + 10] = p7s[at + 10]! ^ 0x01;
      return entity.replace(m[2]!, `${b64(p7s)}\r\n`);
    };
    const summary = async (entity: string) => {
      const r = await open(mail('From: alice@example.org', entity.replace(/^MIME-Version: 1.0\r\n/, '')));
      return { statuses: r.signatures.map((s) => s.status), fields: fields(r, 'X-Postern-Signature') };
    };

    it('two good signatures of Alice (RSA and EC certificates): valid, with a summary and one field each', async () => {
      const s = await summary(await signed([alice, aliceEc]));
      expect(s.statuses).toEqual(['valid', 'valid']);
      expect(s.fields).toEqual(['valid; method=smime; signatures=2; signer=alice@example.org', 'valid; method=smime; signer=alice@example.org', 'valid; method=smime; signer=alice@example.org']);
    });

    it('one damaged signerInfo, first or second: the summary is invalid', async () => {
      for (const [order, bad] of [[[alice, aliceEc], 1], [[alice, aliceEc], 0], [[aliceEc, alice], 0], [[aliceEc, alice], 1]] as const) {
        const s = await summary(damage(await signed([...order]), bad));
        expect(s.statuses[bad]).toBe('invalid');
        expect(s.statuses[1 - bad]).toBe('valid');
        expect(s.fields).toHaveLength(3);
        expect(s.fields[0]).toMatch(new RegExp(`^invalid; method=smime; signatures=2; not-valid=1; signer=alice@example\\.org; reason="signature ${bad + 1} of 2 \\(alice@example\\.org\\): the signature does not verify`));
      }
    });

    it('a second signer whose certificate chains to no trusted CA, in either order: the summary is untrusted', async () => {
      for (const order of [[alice, aliceRogue], [aliceRogue, alice]]) {
        const s = await summary(await signed(order));
        expect(s.statuses.sort()).toEqual(['untrusted', 'valid']);
        expect(s.fields[0]).toMatch(/^untrusted; method=smime; signatures=2; not-valid=1; signer=alice@example\.org; reason="signature \d of 2 \(alice@example\.org\): no chain to a trusted CA/);
      }
    });
  });
});
