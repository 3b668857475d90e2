/**
 * Issue 21 (part A) end to end through the running gateway, one case per class, every signature
 * and ciphertext made by openssl or gpg:
 * 1. crypto below the top: an openssl-signed part, a gpg-encrypted PGP/MIME part and a clear-signed
 *    .asc attachment in one multipart/mixed — both methods report, the ciphertext stays as it came;
 * 2. a good signature under two From: fields is a mismatch naming them;
 * 3. two signers, one damaged: the first X-Postern-Signature field says invalid;
 * 4. outbound mail the sender's client encrypted (openssl cms, gpg) passes with its encryption
 *    intact — not encrypted again, not signed on top, not held by a rule that requires encryption —
 *    while armour pasted into a text part is still encrypted by the gateway.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSignedData } from '../../src/smime/sig-parse.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { sendRaw } from '../helpers/send.js';

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');
const b64 = (d: Buffer) => d.toString('base64').replace(/.{76}/g, '$&\r\n');
const INNER = 'Content-Type: text/plain; charset=us-ascii\r\n\r\nthe signed words\r\n';
const fieldsOf = (text: string, name: string) => [...text.slice(0, text.indexOf('\r\n\r\n')).matchAll(new RegExp(`^${name}: (.*(?:\\r\\n[ \\t].*)*)`, 'gm'))].map((m) => m[1]!.replace(/\r\n[ \t]+/g, ' '));
const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);

describe('verdicts that hold under attack, through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let gpg: GpgHome;
  let partnerCa: Issued, ourCa: Issued, bob: Issued, bobEc: Issued, alice: Issued;
  let aliceFpr: string;
  let n = 0;
  const { waitDelivered } = maildirOf(() => dir);
  const delivered = async (rcpt: string, token: string) => readFile(await waitDelivered(rcpt, token), 'latin1');
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  async function cms(args: string[], input: string): Promise<string> {
    const i = join(dir, `cms-in-${n}`);
    const o = join(dir, `cms-out-${n++}`);
    await writeFile(i, input);
    await run('openssl', ['cms', ...args.map((a) => (a === 'IN' ? i : a === 'OUT' ? o : a))]);
    return crlf(await readFile(o, 'latin1')).replace(/^MIME-Version: 1.0\r\n/, '');
  }
  const head = (from: string, to: string, subject: string) => `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\nMIME-Version: 1.0\r\n`;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-verdicts-gw-'));
    await mkdir(join(dir, 'ec'));
    [partnerCa, ourCa] = await Promise.all([opensslCa(dir, 'Partner'), opensslCa(dir, 'Example Corp')]);
    [bob, bobEc, alice] = await Promise.all([opensslMailbox(dir, partnerCa, 'bob@partner.example'), opensslMailbox(join(dir, 'ec'), partnerCa, 'bob@partner.example', 'ec'), opensslMailbox(dir, ourCa, 'alice@example.com')]);
    port = await freePort();
    config = await writeGatewayConfig(dir, port);
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: strict partner\n    when: { recipient: { domain: strict.example } }\n    do: [sign, { encrypt: { methods: [smime, pgp], require: true, otherwise: hold } }]\n');
    await ok(['cert', 'import', partnerCa.cert, '--trust']);
    await ok(['cert', 'import', ourCa.cert, '--trust']);
    await ok(['cert', 'import', alice.cert, '--key', alice.key]);
    await ok(['cert', 'import', bob.cert]);
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
    await cleanup();
  });

  it('1. a signed S/MIME part, an encrypted PGP/MIME part and a clear-signed attachment in one mixed: all reported, the ciphertext left as it came', async () => {
    const signedPart = await cms(['-sign', '-in', 'IN', '-out', 'OUT', '-signer', bob.cert, '-inkey', bob.key], INNER);
    const armour = crlf(gpg.run(['--armor', '--encrypt', '--recipient', aliceFpr], INNER).stdout.toString());
    const clear = crlf(gpg.run(['--clearsign', '-u', 'paula@pgp.example'], 'terms, signed by Paula\n').stdout.toString());
    const body =
      'Content-Type: multipart/mixed; boundary="mx"\r\n\r\n--mx\r\nContent-Type: text/plain\r\n\r\nwritten around it, token v1\r\n' +
      `--mx\r\n${signedPart}\r\n` +
      `--mx\r\nContent-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pe"\r\n\r\n--pe\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--pe\r\nContent-Type: application/octet-stream\r\n\r\n${armour}\r\n--pe--\r\n` +
      `--mx\r\nContent-Type: text/plain; name=terms.asc\r\nContent-Disposition: attachment; filename=terms.asc\r\n\r\n${clear}\r\n--mx--\r\n`;
    // A forged result field arriving with the mail is removed, not believed.
    const raw = Buffer.from(`${head('bob@partner.example', 'alice@example.com', 'nested v1')}X-Postern-Signature: valid; method=smime; signer=bob@partner.example\r\n${body}`, 'latin1');
    expect(await sendRaw(port, 'bob@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const text = await delivered('alice@example.com', 'nested v1');
    expect(fieldsOf(text, 'X-Postern-Encryption')).toEqual(['not-decrypted; method=pgp; reason=nested; parts=3; detail="encrypted content inside another MIME part, or among other text, was left as it is (EFAIL defence: only a wholly encrypted message is decrypted)"']);
    const sigs = fieldsOf(text, 'X-Postern-Signature');
    // Paula's signature is good but she is not the sender: the weakest verdict leads.
    expect(sigs).toEqual([
      'mismatch; method=mixed; signatures=2; not-valid=1; signer=paula@pgp.example; reason="signature 2 of 2 (paula@pgp.example): good signature, but the key\'s user ids (paula@pgp.example) do not include the From: address (bob@partner.example)"',
      'partial; method=smime; scope=partial; signature=valid; signer=bob@partner.example; part=2; unsigned="1,3,4"; reason="only part 2 of the message is signed; parts 1, 3, 4 are not"',
      expect.stringMatching(/^partial; method=pgp; scope=partial; signature=mismatch; signer=paula@pgp\.example; key=[0-9A-F]{40}; part=4; unsigned="1,2\.1,3"; reason="good signature, but the key's user ids \(paula@pgp\.example\) do not include the From: address \(bob@partner\.example\)"$/),
    ]);
    expect(bodyOf(text)).toContain(armour);
    expect(bodyOf(text)).toContain('written around it, token v1');
  });

  it('2. a good S/MIME signature under two From: fields is a mismatch that names them', async () => {
    const signed = await cms(['-sign', '-in', 'IN', '-out', 'OUT', '-signer', bob.cert, '-inkey', bob.key], 'Content-Type: text/plain\r\n\r\npay the invoice, token v2\r\n');
    const raw = Buffer.from(`From: ceo@example.com\r\n${head('bob@partner.example', 'alice@example.com', 'two from v2')}${signed}`, 'latin1');
    expect(await sendRaw(port, 'bob@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const text = await delivered('alice@example.com', 'two from v2');
    expect(fieldsOf(text, 'X-Postern-Signature')).toEqual([
      'mismatch; method=smime; signer=bob@partner.example; reason="the signer cannot be bound to the sender: the message has 2 From: fields (ceo@example.com, bob@partner.example): a signature cannot vouch for all of them"',
    ]);
  });

  it('3. two signerInfos, the second damaged: the first field is the invalid summary, then one field per signer', async () => {
    const signed = await cms(['-sign', '-in', 'IN', '-out', 'OUT', '-signer', bob.cert, '-inkey', bob.key, '-signer', bobEc.cert, '-inkey', bobEc.key], 'Content-Type: text/plain\r\n\r\nco-signed, token v3\r\n');
    const m = /(Content-Type: application\/(?:x-)?pkcs7-signature[^]*?\r\n\r\n)([A-Za-z0-9+/=\r\n]+)/.exec(signed)!;
    const p7s = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
    const at = p7s.indexOf(parseSignedData(p7s).signerInfos[1]!.signature);
    p7s[at + 5] = p7s[at + 5]! ^ 0x40;
    const raw = Buffer.from(`${head('bob@partner.example', 'alice@example.com', 'cosigned v3')}${signed.replace(m[2]!, `${b64(p7s)}\r\n`)}`, 'latin1');
    expect(await sendRaw(port, 'bob@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);
    const sigs = fieldsOf(await delivered('alice@example.com', 'cosigned v3'), 'X-Postern-Signature');
    expect(sigs).toHaveLength(3);
    expect(sigs[0]).toMatch(/^invalid; method=smime; signatures=2; not-valid=1; signer=bob@partner\.example; reason="signature 2 of 2 \(bob@partner\.example\): the signature does not verify/);
    expect(sigs.slice(1).map((s) => s.split(';')[0])).toEqual(['valid', 'invalid']);
  });

  it('4. mail the sender already encrypted passes as it is; armour pasted into a text part is still encrypted', async () => {
    // S/MIME by openssl to Bob (whom the gateway would encrypt to itself).
    const smime = await cms(['-encrypt', '-aes256', '-in', 'IN', '-out', 'OUT', bob.cert], 'Content-Type: text/plain\r\n\r\nsealed by my own client, token v4s\r\n');
    const smimeRaw = Buffer.from(`${head('alice@example.com', 'bob@partner.example', 'own smime v4')}${smime}`, 'latin1');
    // PGP/MIME by gpg to Paula and to someone the strict rule requires encryption for, without a key here.
    const armour = crlf(gpg.run(['--armor', '--encrypt', '-r', 'paula@pgp.example'], 'Content-Type: text/plain\r\n\r\nsealed, token v4p\r\n').stdout.toString());
    const pgpRaw = Buffer.from(
      `${head('alice@example.com', 'paula@pgp.example, sam@strict.example', 'own pgp v4')}Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pe"\r\n\r\n` +
        `--pe\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--pe\r\nContent-Type: application/octet-stream\r\n\r\n${armour}\r\n--pe--\r\n`,
      'latin1',
    );
    const pasted = Buffer.from(`${head('alice@example.com', 'bob@partner.example', 'pasted v4')}Content-Type: text/plain\r\n\r\nhere is the key material, token v4t:\r\n${armour}`, 'latin1');
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], smimeRaw)).toMatch(/^250 /);
    expect(await sendRaw(port, 'alice@example.com', ['paula@pgp.example', 'sam@strict.example'], pgpRaw)).toMatch(/^250 /);
    expect(await sendRaw(port, 'alice@example.com', ['bob@partner.example'], pasted)).toMatch(/^250 /);

    const toBob = await delivered('bob@partner.example', 'own smime v4');
    expect(bodyOf(toBob)).toBe(bodyOf(smimeRaw.toString('latin1')));
    expect(toBob).toMatch(/^Content-Type: application\/(x-)?pkcs7-mime; smime-type=enveloped-data/m);
    // One layer: Bob's key opens it straight to Alice's text (not to another envelope, not to a signature).
    const out = join(dir, 'v4-bob.txt');
    await run('openssl', ['cms', '-decrypt', '-in', await waitDelivered('bob@partner.example', 'own smime v4'), '-recip', bob.cert, '-inkey', bob.key, '-out', out]);
    expect(await readFile(out, 'latin1')).toContain('sealed by my own client, token v4s');
    for (const rcpt of ['paula@pgp.example', 'sam@strict.example']) {
      const t = await delivered(rcpt, 'own pgp v4');
      expect(bodyOf(t)).toBe(bodyOf(pgpRaw.toString('latin1')));
    }
    expect(gpg.run(['--decrypt'], armour).stdout.toString()).toContain('token v4p');
    // Sam's copy arriving at all shows the rule that requires encryption took the sender's own for it.
    for (const method of ['smime', 'pgp']) await gw.waitFor((l) => l.event === 'worker.already_encrypted' && l.method === method);

    // Armour among other text is not ciphertext as a whole: the gateway encrypts (and signs) it for Bob.
    const p = await delivered('bob@partner.example', 'pasted v4');
    expect(p).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    expect(p).not.toContain('token v4t');
  });
});
