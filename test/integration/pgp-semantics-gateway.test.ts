/**
 * OpenPGP key semantics and v6 end to end through the running gateway (default policy), over SMTP:
 * - `postern pgp generate --v6` makes an internal user's v6 key; a partner's v6 key (made with
 *   openpgp.js: gpg 2.2 cannot make or read v6) gets SEIPDv2 from the gateway, which openpgp.js
 *   decrypts; a partner's gpg v4 key keeps SEIPDv1, which gpg decrypts; both together get SEIPDv1.
 * - A partner's v6 mail (openpgp.js) to the internal v6 user arrives decrypted (seipdv2) and verified.
 * - A partner whose key has its signing flag on the direct-key signature only: valid.
 * - A partner whose key is retired (a soft revocation: gpg --gen-revoke, `postern pgp import` of
 *   the certificate while the gateway runs) between two signatures: the older one stays valid,
 *   the newer one becomes invalid.
 * - gpg's IDEA-encrypted mail to an internal user: X-Postern-Encryption: unsupported.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { gpgHome, type GpgHome } from '../helpers/gpg-home.js';
import { clearsignAt, genRevoke, gpgTime } from '../helpers/gpg-revoke.js';
import { maildirOf } from '../helpers/maildir.js';
import { directKeyOnly, KEY_FLAGS } from '../helpers/pgp-direct-key.js';
import { sendRaw } from '../helpers/send.js';

const armorIn = (text: string) => text.slice(text.indexOf('-----BEGIN PGP MESSAGE-----'), text.indexOf('-----END PGP MESSAGE-----') + 25);
const packetVersions = async (armored: string) =>
  (await openpgp.readMessage({ armoredMessage: armored })).packets.map((p) => `${p.constructor.name.replace('Packet', '')}:${(p as unknown as { version?: number }).version ?? '-'}`);

describe('OpenPGP key semantics and v6 through the gateway', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let config: string;
  let gpg: GpgHome;
  let vera: openpgp.PrivateKey; // partner, v6, openpgp.js
  let alicePub: openpgp.PublicKey; // internal, v6 (pgp generate --v6)
  let bobPub: openpgp.PublicKey; // internal, v4
  let samFpr: string;
  const md = maildirOf(() => dir);
  /** By the Message-ID mail() gives each subject: an encrypted copy's Subject may be hidden (RFC 9788 header protection). */
  const waitDelivered = async (rcpt: string, subject: string) => readFile(await md.waitDelivered(rcpt, `<${subject.replace(/\W/g, '')}@test>`), 'latin1');
  const ok = async (args: string[]) => {
    const r = await runPostern(config, args);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  const exportKey = async (address: string, name: string) => {
    const fpr = /([0-9A-F]{40,64})/.exec(await ok(['pgp', 'list', '--address', address]))![1]!;
    await ok(['pgp', 'export', fpr, '--out', join(dir, name)]);
    return readFile(join(dir, name), 'latin1');
  };
  const importFile = async (name: string, data: string | Buffer) => {
    await writeFile(join(dir, name), data);
    await ok(['pgp', 'import', join(dir, name)]);
  };
  const mail = (from: string, to: string, subject: string, body: string, date = new Date(), type = 'text/plain; charset=utf-8') =>
    Buffer.from(`From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${date.toUTCString()}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\nMIME-Version: 1.0\r\nContent-Type: ${type}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-pgp-sem-'));
    port = await freePort();
    gpg = gpgHome();
    config = await writeGatewayConfig(dir, port);
    // Internal users: Alice with a v6 key, Bob and Ida with the v4 default.
    expect(await ok(['pgp', 'generate', 'alice@example.com', '--name', 'Alice', '--v6'])).toMatch(/^generated: [0-9A-F]{64} Alice <alice@example\.com> \(v6\)/);
    await ok(['pgp', 'generate', 'bob@example.com', '--name', 'Bob']);
    await ok(['pgp', 'generate', 'ida@example.com', '--name', 'Ida']);
    alicePub = await openpgp.readKey({ armoredKey: await exportKey('alice@example.com', 'alice.asc') });
    bobPub = await openpgp.readKey({ armoredKey: await exportKey('bob@example.com', 'bob.asc') });
    gpg.import(await exportKey('ida@example.com', 'ida.asc'));
    gpg.import(await readFile(join(dir, 'bob.asc')));
    // Partners: Vera (v6, openpgp.js), Gary (gpg v4), Dee (flags on the direct-key signature only), Sam (soft-revoked later).
    vera = (await openpgp.generateKey({ userIDs: [{ name: 'Vera', email: 'vera@v6.example' }], type: 'curve25519', format: 'object', config: { v6Keys: true, aeadProtect: true } })).privateKey;
    await importFile('vera.asc', vera.toPublic().armor());
    gpg.generate('Gary <gary@v4.example>', 'ed25519');
    await importFile('gary.asc', gpg.exportPublic('gary@v4.example'));
    const dee = await directKeyOnly('dee@direct.example', { flags: KEY_FLAGS.certify | KEY_FLAGS.sign });
    gpg.import(dee);
    await importFile('dee.asc', gpg.exportPublic('dee@direct.example'));
    gpg.run(['--faked-system-time', gpgTime(new Date('2024-01-01T00:00:00Z')), '--quick-gen-key', 'Sam <sam@soft.example>', 'ed25519', 'sign,cert', 'never']);
    samFpr = gpg.run(['--with-colons', '--fingerprint', 'sam@soft.example']).stdout.toString().split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    gw = await startGateway(config);
  }, 120_000);
  afterAll(async () => {
    await gw?.stop();
    gpg?.close();
    await cleanup();
  });

  it('pgp generate --v6 stored a v6 key: pgp list says version 6, the export is a v6 key', async () => {
    const listed = JSON.parse((await ok(['pgp', 'list', '--address', 'alice@example.com', '--json'])).trim()) as { version: number; algorithm: string };
    expect(listed).toMatchObject({ version: 6, algorithm: 'ed25519' });
    expect(alicePub.keyPacket.version).toBe(6);
    expect(bobPub.keyPacket.version).toBe(4);
  });

  it("to a partner's v6 key: SEIPDv2 (AEAD), decrypted by openpgp.js, Bob's signature inside good", async () => {
    expect(await sendRaw(port, 'bob@example.com', ['vera@v6.example'], mail('Bob <bob@example.com>', 'vera@v6.example', 'to v6 s1', 'for Vera, token s1\n'))).toMatch(/^250 /);
    const armored = armorIn(await waitDelivered('vera@v6.example', 'to v6 s1'));
    expect(await packetVersions(armored)).toEqual(['PublicKeyEncryptedSessionKey:6', 'SymEncryptedIntegrityProtectedData:2']);
    const d = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored }), decryptionKeys: vera, verificationKeys: bobPub, expectSigned: true });
    expect(String(d.data)).toContain('token s1');
    expect(await d.signatures[0]!.verified).toBe(true);
  });

  it("to a partner's gpg v4 key: SEIPDv1 with MDC, which gpg decrypts, Bob's signature good", async () => {
    expect(await sendRaw(port, 'bob@example.com', ['gary@v4.example'], mail('Bob <bob@example.com>', 'gary@v4.example', 'to v4 s2', 'for Gary, token s2\n'))).toMatch(/^250 /);
    const armored = armorIn(await waitDelivered('gary@v4.example', 'to v4 s2'));
    expect((await packetVersions(armored)).at(-1)).toBe('SymEncryptedIntegrityProtectedData:1');
    const r = gpg.run(['--status-fd', '2', '--decrypt'], armored);
    expect(r.stdout.toString()).toContain('token s2');
    expect(r.stderr).toMatch(/DECRYPTION_OKAY/);
    expect(r.stderr).toMatch(/GOODSIG [0-9A-F]+ Bob <bob@example\.com>/);
  });

  it('to both at once (one message for the group): SEIPDv1 for both, gpg decrypts its copy, openpgp.js the other', async () => {
    expect(await sendRaw(port, 'bob@example.com', ['vera@v6.example', 'gary@v4.example'], mail('Bob <bob@example.com>', 'vera@v6.example, gary@v4.example', 'to both s3', 'for both, token s3\n'))).toMatch(/^250 /);
    const forGary = armorIn(await waitDelivered('gary@v4.example', 'to both s3'));
    expect((await packetVersions(forGary)).at(-1)).toBe('SymEncryptedIntegrityProtectedData:1');
    expect(gpg.run(['--decrypt'], forGary).stdout.toString()).toContain('token s3');
    const forVera = armorIn(await waitDelivered('vera@v6.example', 'to both s3'));
    const d = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: forVera }), decryptionKeys: vera });
    expect(String(d.data)).toContain('token s3');
  });

  it("a partner's v6 mail (openpgp.js, signed and encrypted) to the internal v6 key: decrypted from SEIPDv2, signature valid", async () => {
    const inner = 'Content-Type: text/plain; charset=utf-8\r\n\r\nhello Alice, token v1\r\n';
    const armored = (await openpgp.encrypt({ message: await openpgp.createMessage({ text: inner }), encryptionKeys: alicePub, signingKeys: vera, format: 'armored' })) as string;
    expect(await packetVersions(armored)).toEqual(['PublicKeyEncryptedSessionKey:6', 'SymEncryptedIntegrityProtectedData:2']);
    const body = `--pp\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--pp\r\nContent-Type: application/octet-stream\r\n\r\n${armored}\r\n--pp--\r\n`;
    expect(await sendRaw(port, 'vera@v6.example', ['alice@example.com'], mail('Vera <vera@v6.example>', 'alice@example.com', 'sealed v1', body, new Date(), 'multipart/encrypted; protocol="application/pgp-encrypted"; boundary="pp"'))).toMatch(/^250 /);
    const text = await waitDelivered('alice@example.com', 'sealed v1');
    expect(text).toContain('hello Alice, token v1');
    expect(text).toMatch(/^X-Postern-Encryption: decrypted; method=pgp; cipher=aes256-(ocb|gcm|eax); packet=seipdv2; integrity=aead/m);
    expect(text).toMatch(/^X-Postern-Signature: valid; method=pgp; signer=vera@v6\.example/m);
  });

  it('a signature by a key whose signing flag is on its direct-key signature only: valid', async () => {
    const clear = gpg.run(['--local-user', 'dee@direct.example', '--clearsign'], 'flags on the direct-key signature, token d1\n').stdout.toString();
    expect(await sendRaw(port, 'dee@direct.example', ['alice@example.com'], mail('dee@direct.example', 'alice@example.com', 'direct d1', clear))).toMatch(/^250 /);
    expect(await waitDelivered('alice@example.com', 'direct d1')).toMatch(/^X-Postern-Signature: valid; method=pgp; signer=dee@direct\.example/m);
  });

  it("a key retired (a soft revocation dated 2024-03-01) while the gateway runs, by `pgp import` of gpg's revocation certificate: its signature of 2024-02-01 stays valid, that of 2024-04-01 is invalid", async () => {
    const before = new Date('2024-02-01T00:00:00Z');
    const after = new Date('2024-04-01T00:00:00Z');
    const signedBefore = clearsignAt(gpg, samFpr, 'before retirement, token r1\n', before);
    const signedAfter = clearsignAt(gpg, samFpr, 'after retirement, token r2\n', after);
    await importFile('sam.asc', gpg.exportPublic(samFpr));
    // Both valid while the key is not revoked; the workers have it prepared now.
    expect(await sendRaw(port, 'sam@soft.example', ['alice@example.com'], mail('sam@soft.example', 'alice@example.com', 'soft r0', signedAfter, after))).toMatch(/^250 /);
    expect(await waitDelivered('alice@example.com', 'soft r0')).toMatch(/^X-Postern-Signature: valid; method=pgp; signer=sam@soft\.example/m);
    await writeFile(join(dir, 'sam-rev.asc'), genRevoke(gpg, samFpr, 3, new Date('2024-03-01T00:00:00Z')));
    expect(await ok(['pgp', 'import', join(dir, 'sam-rev.asc')])).toMatch(new RegExp(`^revoked: ${samFpr} Sam <sam@soft\\.example>`));
    expect(await ok(['pgp', 'list', '--address', 'sam@soft.example'])).toMatch(/\trevoked/);
    // A certificate for a key the store does not hold is refused with the reason, exit 1.
    const stranger = gpg.generate('Stranger <stranger@else.example>', 'ed25519');
    await writeFile(join(dir, 'stranger-rev.asc'), genRevoke(gpg, stranger, 0, new Date()));
    const refused = await runPostern(config, ['pgp', 'import', join(dir, 'stranger-rev.asc')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`a revocation certificate for ${stranger}, but the store has no such key`);
    expect(await sendRaw(port, 'sam@soft.example', ['alice@example.com'], mail('sam@soft.example', 'alice@example.com', 'soft r1', signedBefore, before))).toMatch(/^250 /);
    expect(await sendRaw(port, 'sam@soft.example', ['alice@example.com'], mail('sam@soft.example', 'alice@example.com', 'soft r2', signedAfter, after))).toMatch(/^250 /);
    expect(await waitDelivered('alice@example.com', 'soft r1')).toMatch(/^X-Postern-Signature: valid; method=pgp; signer=sam@soft\.example/m);
    expect(await waitDelivered('alice@example.com', 'soft r2')).toMatch(/^X-Postern-Signature: invalid; method=pgp; .*reason="the key was revoked on 2024-03-01 \(key retired: test\), before this signature was made/m);
  });

  it('gpg mail encrypted with IDEA to an internal user: X-Postern-Encryption: unsupported, the ciphertext delivered as it came', async () => {
    const armored = gpg.run(['--cipher-algo', 'IDEA', '--armor', '--encrypt', '--recipient', 'ida@example.com'], 'old cipher, token i1\n').stdout.toString();
    expect(await sendRaw(port, 'gary@v4.example', ['ida@example.com'], mail('gary@v4.example', 'ida@example.com', 'idea i1', armored))).toMatch(/^250 /);
    const text = await waitDelivered('ida@example.com', 'idea i1');
    expect(text).toMatch(/^X-Postern-Encryption: unsupported; method=pgp; reason="the message is encrypted with IDEA, which Postern does not decrypt/m);
    expect(text).toContain('-----BEGIN PGP MESSAGE-----');
  });
});
