/**
 * Signatures made by others, with verdicts decided by others: Thunderbird's NSS-made S/MIME test
 * mail (verdicts from Thunderbird's own test, with and without SHA-1 allowed), the RFC 4134 examples
 * (old SHA-1 and DSA), and the RFC 9216 / draft-ireland examples (RSA, RSA-PSS, Ed25519, no certs).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareTrustStore } from '../../../src/smime/chain.js';
import { SmimeError } from '../../../src/smime/errors.js';
import { verifyDetached, verifyOpaque, type SignerResult, type VerifyOptions } from '../../../src/smime/verify.js';
import { openssl } from '../../helpers/smime-sig-peers.js';
import { splitSignedMail } from '../../helpers/smime-sig-mime.js';
import { pemToDer } from '../../helpers/smime-sig-pki.js';

const CORPORA = join(import.meta.dirname, '../../../../shared/corpora');
const TB = join(CORPORA, 'thunderbird-comm-central');
const TBS = join(TB, 'mailnews-test-data-smime');
const R4134 = join(CORPORA, 'rfc4134-examples-of-smime');
const R9216 = join(CORPORA, 'rfc9216-smime-example-keys');
const pemFile = (p: string) => pemToDer(readFileSync(p, 'utf8'));

interface Verdict {
  filename: string;
  enc: boolean;
  sig: boolean;
  sig_good: boolean;
}
const verdicts = (name: string) => (JSON.parse(readFileSync(join(TB, name), 'utf8')) as Verdict[]).filter((v) => !v.enc && v.sig && !v.filename.includes('dave') && !v.filename.includes('/'));

async function verifyMail(file: string, opts: Omit<VerifyOptions, 'fromAddresses'>): Promise<SignerResult[]> {
  const m = splitSignedMail(readFileSync(file));
  const o = { ...opts, fromAddresses: m.from, ...(m.date ? { messageDate: m.date } : {}) };
  if (m.opaque) return (await verifyOpaque(m.opaque, o)).signers;
  return (await verifyDetached(m.signature!, m.content!, o)).signers;
}

describe('Thunderbird S/MIME test mail (NSS), against TestCA.pem', () => {
  const trust = prepareTrustStore([pemFile(join(TBS, 'TestCA.pem'))]);

  it.each(verdicts('expected-verdicts.test_smime_decrypt.json').map((v) => [v.filename, v.sig_good] as const))('%s: good = %s (Thunderbird\'s verdict)', async (file, good) => {
    const [s, ...more] = await verifyMail(join(TBS, file), { trust });
    expect(more).toEqual([]);
    if (good) {
      expect(s).toMatchObject({ status: 'valid', address: 'Alice@example.com', subject: expect.stringContaining('CN=Alice') });
    } else {
      expect(s!.status).not.toBe('valid');
      expect(s!.reason).toBeTruthy();
    }
    if (/\.(bad|mismatch-econtent)\.eml$/.test(file)) expect(s).toMatchObject({ status: 'invalid', problem: 'digest-mismatch' });
    if (file.includes('SHA1') && !file.includes('.bad') && !file.includes('mismatch')) expect(s).toMatchObject({ status: 'invalid', problem: 'weak-algorithm' });
  });

  it.each(verdicts('expected-verdicts.test_smime_decrypt_allow_sha1.json').map((v) => [v.filename, v.sig_good] as const))('%s with SHA-1 allowed: good = %s', async (file, good) => {
    const [s] = await verifyMail(join(TBS, file), { trust, allowSha1: true });
    expect(s!.status === 'valid').toBe(good);
  });

  it('alice.future: the Date: header is 6 hours after the signing time, a mismatch as in Thunderbird; without the Date: rule it is valid', async () => {
    const file = join(TBS, 'alice.future.dsig.SHA256.multipart.eml');
    const [s] = await verifyMail(file, { trust });
    expect(s).toMatchObject({ status: 'mismatch', problem: 'date-mismatch' });
    expect(s!.reason).toMatch(/Date: header/);
    const m = splitSignedMail(readFileSync(file));
    expect((await verifyDetached(m.signature!, m.content!, { trust, fromAddresses: m.from })).signers[0]!.status).toBe('valid');
  });

  it('the opaque signatures carry the text and NSS\'s encryption key preference', async () => {
    const m = splitSignedMail(readFileSync(join(TBS, 'alice.sig.SHA256.opaque.eml')));
    const r = await verifyOpaque(m.opaque!, { trust, fromAddresses: m.from });
    expect(r.content.toString()).toContain('This is a test message from Alice to Bob.');
    expect(r.signers[0]!.encryptionKeyPreference).toEqual({ issuer: 'CN=NSS Test CA (RSA),O=BOGUS NSS,L=Mountain View,ST=California,C=US', serial: '1e' });
  });

  it.each(['alice.mime.dsig.SHA256', 'alice.textplain.sig.SHA512'])('%s (made in 2019 under an older NSS test CA): invalid now (expired), untrusted in 2020, as openssl says', async (name) => {
    const der = readFileSync(join(TBS, name));
    const detached = name.includes('dsig');
    const verify = (now?: Date) => {
      const o = { trust, fromAddresses: ['alice@example.com'], ...(now ? { now } : {}) };
      return detached ? verifyDetached(der, readFileSync(join(TBS, 'alice.mime')), o) : verifyOpaque(der, o);
    };
    expect((await verify()).signers[0]).toMatchObject({ status: 'invalid', problem: 'not-valid-at-signing-time' });
    expect((await verify(new Date('2020-06-01T00:00:00Z'))).signers[0]).toMatchObject({ status: 'untrusted', problem: 'no-chain' });
    const args = ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(TBS, name), '-out', '/dev/null', ...(detached ? ['-content', join(TBS, 'alice.mime')] : [])];
    expect((await openssl([...args, '-CAfile', join(TBS, 'TestCA.pem')])).code).not.toBe(0);
    expect((await openssl([...args, '-noverify'])).code).toBe(0);
  });
});

describe('RFC 4134 examples (1999–2002: SHA-1, RSA and DSA)', () => {
  const trust = prepareTrustStore([pemFile(join(R4134, 'derived-pem/CarlRSASelf.pem')), pemFile(join(R4134, 'derived-pem/CarlDSSSelf.pem'))]);
  const opts = { trust, fromAddresses: ['AliceRSA@example.com'], allowSha1: true };

  it.each(['4.2', '4.5'])('%s (RSA): valid with SHA-1 allowed, invalid without', async (n) => {
    const r = await verifyOpaque(readFileSync(join(R4134, `${n}.bin`)), opts);
    expect(r.content.equals(readFileSync(join(R4134, 'ExContent.bin')))).toBe(true);
    expect(r.signers[0]).toMatchObject({ status: 'valid', digest: 'SHA-1', subject: 'CN=AliceRSA', address: 'AliceRSA@example.com' });
    expect((await verifyOpaque(readFileSync(join(R4134, `${n}.bin`)), { ...opts, allowSha1: false })).signers[0]).toMatchObject({ status: 'invalid', problem: 'weak-algorithm' });
  });

  it.each(['4.1', '4.4', '4.6', '4.7', '4.10'])('%s (DSA): invalid, unsupported algorithm, not an exception', async (n) => {
    const r = await verifyOpaque(readFileSync(join(R4134, `${n}.bin`)), opts);
    expect(r.signers.length).toBeGreaterThan(0);
    for (const s of r.signers) expect(s).toMatchObject({ status: 'invalid', problem: 'unsupported-algorithm' });
  });

  it('4.3 (DSA, detached over ExContent.bin) and the 4.8/4.9 mails: invalid, unsupported', async () => {
    const [s] = (await verifyDetached(readFileSync(join(R4134, '4.3.bin')), readFileSync(join(R4134, 'ExContent.bin')), opts)).signers;
    expect(s).toMatchObject({ status: 'invalid', problem: 'unsupported-algorithm', subject: 'CN=AliceDSS' });
    for (const f of ['4.8.eml', '4.9.eml']) {
      const signers = await verifyMail(join(R4134, f), { trust, allowSha1: true });
      expect(signers.every((x) => x.status === 'invalid')).toBe(true);
    }
  });

  it('4.11 is a certs-only bundle: a SmimeError, not a signature', async () => {
    await expect(verifyOpaque(readFileSync(join(R4134, '4.11.bin')), opts)).rejects.toBeInstanceOf(SmimeError);
  });
});

describe('RFC 9216 / draft-ireland-examples-cms', () => {
  const bin = (n: string) => readFileSync(join(R9216, 'keys-and-cms-from-davidi67-examples-cms/binary-files', `${n}.p7m`));
  const cert = (n: string) => pemFile(join(R9216, 'certs-from-wbond-certvalidator', n));
  const trust = prepareTrustStore([cert('Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem'), cert('Sample_LAMPS_Ed25519_Certification_Authority.selfsigned.pem')]);
  const sample = 'This is some sample content.';

  it.each(['signedByAliceRSA', 'signedByAliceRSAPSS'])('%s verifies to the sample content, valid for alice@smime.example', async (n) => {
    const r = await verifyOpaque(bin(n), { trust, fromAddresses: ['alice@smime.example'] });
    expect(r.content.toString()).toBe(sample);
    expect(r.signers[0]).toMatchObject({ status: 'valid', address: 'alice@smime.example', subject: 'CN=Alice Lovelace,OU=LAMPS WG,O=IETF' });
  });

  it('Ed25519 (RFC 8419), opaque and detached (SKI signer identifier): valid for carlos@smime.example', async () => {
    const r = await verifyOpaque(bin('signedByCarlosEd25519'), { trust, fromAddresses: ['carlos@smime.example'] });
    expect(r.content.toString()).toBe(sample);
    expect(r.signers[0]).toMatchObject({ status: 'valid', digest: 'SHA-512' });
    const d = await verifyDetached(bin('signedByCarlosDetached'), Buffer.from(sample), { trust, fromAddresses: ['carlos@smime.example'] });
    expect(d.signers[0]).toMatchObject({ status: 'valid' });
  });

  it('two signers and no certificates: unknown signers get a reason; with their certificates in the store both are valid', async () => {
    const none = await verifyOpaque(bin('signedByAliceAndCarlosNoCerts'), { trust, fromAddresses: ['alice@smime.example'] });
    expect(none.signers.map((s) => s.problem)).toEqual(['no-certificate', 'no-certificate']);
    expect(none.signers[0]!.reason).toMatch(/neither in the message nor in the trust store/);
    const withCerts = prepareTrustStore(
      [cert('Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem'), cert('Sample_LAMPS_Ed25519_Certification_Authority.selfsigned.pem')],
      [cert('alice@smime.example.sig.pem'), cert('carlos@smime.example.sig.pem')],
    );
    const both = await verifyOpaque(bin('signedByAliceAndCarlosNoCerts'), { trust: withCerts, fromAddresses: ['alice@smime.example', 'carlos@smime.example'] });
    expect(both.signers.map((s) => [s.address, s.status]).sort()).toEqual([
      ['alice@smime.example', 'valid'],
      ['carlos@smime.example', 'valid'],
    ]);
  });
});
