/**
 * The envelopes of the worker's hot path, 4 KB of content, made and opened by Postern: RSA-2048
 * PKCS#1 with AES-256-CBC, RSA-2048 OAEP with AES-256-GCM, ECDH P-256 with AES-256-CBC, and two
 * RSA recipients — each recipient's key decrypts the envelope to the content, with the algorithms
 * asked for. (openssl and gpgsm check the same output in envelope-openssl/-gpgsm.test.ts.)
 *
 * What they cost is not tested here: timed assertions flake on a loaded CI machine. The cost is a
 * bench figure beside Node's raw RSA / ECDH and AES in the same run — `npm run bench -- --only
 * micro`: smime-encrypt, smime-encrypt-ec, smime-decrypt (bench/micro.js).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptSync } from '../../../src/smime/decrypt.js';
import { encryptSync, type EncryptOptions } from '../../../src/smime/encrypt.js';
import { prepareDecryptionKey, prepareRecipient, type SmimeRecipient } from '../../../src/smime/recipient-keys.js';
import { makeEnvPki, type EnvIdentity, type EnvPki } from '../../helpers/smime-env-pki.js';

let pki: EnvPki;
beforeAll(() => {
  pki = makeEnvPki();
});
afterAll(() => pki?.cleanup());

describe('hot-path envelopes round-trip', () => {
  const content = randomBytes(4096);
  it('4 KB to one RSA-2048 recipient, and friends: each recipient decrypts it, with the algorithms asked for', () => {
    const rows: [string, EnvIdentity[], EncryptOptions, { cipher: string; keyTransport: RegExp; authenticated: boolean }][] = [
      ['RSA-2048 PKCS#1, AES-256-CBC', [pki.rsa], {}, { cipher: 'AES-256-CBC', keyTransport: /^RSA PKCS#1 v1\.5$/, authenticated: false }],
      ['RSA-2048 OAEP, AES-256-GCM', [pki.rsa], { rsaPadding: 'oaep', cipher: 'aes-256-gcm' }, { cipher: 'AES-256-GCM', keyTransport: /^RSA-OAEP/, authenticated: true }],
      ['ECDH P-256, AES-256-CBC', [pki.p256], {}, { cipher: 'AES-256-CBC', keyTransport: /^ECDH P-256/, authenticated: false }],
      ['RSA-2048 x2, AES-256-CBC', [pki.rsa, pki.rsa2], {}, { cipher: 'AES-256-CBC', keyTransport: /^RSA PKCS#1 v1\.5$/, authenticated: false }],
    ];
    for (const [name, ids, opts, want] of rows) {
      const to: SmimeRecipient[] = ids.map((id) => prepareRecipient(id.certDer));
      const der = encryptSync(content, to, opts);
      for (const id of ids) {
        const out = decryptSync(der, [prepareDecryptionKey(id.certDer, id.pkcs8)]);
        expect(out.content.equals(content), `${name}: ${id.name}`).toBe(true);
        expect({ cipher: out.cipher, authenticated: out.authenticated }, `${name}: ${id.name}`).toEqual({ cipher: want.cipher, authenticated: want.authenticated });
        expect(out.keyTransport, `${name}: ${id.name}`).toMatch(want.keyTransport);
      }
    }
  });
});
