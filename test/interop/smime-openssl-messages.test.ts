/**
 * Whole S/MIME messages written by `openssl smime` and `openssl cms` (as a shell content filter or
 * a script would send them) opened by Postern's inbound path: signed (detached, opaque), encrypted
 * (RSA PKCS#1, RSA-OAEP, ECDH; CBC and GCM), signed then encrypted. The verdict must be what the
 * peer made; a table is printed.
 */
import { createPrivateKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMessage, prepareDecryptionKey, prepareTrustStore, type SmimeDecryptionKey, type TrustStore } from '../../src/smime/index.js';
import { tempDir } from '../helpers/config.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';

const der = async (pemFile: string) => Buffer.from((await readFile(pemFile, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

describe('messages made by openssl smime / openssl cms, opened by Postern', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let ca: Issued, alice: Issued, aliceEc: Issued, bob: Issued;
  let keys: SmimeDecryptionKey[];
  let trust: TrustStore;
  const rows: string[] = [];

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-smime-msgs-'));
    ca = await opensslCa(dir, 'Peers');
    [alice, aliceEc, bob] = await Promise.all([opensslMailbox(dir, ca, 'alice@example.com'), opensslMailbox(dir, ca, 'alice-ec@example.com', 'ec'), opensslMailbox(dir, ca, 'bob@partner.example')]);
    const key = async (i: Issued) => prepareDecryptionKey(await der(i.cert), createPrivateKey(await readFile(i.key, 'utf8')).export({ format: 'der', type: 'pkcs8' }));
    keys = [await key(alice), await key(aliceEc)];
    trust = prepareTrustStore([await der(ca.cert)], []);
    await writeFile(join(dir, 'inner.txt'), 'Content-Type: text/plain; charset=us-ascii\r\n\r\nfrom a shell filter\r\n');
  }, 60_000);
  afterAll(async () => {
    console.log(`\nmessages from openssl, opened by Postern\n${rows.join('\n')}`);
    await cleanup();
  });

  /** Run the openssl steps (each reads the previous file), put From:/To: on top, open it. */
  async function made(name: string, steps: string[][]) {
    let input = join(dir, 'inner.txt');
    for (const [i, step] of steps.entries()) {
      const out = join(dir, `${name}.${i}.eml`);
      // -out right after the subcommand: openssl smime takes certificate files last.
      const args = step.map((a) => (a === 'IN' ? input : a));
      await run('openssl', [args[0]!, '-out', out, ...args.slice(1)]);
      input = out;
    }
    const body = (await readFile(input, 'latin1')).replace(/\r?\n/g, '\r\n');
    const message = Buffer.from(`From: bob@partner.example\r\nTo: alice@example.com\r\nSubject: ${name}\r\nDate: ${new Date().toUTCString()}\r\n${body}`, 'latin1');
    const r = await openMessage(message, { trust, keysFor: async () => keys });
    const sig = r.signatures.map((s) => `${s.scope}:${s.status}`).join(',') || '-';
    rows.push(`${name.padEnd(28)} encryption=${(r.encryption?.status ?? '-').padEnd(10)} ${r.encryption?.cipher ?? ''} signatures=${sig}`);
    return r;
  }

  it('detached and opaque signatures (openssl smime, openssl cms with SHA-384)', async () => {
    for (const [name, step] of [
      ['smime -sign', ['smime', '-sign', '-in', 'IN', '-signer', '', '-inkey', '']],
      ['smime -sign -nodetach', ['smime', '-sign', '-nodetach', '-in', 'IN', '-signer', '', '-inkey', '']],
      ['cms -sign -md sha384', ['cms', '-sign', '-md', 'sha384', '-in', 'IN', '-signer', '', '-inkey', '']],
    ] as [string, string[]][]) {
      const r = await made(name, [step.map((a, i) => (a === '' ? (step[i - 1] === '-signer' ? bob.cert : bob.key) : a))]);
      expect(r.signatures.map((s) => [s.scope, s.status]), name).toEqual([['whole', 'valid']]);
      expect(r.message.toString('latin1'), name).toContain('from a shell filter');
    }
  });

  it('encryption: RSA PKCS#1 and OAEP, ECDH, AES-CBC and AES-GCM', async () => {
    const cases: [string, string[], string, string][] = [
      ['smime -encrypt -aes256', ['smime', '-encrypt', '-aes256', '-in', 'IN', alice.cert], 'AES-256-CBC', 'RSA PKCS#1'],
      ['cms -encrypt oaep', ['cms', '-encrypt', '-aes128', '-recip', alice.cert, '-keyopt', 'rsa_padding_mode:oaep', '-in', 'IN'], 'AES-128-CBC', 'OAEP'],
      ['cms -encrypt -aes-256-gcm', ['cms', '-encrypt', '-aes-256-gcm', '-in', 'IN', alice.cert], 'AES-256-GCM', 'RSA PKCS#1'],
      ['cms -encrypt ecdh', ['cms', '-encrypt', '-aes256', '-in', 'IN', aliceEc.cert], 'AES-256-CBC', 'ECDH'],
    ];
    for (const [name, step, cipher, transport] of cases) {
      const r = await made(name, [step]);
      expect(r.encryption, name).toMatchObject({ status: 'decrypted', cipher });
      expect(r.encryption!.keyTransport, name).toContain(transport);
      expect(r.encryption!.authenticated, name).toBe(cipher.endsWith('GCM'));
      expect(r.message.toString('latin1'), name).toContain('from a shell filter');
    }
  });

  it('signed, then encrypted (the way a content filter chains openssl)', async () => {
    const r = await made('sign | encrypt', [
      ['smime', '-sign', '-in', 'IN', '-signer', bob.cert, '-inkey', bob.key],
      ['smime', '-encrypt', '-aes256', '-in', 'IN', alice.cert],
    ]);
    expect(r.encryption?.status).toBe('decrypted');
    expect(r.signatures.map((s) => [s.scope, s.status, s.address])).toEqual([['whole', 'valid', 'bob@partner.example']]);
  });
});
