/**
 * The config as the admin API shows it: a postern.yaml with every kind of secret reference the
 * schema has (KEK passphrase variable, PKCS#11 PIN variable, LDAP bind password by variable and by
 * file, TLS keys, environment values), loaded as the gateway loads it; and the rules themselves
 * over values the schema does not have yet (key bytes, PEM, literal passwords, URLs with one).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, redactConfig, REDACTED } from '../../../src/config/index.js';
import { tempDir } from '../../helpers/config.js';

describe('redactConfig', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-redact-'));
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    for (const f of ['tls.crt', 'tls.key', 'portal.crt', 'portal.key', 'ldap-ca.pem', 'bind.pw']) await writeFile(join(dir, f), 'x');
  });
  afterEach(() => cleanup());

  const load = async (yaml: string) => {
    await writeFile(join(dir, 'postern.yaml'), `hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n${yaml}`);
    return loadConfig(join(dir, 'postern.yaml'));
  };

  it('shows where each secret of a real config is (variable names, paths), never a value', async () => {
    const config = await load(`smtp:
  tls: { cert: tls.crt, key: tls.key }
portal:
  listen: ["127.0.0.1:8444"]
  tls: { cert: portal.crt, key: portal.key }
kek:
  pkcs11: { module: /usr/lib/softhsm/libsofthsm2.so, token: postern, pin_env: POSTERN_PIN, key_label: kek }
ldap:
  servers:
    - { url: "ldaps://ldap.example.com", bind_dn: "cn=postern,dc=example,dc=com", password_env: LDAP_BIND_PW, base_dn: "dc=example,dc=com", tls: { ca_file: ldap-ca.pem } }
    - { url: "ldap://ldap2.example.com", bind_dn: "cn=postern,dc=example,dc=com", password_file: bind.pw, base_dn: "dc=example,dc=com" }
import_environment: [PATH, "HTTPS_PROXY=http://proxy:hunter2@proxy.example.com:3128", "API_TOKEN=s3cr3t-t0ken"]
`);
    const shown = redactConfig(config) as any;
    expect(shown.smtp.tls).toEqual({ cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') });
    expect(shown.portal.tls.key).toBe(join(dir, 'portal.key'));
    expect(shown.kek).toEqual({ pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', token: 'postern', pin_env: 'POSTERN_PIN', key_label: 'kek' } });
    expect(shown.ldap.servers[0]).toMatchObject({ bind_dn: 'cn=postern,dc=example,dc=com', password_env: 'LDAP_BIND_PW', tls: { ca_file: join(dir, 'ldap-ca.pem') } });
    expect(shown.ldap.servers[1].password_file).toBe(join(dir, 'bind.pw'));
    expect(shown.import_environment).toEqual(['PATH', `HTTPS_PROXY=${REDACTED}`, `API_TOKEN=${REDACTED}`]);
    // Choices and sizes named like secrets stay readable.
    expect(shown.ca.key_type).toBe(config.ca.key_type);
    expect(shown.pdf.password_scope).toBe('pair');
    expect(shown.discovery.max_key_size).toBe(config.discovery.max_key_size);
    const text = JSON.stringify(shown);
    for (const secret of ['hunter2', 's3cr3t-t0ken']) expect(text).not.toContain(secret);
    // Everything else is as loaded.
    expect({ ...shown, import_environment: config.import_environment }).toEqual(JSON.parse(JSON.stringify(config)));
  });

  it('shows the KEK passphrase variable by name', async () => {
    const shown = redactConfig(await load('kek: { passphrase_env: POSTERN_KEK_PASSPHRASE }\n')) as any;
    expect(shown.kek).toEqual({ passphrase_env: 'POSTERN_KEK_PASSPHRASE' });
  });

  it('hides values under secret names, key bytes and PEM anywhere, and URL passwords, whatever the key is called', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\n';
    const shown = redactConfig({
      admin: { listen: '127.0.0.1:8443', session_secret: 'abc123', tls: { key: pem, cert: '/etc/postern/admin.crt' } },
      kek: { passphrase: 'correct horse', pin: 1234, pin_env: 'not a variable name; rm -rf /' },
      ldap: { servers: [{ bind_password: 'ldap-pw', password_file: 'relative/not/a/path' }] },
      store: { postgres: 'postgres://postern:pg-secret@db.example.com/postern', api_keys: ['k1', 'k2'] },
      smtp: { tls: { key: Buffer.from('key bytes') }, ticket: new Uint8Array([1, 2, 3]), max_recipients: 100, tls_required: true },
      notes: `a comment with a key inside\n${pem}`,
    }) as any;
    expect(shown).toEqual({
      admin: { listen: '127.0.0.1:8443', session_secret: REDACTED, tls: { key: REDACTED, cert: '/etc/postern/admin.crt' } },
      kek: { passphrase: REDACTED, pin: REDACTED, pin_env: REDACTED },
      ldap: { servers: [{ bind_password: REDACTED, password_file: REDACTED }] },
      store: { postgres: `postgres://postern:${REDACTED}@db.example.com/postern`, api_keys: [REDACTED, REDACTED] },
      smtp: { tls: { key: REDACTED }, ticket: REDACTED, max_recipients: 100, tls_required: true },
      notes: REDACTED,
    });
  });
});
