/**
 * checkForImport: each rule with a certificate that breaks it (made by openssl, or from the
 * corpora), and the exact message the admin sees.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkForImport, parseCertificate, parseImport, type CertInfo } from '../../../src/pki/index.js';

const run = promisify(execFile);
const CORPORA = resolve(import.meta.dirname, '../../../../shared/corpora');
const RFC9216_CERTS = join(CORPORA, 'rfc9216-smime-example-keys/certs-from-wbond-certvalidator');
const RFC4134 = join(CORPORA, 'rfc4134-examples-of-smime');
const TB_PEM = join(CORPORA, 'thunderbird-comm-central/derived-pem');
// An hour ahead: certificates made during the run (notBefore = when openssl ran) are valid by then.
const NOW = new Date(Date.now() + 3_600_000);

describe('checkForImport', () => {
  let dir: string;
  let rsaKey: string;
  let ecKey: string;

  /** A self-signed certificate with exactly the given extensions. */
  async function make(name: string, opts: { subj?: string; ext?: string[]; key?: string; days?: number }): Promise<CertInfo> {
    const cnf = join(dir, `${name}.cnf`);
    await writeFile(cnf, ['[req]', 'distinguished_name=dn', '[dn]', '[ext]', ...(opts.ext ?? ['subjectKeyIdentifier=hash'])].join('\n'));
    const out = join(dir, `${name}.pem`);
    await run('openssl', ['req', '-x509', '-new', '-key', opts.key ?? rsaKey, '-config', cnf, '-extensions', 'ext', '-days', String(opts.days ?? 30),
      '-subj', opts.subj ?? `/CN=${name}/emailAddress=${name}@example.com`, '-out', out]);
    return (await parseImport(await readFile(out))).certificates[0]!;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'postern-validate-'));
    rsaKey = join(dir, 'rsa.key');
    ecKey = join(dir, 'ec.key');
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsaKey]);
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ecKey]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts good end-entity certificates (RFC 9216 Alice, Thunderbird Alice)', async () => {
    const pem = await readFile(join(RFC9216_CERTS, 'alice@smime.example.enc.pem'));
    const alice = (await parseImport(pem)).certificates[0]!;
    expect(checkForImport(alice, { trust: false, now: NOW })).toEqual({ ok: true, kind: 'end-entity', problems: [], warnings: expect.any(Array) });
    const tb = (await parseImport(await readFile(join(TB_PEM, 'Alice.cert.pem')))).certificates[0]!;
    expect(checkForImport(tb, { trust: false, now: new Date('2027-01-01') })).toEqual({ ok: true, kind: 'end-entity', problems: [], warnings: [] });
  });

  it('refuses an end-entity certificate without an e-mail address', async () => {
    const c = await make('noemail', { subj: '/CN=No Mail/O=Example' });
    expect(checkForImport(c, { trust: false, now: NOW }).problems).toEqual(['no e-mail address in the certificate (subjectAltName rfc822Name or subject emailAddress)']);
  });

  it('accepts an address in subjectAltName alone', async () => {
    const c = await make('sanonly', { subj: '/CN=San Only', ext: ['subjectAltName=email:San@Example.org', 'keyUsage=digitalSignature,keyEncipherment', 'extendedKeyUsage=emailProtection'] });
    expect(c.emails).toEqual(['San@example.org']);
    expect(checkForImport(c, { trust: false, now: NOW })).toMatchObject({ ok: true, problems: [], warnings: [] });
  });

  it('refuses a key usage without digitalSignature or keyEncipherment', async () => {
    const c = await make('kudata', { ext: ['keyUsage=critical,dataEncipherment,cRLSign'] });
    expect(checkForImport(c, { trust: false, now: NOW }).problems).toEqual([
      'key usage (dataEncipherment, cRLSign) allows neither signing (digitalSignature) nor encryption (keyEncipherment)',
    ]);
    const signOnly = await make('kusign', { ext: ['keyUsage=critical,digitalSignature,nonRepudiation'] });
    const check = checkForImport(signOnly, { trust: false, now: NOW });
    expect(check.ok).toBe(true);
    expect(check.warnings).toEqual(['key usage has no keyEncipherment: usable for signatures only, mail cannot be encrypted to it']);
  });

  it('wants keyAgreement, not keyEncipherment, for EC keys', async () => {
    const ka = await make('ecka', { key: ecKey, ext: ['keyUsage=critical,keyAgreement'] });
    const check = checkForImport(ka, { trust: false, now: NOW });
    expect(check).toMatchObject({ ok: true, warnings: ['key usage has no digitalSignature: usable for encryption only, not for signing'] });
    const ke = await make('ecke', { key: ecKey, ext: ['keyUsage=critical,keyEncipherment'] });
    expect(checkForImport(ke, { trust: false, now: NOW }).problems).toEqual([
      'key usage (keyEncipherment) allows neither signing (digitalSignature) nor encryption (keyAgreement)',
    ]);
  });

  it('refuses an extended key usage without emailProtection, accepts anyExtendedKeyUsage', async () => {
    const c = await make('ekuserver', { ext: ['extendedKeyUsage=serverAuth'] });
    expect(checkForImport(c, { trust: false, now: NOW }).problems).toEqual(['extended key usage (serverAuth) does not include emailProtection (1.3.6.1.5.5.7.3.4)']);
    const any = await make('ekuany', { ext: ['extendedKeyUsage=serverAuth,anyExtendedKeyUsage'] });
    expect(checkForImport(any, { trust: false, now: NOW }).ok).toBe(true);
  });

  it('refuses RSA keys under 2048 bits', async () => {
    const k1024 = join(dir, 'rsa1024.key');
    await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', k1024]);
    const c = await make('rsa1024', { key: k1024 });
    expect(checkForImport(c, { trust: false, now: NOW }).problems).toEqual(['RSA key of 1024 bits is too weak: at least 2048 bits are required']);
  });

  it('refuses EC keys on other curves', async () => {
    const k = join(dir, 'k1.key');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1', '-out', k]);
    const c = await make('secp256k1', { key: k });
    expect(checkForImport(c, { trust: false, now: NOW }).problems).toEqual(['EC key on curve secp256k1 is not supported: only P-256, P-384 and P-521']);
  });

  it('refuses DSA (RFC 4134 AliceDSS), and collects every problem of a certificate', async () => {
    const dsa = parseCertificate(await readFile(join(RFC4134, 'AliceDSSSignByCarlNoInherit.cer')));
    expect(checkForImport(dsa, { trust: false, now: NOW }).problems).toEqual([
      'DSA keys are not accepted: S/MIME 4.0 (RFC 8551) no longer supports DSA; use RSA or ECDSA',
    ]);
    const rsa = parseCertificate(await readFile(join(RFC4134, 'AliceRSASignByCarl.cer')));
    const check = checkForImport(rsa, { trust: false, now: NOW });
    expect(check.problems).toEqual(['RSA key of 1024 bits is too weak: at least 2048 bits are required']);
    expect(check.warnings).toContain('signed with SHA-1: many clients reject such certificates');
  });

  it('accepts Ed25519 (RFC 8419) with a warning (RFC 9216 Carlos)', async () => {
    const pem = await readFile(join(RFC9216_CERTS, 'carlos@smime.example.sig.pem'));
    const check = checkForImport((await parseImport(pem)).certificates[0]!, { trust: false, now: NOW });
    expect(check.ok).toBe(true);
    expect(check.warnings).toEqual(['Ed25519 key: usable for signatures only (RFC 8419), and many mail clients cannot verify them']);
  });

  it('stores a CA without --trust only as a chain certificate, makes it an anchor with, and wants keyCertSign', async () => {
    const ca = await make('ca', { subj: '/CN=Example CA', ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'] });
    expect(checkForImport(ca, { trust: false, now: NOW })).toEqual({
      ok: true,
      kind: 'ca',
      problems: [],
      warnings: ['a CA certificate: stored to build chains, but not a trust anchor (import it with --trust to make it one)'],
    });
    expect(checkForImport(ca, { trust: true, now: NOW })).toEqual({ ok: true, kind: 'ca', problems: [], warnings: [] });
    const noSign = await make('canosign', { subj: '/CN=Odd CA', ext: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature'] });
    expect(checkForImport(noSign, { trust: true, now: NOW }).problems).toEqual(['CA certificate whose key usage lacks keyCertSign: it cannot sign certificates']);
    const carl = parseCertificate(await readFile(join(RFC4134, 'CarlRSASelf.cer')));
    expect(checkForImport(carl, { trust: true, now: NOW }).problems).toEqual(['RSA key of 1024 bits is too weak: at least 2048 bits are required']);
  });

  it('warns, but does not refuse, when expired or not yet valid', async () => {
    const c = await make('short', { days: 1 });
    const later = new Date(c.notAfter.getTime() + 86_400_000);
    const expired = checkForImport(c, { trust: false, now: later });
    expect(expired.ok).toBe(true);
    expect(expired.warnings).toEqual([`stored, but never used for outgoing mail: expired on ${c.notAfter.toISOString().replace('.000Z', 'Z')}`]);
    const early = checkForImport(c, { trust: false, now: new Date(c.notBefore.getTime() - 1000) });
    expect(early).toMatchObject({ ok: true, warnings: [`stored, but not used for outgoing mail before it becomes valid on ${c.notBefore.toISOString().replace('.000Z', 'Z')}`] });
    // The NSS corpus certificates really do expire (2031-01-26).
    const tb = (await parseImport(await readFile(join(TB_PEM, 'Bob.cert.pem')))).certificates[0]!;
    expect(checkForImport(tb, { trust: false, now: new Date('2032-01-01') }).warnings[0]).toMatch(/^stored, but never used for outgoing mail: expired on 2031-01-26T/);
  });
});
