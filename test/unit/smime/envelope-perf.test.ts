/**
 * The cost of encryption on the worker's hot path: a 4 KB entity to one RSA-2048 recipient (the
 * goal is well under 0.5 ms, against ~850 sign+encrypt messages/s on two cores), and for context
 * ECDH P-256, two recipients, and decryption. Figures are printed; the bounds are loose so a busy
 * CI machine does not fail, but a regression to pkijs/WebCrypto speeds (milliseconds) would.
 */
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptSync } from '../../../src/smime/decrypt.js';
import { encryptSync, type EncryptOptions } from '../../../src/smime/encrypt.js';
import { prepareDecryptionKey, prepareRecipient, type SmimeRecipient } from '../../../src/smime/recipient-keys.js';
import { makeEnvPki, type EnvPki } from '../../helpers/smime-env-pki.js';

let pki: EnvPki;
beforeAll(() => {
  pki = makeEnvPki();
});
afterAll(() => pki?.cleanup());

/** Median microseconds per call over `n` calls after a warm-up. */
function median(fn: () => unknown, n = 2000): number {
  for (let i = 0; i < 200; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(n / 2)]! * 1000;
}

describe('encryption speed', () => {
  const content = randomBytes(4096);
  it('4 KB to one RSA-2048 recipient, and friends', () => {
    const rsa = prepareRecipient(pki.rsa.certDer);
    const rows: [string, SmimeRecipient[], EncryptOptions][] = [
      ['RSA-2048 PKCS#1, AES-256-CBC', [rsa], {}],
      ['RSA-2048 OAEP, AES-256-GCM', [rsa], { rsaPadding: 'oaep', cipher: 'aes-256-gcm' }],
      ['ECDH P-256, AES-256-CBC', [prepareRecipient(pki.p256.certDer)], {}],
      ['RSA-2048 x2, AES-256-CBC', [rsa, prepareRecipient(pki.rsa2.certDer)], {}],
    ];
    const figures: Record<string, number> = {};
    for (const [name, to, opts] of rows) figures[`encrypt ${name}`] = median(() => encryptSync(content, to, opts));
    const der = encryptSync(content, [rsa]);
    const key = prepareDecryptionKey(pki.rsa.certDer, pki.rsa.pkcs8);
    figures['decrypt RSA-2048 PKCS#1, AES-256-CBC'] = median(() => decryptSync(der, [key]), 500);
    figures['prepareRecipient (RSA-2048 certificate)'] = median(() => prepareRecipient(pki.rsa.certDer), 500);
    console.log(Object.entries(figures).map(([k, v]) => `${k}: ${v.toFixed(1)} µs`).join('\n'));
    expect(figures['encrypt RSA-2048 PKCS#1, AES-256-CBC']).toBeLessThan(1500);
  });
});
