/**
 * The LDAP directory over TLS against a real slapd: StartTLS on ldap:// and implicit TLS on
 * ldaps://, with the directory's CA from tls.ca_file; a server certificate nothing vouches for is
 * refused (LdapUnavailableError naming the server), unless reject_unauthorized is false.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapConfig, LdapServerConfig } from '../../src/config/types.js';
import { LdapDirectory, LdapUnavailableError } from '../../src/directory/ldap.js';
import { silentLogger } from '../../src/log/index.js';
import { tempDir } from '../helpers/config.js';
import { opensslCa, run } from '../helpers/pki-openssl.js';
import { startSlapd, type Slapd } from '../helpers/slapd.js';

const log = silentLogger();
let slapd: Slapd;
let tmp: { dir: string; cleanup: () => Promise<void> };
let caFile: string;

const cfg = (s: Partial<LdapServerConfig>): LdapConfig => ({
  servers: [
    {
      url: slapd.url,
      starttls: false,
      tls: { reject_unauthorized: true },
      base_dn: slapd.suffix,
      scope: 'sub',
      timeout: 2_000,
      user_filter: '(mail={address})',
      attributes: { mail: 'mail', certificate: [], member_of: 'memberOf', policy: ['title'] },
      ...s,
    },
  ],
  cache_ttl: 60_000,
  negative_ttl: 60_000,
  retry_after: 30_000,
  on_failure: 'defer',
});

beforeAll(async () => {
  tmp = await tempDir('postern-ldaptls-');
  const ca = await opensslCa(tmp.dir, 'DirectoryCA');
  caFile = ca.cert;
  const key = join(tmp.dir, 'slapd.key');
  const cert = join(tmp.dir, 'slapd.pem');
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', '/CN=127.0.0.1', '-out', `${cert}.csr`]);
  await writeFile(`${cert}.ext`, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', `${cert}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', '77', '-days', '2', '-sha256', '-extfile', `${cert}.ext`, '-out', cert]);
  slapd = await startSlapd({ tls: { cert, key } });
  await slapd.add(`dn: ${slapd.suffix}
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: uid=alice,${slapd.suffix}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Able
mail: alice@example.com
title: CFO
`);
});

afterAll(async () => {
  await slapd?.stop();
  await tmp?.cleanup();
});

describe('LDAP over TLS', () => {
  it('StartTLS with the directory CA', async () => {
    const dir = new LdapDirectory(cfg({ starttls: true, tls: { ca_file: caFile, reject_unauthorized: true } }), { log });
    expect(await dir.attributesOf('alice@example.com')).toMatchObject({ title: ['CFO'] });
    await dir.close();
  });

  it('ldaps:// with the directory CA', async () => {
    const dir = new LdapDirectory(cfg({ url: slapd.ldapsUrl!, tls: { ca_file: caFile, reject_unauthorized: true } }), { log });
    expect(await dir.attributesOf('alice@example.com')).toMatchObject({ title: ['CFO'] });
    await dir.close();
  });

  it('a certificate nothing vouches for is refused, on both', async () => {
    for (const s of [{ starttls: true }, { url: slapd.ldapsUrl! }]) {
      const dir = new LdapDirectory(cfg(s), { log });
      const err = await dir.lookUp('alice@example.com').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(LdapUnavailableError);
      expect((err as Error).message).toContain(s.url ?? slapd.url);
      expect((err as Error).message).toMatch(/certificate/i);
      await dir.close();
    }
  });

  it('reject_unauthorized: false accepts it (the admin said so)', async () => {
    const dir = new LdapDirectory(cfg({ starttls: true, tls: { reject_unauthorized: false } }), { log });
    expect((await dir.lookUp('alice@example.com')).found).toBe(true);
    await dir.close();
  });
});
