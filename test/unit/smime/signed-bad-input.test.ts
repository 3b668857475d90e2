/**
 * Hostile and broken input: whatever the bytes, verify either returns results or throws
 * SmimeError — truncation and garbage are 'malformed', never a TypeError or RangeError from inside;
 * a signature whose signer certificate is unknown or carries another key is a result, not a crash.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareTrustStore, type TrustStore } from '../../../src/smime/chain.js';
import { SmimeError } from '../../../src/smime/errors.js';
import { signDetached, signOpaque } from '../../../src/smime/sign.js';
import { prepareSigner } from '../../../src/smime/signer.js';
import { verifyDetached, verifyOpaque } from '../../../src/smime/verify.js';
import { tempDir } from '../../helpers/config.js';
import { openssl, runTool } from '../../helpers/smime-sig-peers.js';
import { makeTestPki, mimeEntity, pemToDer, type TestPki } from '../../helpers/smime-sig-pki.js';

let dir: string;
let cleanup: () => Promise<void>;
let pki: TestPki;
let trust: TrustStore;
let detached: Buffer;
let opaque: Buffer;
const content = mimeEntity(600);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('postern-signed-bad-'));
  pki = await makeTestPki(dir);
  trust = prepareTrustStore([pki.root.certDer]);
  const signer = prepareSigner(pki.users.ec256.certDer, pki.users.ec256.pkcs8, [pki.inter.certDer]);
  detached = await signDetached(signer, content);
  opaque = await signOpaque(signer, content);
  await writeFile(join(dir, 'content.txt'), content);
}, 120_000);
afterAll(() => cleanup?.());

const opts = () => ({ trust, fromAddresses: ['erin@example.org'] });

/** Run verify and return 'ok' or the SmimeError code; anything else fails the test. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (!(err instanceof SmimeError)) throw new Error(`not a SmimeError: ${String(err)}`, { cause: err });
    return err.code;
  }
}

describe('malformed input', () => {
  it('every truncation of a detached and an opaque signature is SmimeError(malformed)', async () => {
    for (const der of [detached, opaque]) {
      for (let n = 0; n < der.length; n += n < 64 ? 1 : 7) {
        const cut = der.subarray(0, n);
        expect(await outcome(verifyDetached(cut, content, opts()))).toBe('malformed');
        expect(await outcome(verifyOpaque(cut, opts()))).toBe('malformed');
      }
    }
  });

  it('garbage, text, PEM instead of DER, and BER bombs are SmimeError(malformed)', async () => {
    const inputs = [
      randomBytes(1),
      randomBytes(300),
      Buffer.from('-----BEGIN PKCS7-----\nMIAGCSqGSIb3DQEHAqCAMIACAQE=\n-----END PKCS7-----\n'),
      Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from([0x30, 0x80, ...Array(2000).fill([0x30, 0x80]).flat()]),
      Buffer.concat([detached, Buffer.from('trailing junk')]),
      Buffer.from([0x30, 0x03, 0x06, 0x01, 0x2a]),
    ];
    for (const b of inputs) expect(await outcome(verifyDetached(b, content, opts()))).toBe('malformed');
    expect(await outcome(verifyDetached('not a buffer' as unknown as Buffer, content, opts()))).toBe('malformed');
  });

  it('random byte changes anywhere give a result or a SmimeError, never another exception', async () => {
    for (let i = 0; i < 1500; i++) {
      const der = Buffer.from(i % 2 ? detached : opaque);
      for (let k = 0; k < 1 + (i % 3); k++) der[Math.floor(Math.random() * der.length)] = Math.floor(Math.random() * 256);
      const r = await outcome(i % 2 ? verifyDetached(der, content, opts()) : verifyOpaque(der, opts()));
      expect(['ok', 'malformed', 'unsupported', 'no-content']).toContain(r);
    }
  });

  it('wrong kinds of CMS: detached to verifyOpaque is no-content; EnvelopedData is unsupported', async () => {
    expect(await outcome(verifyOpaque(detached, opts()))).toBe('no-content');
    expect(await outcome(verifyDetached(detached, undefined as unknown as Buffer, opts()))).toBe('no-content');
    const env = await openssl(['cms', '-encrypt', '-binary', '-in', 'content.txt', '-outform', 'DER', '-aes-128-cbc', 'rsa.pem'], undefined, dir);
    expect(await outcome(verifyOpaque(env.stdout, opts()))).toBe('unsupported');
    expect(await outcome(verifyDetached(detached, content, { fromAddresses: [] } as never))).toBe('malformed');
  });
});

describe('well-formed but failing', () => {
  it('an unknown signer certificate (signed with -nocerts) is a result with a reason', async () => {
    const out = join(dir, 'nocerts.der');
    await openssl(['cms', '-sign', '-binary', '-nocerts', '-in', 'content.txt', '-signer', 'rsa.pem', '-inkey', 'rsa.key', '-outform', 'DER', '-out', out], undefined, dir);
    const { signers } = await verifyDetached(await readFile(out), content, { trust, fromAddresses: ['alice@example.org'] });
    expect(signers).toHaveLength(1);
    expect(signers[0]).toMatchObject({ status: 'invalid', problem: 'no-certificate', digest: 'SHA-256', emails: [], fingerprint: '' });
    expect(signers[0]!.reason).toMatch(/serial 64 from CN=Postern Test Mail CA,O=Postern Test/);
  });

  it('a certificate with the signer\'s issuer and serial but another key: invalid, bad signature', async () => {
    const out = join(dir, 'nocerts2.der');
    await openssl(['cms', '-sign', '-binary', '-nocerts', '-in', 'content.txt', '-signer', 'rsa.pem', '-inkey', 'rsa.key', '-outform', 'DER', '-out', out], undefined, dir);
    // An impostor: same issuer and serial (100) as alice's, different key.
    for (const args of [
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'impostor.key'],
      ['req', '-new', '-key', 'impostor.key', '-subj', '/O=Postern Test/CN=rsa', '-out', 'impostor.csr'],
      ['x509', '-req', '-in', 'impostor.csr', '-CA', 'inter.pem', '-CAkey', 'inter.key', '-set_serial', '100', '-days', '30', '-extfile', 'rsa.ext', '-out', 'impostor.pem'],
    ]) {
      expect((await runTool('openssl', args, { cwd: dir })).code).toBe(0);
    }
    const impostor = pemToDer(await readFile(join(dir, 'impostor.pem'), 'utf8'));
    const store = prepareTrustStore([pki.root.certDer], [pki.inter.certDer, impostor]);
    const [s] = (await verifyDetached(await readFile(out), content, { trust: store, fromAddresses: ['alice@example.org'] })).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'bad-signature' });
    // The real certificate makes the same bytes valid.
    const real = prepareTrustStore([pki.root.certDer], [pki.inter.certDer, pki.users.rsa.certDer]);
    expect((await verifyDetached(await readFile(out), content, { trust: real, fromAddresses: ['alice@example.org'] })).signers[0]!.status).toBe('valid');
  });

  it('a trust store with a broken certificate keeps the good ones and says what it skipped', async () => {
    const store = prepareTrustStore([Buffer.from('junk'), pki.root.certDer]);
    expect(store.problems).toHaveLength(1);
    expect(store.anchors).toHaveLength(1);
    expect((await verifyDetached(detached, content, { trust: store, fromAddresses: ['erin@example.org'] })).signers[0]!.status).toBe('valid');
  });

  it('a revocation hook that throws makes the signature invalid (fail closed), not the call', async () => {
    const [s] = (
      await verifyDetached(detached, content, {
        ...opts(),
        revocation: async () => {
          throw new Error('OCSP responder unreachable');
        },
      })
    ).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'check-failed' });
    expect(s!.reason).toMatch(/OCSP responder unreachable/);
  });
});
