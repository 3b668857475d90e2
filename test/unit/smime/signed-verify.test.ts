/**
 * openssl cms and gpgsm sign; Postern verifies. Each signature is judged in every situation that
 * changes the verdict: the right anchor (valid), another anchor (untrusted), another From: address
 * (mismatch), one changed content byte (invalid), SHA-1 (invalid unless allowed), a certificate
 * that may not sign mail, an expired one, several signers, and the Date: header rule.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueSmimeCertificate } from '../../../src/pki/index.js';
import { prepareTrustStore, type TrustStore } from '../../../src/smime/chain.js';
import { verifyDetached, verifyOpaque, type VerifyOptions } from '../../../src/smime/verify.js';
import { tempDir } from '../../helpers/config.js';
import { openssl, startGpgsm, type Gpgsm } from '../../helpers/smime-sig-peers.js';
import { derToPem, makeTestPki, mimeEntity, type TestPki } from '../../helpers/smime-sig-pki.js';

let dir: string;
let cleanup: () => Promise<void>;
let pki: TestPki;
let trust: TrustStore;
let elsewhere: TrustStore;
const content = mimeEntity(1500);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('postern-signed-v-'));
  pki = await makeTestPki(dir);
  await writeFile(join(dir, 'content.txt'), content);
  trust = prepareTrustStore([pki.root.certDer]);
  elsewhere = prepareTrustStore([pki.otherRoot.certDer]);
}, 120_000);
afterAll(() => cleanup?.());

/** Sign content.txt with openssl cms; returns the DER. */
async function osslSign(user: keyof TestPki['users'], extra: string[], name: string): Promise<Buffer> {
  const out = join(dir, `${name}.der`);
  const r = await openssl(['cms', '-sign', '-binary', '-in', 'content.txt', '-signer', `${user}.pem`, '-inkey', `${user}.key`, '-certfile', 'inter.pem', '-outform', 'DER', '-out', out, ...extra], undefined, dir);
  expect(r.stderr).toBe('');
  return readFile(out);
}

const flip = (b: Buffer, at: number) => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};

async function check(der: Buffer, opaque: boolean, opts: Partial<VerifyOptions> & { from: string }, alter = false) {
  const base = { trust, fromAddresses: [opts.from], ...opts };
  if (opaque) {
    // Change one byte of the content inside the structure.
    const at = der.indexOf(content.subarray(200, 240)) + 5;
    const r = await verifyOpaque(alter ? flip(der, at) : der, base);
    if (!alter) expect(r.content.equals(content)).toBe(true);
    return r.signers;
  }
  return (await verifyDetached(der, alter ? flip(content, 700) : content, base)).signers;
}

const variants: [string, keyof TestPki['users'], string[]][] = [
  ['RSA SHA-256', 'rsa', ['-md', 'sha256']],
  ['RSA SHA-384', 'rsa', ['-md', 'sha384']],
  ['RSA SHA-512', 'rsa', ['-md', 'sha512']],
  ['RSA-PSS padding SHA-256', 'rsa', ['-md', 'sha256', '-keyopt', 'rsa_padding_mode:pss']],
  ['RSA-PSS padding SHA-512 salt 20', 'rsa', ['-md', 'sha512', '-keyopt', 'rsa_padding_mode:pss', '-keyopt', 'rsa_pss_saltlen:20']],
  ['RSASSA-PSS key', 'pss', ['-md', 'sha256']],
  ['EC P-256 SHA-256', 'ec256', ['-md', 'sha256']],
  ['EC P-256 SHA-512', 'ec256', ['-md', 'sha512']],
  ['EC P-384 SHA-384', 'ec384', ['-md', 'sha384']],
  ['RSA SHA-256 without attributes', 'rsa', ['-md', 'sha256', '-noattr']],
  ['EC P-256 without attributes', 'ec256', ['-md', 'sha256', '-noattr']],
];

describe.each([
  ['detached', false],
  ['opaque', true],
] as const)('openssl cms -sign (%s) → Postern', (_kind, opaque) => {
  it.each(variants)('%s: valid; untrusted under another root; mismatch for another From:; invalid when changed', async (name, user, extra) => {
    const der = await osslSign(user, [...extra, ...(opaque ? ['-nodetach'] : [])], `${name}-${opaque}`.replace(/\W+/g, '_'));
    const email = pki.users[user].email;
    const [good] = await check(der, opaque, { from: email.toUpperCase() });
    expect(good).toMatchObject({ status: 'valid', address: email, emails: [email], subject: `CN=${user},O=Postern Test` });
    expect(good!.reason).toBeUndefined();
    expect(good!.chainDer.map((d) => d.equals(pki.inter.certDer))).toEqual([true]);
    if (!extra.includes('-noattr')) {
      expect(Math.abs(good!.signingTime!.getTime() - Date.now())).toBeLessThan(120_000);
      expect(good!.capabilities?.ciphers).toContain('aes-256-cbc');
    }
    expect((await check(der, opaque, { from: email, trust: elsewhere }))[0]).toMatchObject({ status: 'untrusted', problem: 'no-chain' });
    expect((await check(der, opaque, { from: 'mallory@example.org' }))[0]).toMatchObject({ status: 'mismatch', problem: 'from-mismatch' });
    const changed = (await check(der, opaque, { from: email }, true))[0]!;
    expect(changed.status).toBe('invalid');
    expect(changed.problem).toMatch(extra.includes('-noattr') ? /bad-signature/ : /digest-mismatch/);
    expect(changed.reason).toBeTruthy();
  });

  it('SHA-1 is invalid unless allowSha1', async () => {
    const der = await osslSign('rsa', ['-md', 'sha1', ...(opaque ? ['-nodetach'] : [])], `sha1-${opaque}`);
    const [weak] = await check(der, opaque, { from: 'alice@example.org' });
    expect(weak).toMatchObject({ status: 'invalid', problem: 'weak-algorithm', digest: 'SHA-1' });
    expect((await check(der, opaque, { from: 'alice@example.org', allowSha1: true }))[0]).toMatchObject({ status: 'valid', digest: 'SHA-1' });
  });
});

describe('certificates and signers', () => {
  it('the intermediate from the trust store completes a chain the message lacks', async () => {
    const out = join(dir, 'nochain.der');
    await openssl(['cms', '-sign', '-binary', '-in', 'content.txt', '-signer', 'rsa.pem', '-inkey', 'rsa.key', '-outform', 'DER', '-out', out], undefined, dir);
    const der = await readFile(out);
    expect((await verifyDetached(der, content, { trust, fromAddresses: ['alice@example.org'] })).signers[0]).toMatchObject({ status: 'untrusted' });
    const withInter = prepareTrustStore([pki.root.certDer], [pki.inter.certDer]);
    const [s] = (await verifyDetached(der, content, { trust: withInter, fromAddresses: ['alice@example.org'] })).signers;
    expect(s).toMatchObject({ status: 'valid', chainDer: [] });
  });

  it('a signer certificate without emailProtection is invalid, with a reason', async () => {
    const der = await osslSign('serverEku', ['-md', 'sha256'], 'server-eku');
    const [s] = (await verifyDetached(der, content, { trust, fromAddresses: ['server@example.org'] })).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'key-usage' });
    expect(s!.reason).toMatch(/emailProtection/);
  });

  it('a signer certificate whose key usage lacks digitalSignature and nonRepudiation is invalid', async () => {
    const der = await osslSign('noSignKu', ['-md', 'sha256'], 'no-sign-ku');
    const [s] = (await verifyDetached(der, content, { trust, fromAddresses: ['nosign@example.org'] })).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'key-usage' });
    const nonRep = await osslSign('nonRep', ['-md', 'sha256'], 'non-rep');
    expect((await verifyDetached(nonRep, content, { trust, fromAddresses: ['nonrep@example.org'] })).signers[0]).toMatchObject({ status: 'valid' });
  });

  it('a certificate that had expired at the signing time is invalid', async () => {
    const past = new Date(Date.now() - 400 * 86_400_000);
    const ca = await createCa({ commonName: 'Old CA', now: past, validityDays: 3650 });
    const old = await issueSmimeCertificate({ ca, address: 'old@example.org', keyType: 'ec-p256', validityDays: 30, now: past });
    await writeFile(join(dir, 'old.pem'), derToPem(old.certDer));
    await writeFile(join(dir, 'old.key'), derToPem(old.keyPkcs8, 'PRIVATE KEY'));
    const out = join(dir, 'old.der');
    await openssl(['cms', '-sign', '-binary', '-in', 'content.txt', '-signer', 'old.pem', '-inkey', 'old.key', '-outform', 'DER', '-out', out], undefined, dir);
    const oldTrust = prepareTrustStore([ca.certDer]);
    const [s] = (await verifyDetached(await readFile(out), content, { trust: oldTrust, fromAddresses: ['old@example.org'] })).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'not-valid-at-signing-time' });
    expect(s!.reason).toMatch(/expired/);
  });

  it('two signers: each gets its own result', async () => {
    const out = join(dir, 'two.der');
    const r = await openssl(['cms', '-sign', '-binary', '-in', 'content.txt', '-signer', 'rsa.pem', '-inkey', 'rsa.key', '-signer', 'ec256.pem', '-inkey', 'ec256.key', '-certfile', 'inter.pem', '-outform', 'DER', '-out', out], undefined, dir);
    expect(r.code).toBe(0);
    const { signers } = await verifyDetached(await readFile(out), content, { trust, fromAddresses: ['alice@example.org'] });
    expect(signers.map((s) => [s.address, s.status]).sort()).toEqual([
      ['alice@example.org', 'valid'],
      ['erin@example.org', 'mismatch'],
    ]);
  });

  it('the Date: header: more than an hour from the signing time is a mismatch (as Thunderbird)', async () => {
    const der = await osslSign('rsa', ['-md', 'sha256'], 'dated');
    const opts = { trust, fromAddresses: ['alice@example.org'] };
    const at = (await verifyDetached(der, content, opts)).signers[0]!.signingTime!;
    const soon = new Date(at.getTime() + 50 * 60_000);
    const late = new Date(at.getTime() + 6 * 3_600_000);
    expect((await verifyDetached(der, content, { ...opts, messageDate: soon })).signers[0]!.status).toBe('valid');
    const [m] = (await verifyDetached(der, content, { ...opts, messageDate: late })).signers;
    expect(m).toMatchObject({ status: 'mismatch', problem: 'date-mismatch' });
    expect(m!.reason).toMatch(/more than an hour/);
    expect((await verifyDetached(der, content, { ...opts, messageDate: new Date('garbage') })).signers[0]!.problem).toBe('date-mismatch');
    // Without a signing time there is nothing to compare.
    const noattr = await osslSign('rsa', ['-md', 'sha256', '-noattr'], 'dated-noattr');
    expect((await verifyDetached(noattr, content, { ...opts, messageDate: late })).signers[0]!.status).toBe('valid');
  });

  it('the revocation seam sees the trusted path and can make a signature invalid', async () => {
    const der = await osslSign('rsa', ['-md', 'sha256'], 'revoked');
    const seen: string[][] = [];
    const [s] = (
      await verifyDetached(der, content, {
        trust,
        fromAddresses: ['alice@example.org'],
        revocation: async (path) => {
          seen.push(path.map((c) => c.subject));
          return { revoked: true, reason: 'the signer certificate was revoked on 2026-01-01 (keyCompromise)' };
        },
      })
    ).signers;
    expect(seen).toEqual([['CN=rsa,O=Postern Test', 'CN=Postern Test Mail CA,O=Postern Test', 'CN=Postern Test Root,O=Postern Test']]);
    expect(s).toMatchObject({ status: 'invalid', problem: 'revoked', reason: 'the signer certificate was revoked on 2026-01-01 (keyCompromise)' });
  });
});

describe('gpgsm --sign → Postern', () => {
  let gpgsm: Gpgsm;
  beforeAll(async () => {
    gpgsm = await startGpgsm(dir, pki.root.certPem, [pki.inter.certPem]);
    const r = await gpgsm.importKey(join(dir, 'rsa.pem'), join(dir, 'rsa.key'));
    expect(r.stderr).toContain('secret keys imported: 1');
  }, 60_000);
  afterAll(() => gpgsm?.stop());

  it('a detached and an opaque gpgsm signature verify as valid, and fail when changed', async () => {
    const sign = async (args: string[], out: string) => {
      const r = await gpgsm.run(['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '-u', 'alice@example.org', ...args, '-o', join(dir, out), join(dir, 'content.txt')], 'x\n');
      expect(r.code).toBe(0);
      return readFile(join(dir, out));
    };
    const detached = await sign(['--detach-sign'], 'gpgsm.p7s');
    const [d] = (await verifyDetached(detached, content, { trust, fromAddresses: ['alice@example.org'] })).signers;
    expect(d).toMatchObject({ status: 'valid', address: 'alice@example.org', digest: 'SHA-256' });
    expect((await verifyDetached(detached, flip(content, 10), { trust, fromAddresses: ['alice@example.org'] })).signers[0]!.status).toBe('invalid');
    const opaque = await sign(['--sign'], 'gpgsm.p7m');
    const o = await verifyOpaque(opaque, { trust, fromAddresses: ['alice@example.org'] });
    expect(o.content.equals(content)).toBe(true);
    expect(o.signers[0]).toMatchObject({ status: 'valid' });
  });
});
