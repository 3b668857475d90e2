/**
 * A revocation check whose keystore cannot be reached stops (the mail is deferred) instead of going
 * on to OCSP and CRLs without the store's answer: in soft mode that would let a certificate the
 * internal CA revoked — recorded only in the store — be used for encryption.
 */
import { describe, expect, it } from 'vitest';
import { revocationCheckerFor } from '../../../src/keystore/index.js';
import { NO_KEK } from '../../../src/keystore/kek/none.js';
import { PostgresSql } from '../../../src/keystore/sql/postgres.js';
import { isStoreUnavailable } from '../../../src/keystore/sql/types.js';
import { SqlKeyStore } from '../../../src/keystore/store.js';
import { parseCertificate, RevocationStoreUnavailableError } from '../../../src/pki/index.js';
import { tempDir, testConfig } from '../../helpers/config.js';
import { freePort } from '../../helpers/gateway.js';
import { opensslCa, opensslMailbox, run } from '../../helpers/pki-openssl.js';

describe('revocation with the keystore unreachable', () => {
  it('throws an error the worker takes for an outage, never a soft "unknown"', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const ca = await opensslCa(dir, 'Internal CA');
      const bob = await opensslMailbox(dir, ca, 'bob@example.com');
      const der = async (pem: string) => (await run('openssl', ['x509', '-in', pem, '-outform', 'DER'], { encoding: 'buffer' })).stdout as Buffer;
      // Nobody listens on this port: every query fails as the driver's 'unavailable'.
      const sql = new PostgresSql({ url: `postgres://postern@127.0.0.1:${await freePort()}/postern`, pool: 1, schema: 'keystore', connectTimeoutMs: 2_000 });
      const store = new SqlKeyStore(sql, NO_KEK);
      const config = testConfig(dir);
      const checker = revocationCheckerFor({ ...config, revocation: { ...config.revocation, ocsp: false, crl: false } }, store);
      const err = await checker.check(parseCertificate(await der(bob.cert)), parseCertificate(await der(ca.cert))).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RevocationStoreUnavailableError);
      expect(isStoreUnavailable(err)).toBe(true);
      await store.close();
    } finally {
      await cleanup();
    }
  });
});
