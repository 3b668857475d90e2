/**
 * TOTP for admin log-ins: RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP, all three
 * hashes) vectors, RFC 4648 §10 base32 vectors, and oathtool (Debian `oathtool`, an independent
 * implementation) on fresh random secrets: the code ours makes is the one an authenticator app
 * shows.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { base32Decode, base32Encode, hotp, matchTotp, newTotpSecret, otpauthUri, totp, totpStep, TotpError, type TotpHash } from '../../../src/keystore/totp.js';

const exec = promisify(execFile);
const SEED: Record<TotpHash, Buffer> = {
  sha1: Buffer.from('12345678901234567890'),
  sha256: Buffer.from('12345678901234567890123456789012'),
  sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234'),
};

describe('HOTP and TOTP', () => {
  it('gives the RFC 4226 Appendix D codes', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expect(expected.map((_, count) => hotp(SEED.sha1, count))).toEqual(expected);
  });

  it('gives the RFC 6238 Appendix B codes (8 digits; SHA-1, SHA-256, SHA-512)', () => {
    const table: [number, string, string, string][] = [
      [59, '94287082', '46119246', '90693936'],
      [1111111109, '07081804', '68084774', '25091201'],
      [1111111111, '14050471', '67062674', '99943326'],
      [1234567890, '89005924', '91819424', '93441116'],
      [2000000000, '69279037', '90698825', '38618901'],
      [20000000000, '65353130', '77737706', '47863826'],
    ];
    for (const [seconds, sha1, sha256, sha512] of table) {
      const at = new Date(seconds * 1000);
      expect([
        totp(SEED.sha1, at, { hash: 'sha1', digits: 8, step: 30 }),
        totp(SEED.sha256, at, { hash: 'sha256', digits: 8, step: 30 }),
        totp(SEED.sha512, at, { hash: 'sha512', digits: 8, step: 30 }),
      ]).toEqual([sha1, sha256, sha512]);
    }
    // The RFC's T column: 0x23523EC for 1111111109.
    expect(totpStep(new Date(1111111109_000))).toBe(0x23523ec);
  });

  it('gives the codes oathtool gives for random secrets and times (6 digits, SHA-1, 30 s)', async () => {
    for (let i = 0; i < 5; i++) {
      const secret = newTotpSecret();
      const seconds = 1_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
      const { stdout } = await exec('oathtool', ['--totp', '--base32', `--now=@${seconds}`, base32Encode(secret)]);
      expect(totp(secret, new Date(seconds * 1000))).toBe(stdout.trim());
      const counter = Math.floor(Math.random() * 2 ** 40);
      const h = await exec('oathtool', ['--hotp', `--counter=${counter}`, secret.toString('hex')]);
      expect(hotp(secret, counter)).toBe(h.stdout.trim());
    }
  });

  it('accepts a code of the step before, now and after, each only after the step last used', () => {
    const secret = randomBytes(20);
    const now = new Date(1_700_000_000_000);
    const step = totpStep(now);
    const code = (s: number) => hotp(secret, s);
    expect(matchTotp(secret, code(step), now)).toBe(step);
    expect(matchTotp(secret, code(step - 1), now)).toBe(step - 1);
    expect(matchTotp(secret, code(step + 1), now)).toBe(step + 1);
    expect(matchTotp(secret, code(step - 2), now)).toBeNull();
    expect(matchTotp(secret, code(step + 2), now)).toBeNull();
    // Used once: the same step, and any earlier one, is refused.
    expect(matchTotp(secret, code(step), now, { after: step })).toBeNull();
    expect(matchTotp(secret, code(step - 1), now, { after: step })).toBeNull();
    expect(matchTotp(secret, code(step + 1), now, { after: step })).toBe(step + 1);
    // Typed with a space in the middle, as apps show it; anything but 6 digits is no code.
    expect(matchTotp(secret, `${code(step).slice(0, 3)} ${code(step).slice(3)}`, now)).toBe(step);
    for (const bad of ['', '12345', '1234567', '12345a', '١٢٣٤٥٦', `${code(step)}\n0`]) expect(matchTotp(secret, bad, now)).toBeNull();
  });
});

describe('base32', () => {
  it('encodes and decodes the RFC 4648 §10 vectors', () => {
    const vectors: [string, string][] = [
      ['', ''], ['f', 'MY======'], ['fo', 'MZXQ===='], ['foo', 'MZXW6==='], ['foob', 'MZXW6YQ='], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI======'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base32Encode(Buffer.from(plain))).toBe(encoded.replace(/=+$/, ''));
      expect(base32Decode(encoded).toString()).toBe(plain);
      expect(base32Decode(encoded.toLowerCase().replace(/=+$/, '')).toString()).toBe(plain);
    }
    const random = randomBytes(37);
    expect(base32Decode(base32Encode(random))).toEqual(random);
    expect(base32Decode('GEZD GNBV-GY3T')).toEqual(base32Decode('GEZDGNBVGY3T'));
  });

  it('refuses what is not base32', () => {
    for (const bad of ['MZXW1', 'MZXW8', 'A', 'MZX', 'MZXW6Y', 'MZ?W']) expect(() => base32Decode(bad)).toThrow(TotpError);
  });
});

describe('otpauth URI', () => {
  it('names the issuer and the account, and carries the secret in base32', () => {
    const secret = Buffer.from('12345678901234567890');
    expect(otpauthUri('Postern', 'alice@ops', secret)).toBe('otpauth://totp/Postern:alice%40ops?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Postern');
  });
});
