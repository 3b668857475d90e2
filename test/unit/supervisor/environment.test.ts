/**
 * Issue 15: the environment each role starts with (supervisor/environment.ts) and the config keys
 * behind it (user:, import_environment:), checked with file:line like every config problem.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkConfig } from '../../../src/config/index.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { roleEnvironment, secretVariables, type RoleName } from '../../../src/supervisor/index.js';
import { parseIds } from '../../../src/roles/privileges.js';
import { tempDir, testConfig } from '../../helpers/config.js';

const ROLES: RoleName[] = ['smtpd', 'portal', 'worker', 'relay'];
const FROM = {
  PATH: '/usr/bin:/bin',
  LANG: 'C.UTF-8',
  TZ: 'Europe/Zurich',
  HOME: '/root',
  AWS_SECRET_ACCESS_KEY: 'not-for-roles',
  KEK_PASS: 'kek-passphrase',
  HSM_PIN: '1234',
  SOFTHSM2_CONF: '/etc/softhsm2.conf',
  LDAP_PW: 'ldap-secret',
};

describe('roleEnvironment', () => {
  const ldapServer = { password_env: 'LDAP_PW' } as unknown as ReturnType<typeof testConfig>['ldap']['servers'][number];

  it('passes what import_environment names (NAME from the supervisor, NAME=VALUE as given) and nothing else', () => {
    const c = testConfig('/tmp/x', { import_environment: ['PATH', 'LANG', 'TZ=UTC', 'NOT_SET'] });
    for (const role of ROLES) expect([role, roleEnvironment(role, c, FROM)]).toEqual([role, { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', TZ: 'UTC' }]);
  });

  it("a passphrase KEK's variable and LDAP passwords reach the worker only", () => {
    const c = { ...testConfig('/tmp/x', { import_environment: ['PATH'] }), kek: { passphrase_env: 'KEK_PASS' } as const };
    const withLdap = { ...c, ldap: { ...c.ldap, servers: [ldapServer] } };
    expect(roleEnvironment('worker', withLdap, FROM)).toEqual({ PATH: '/usr/bin:/bin', KEK_PASS: 'kek-passphrase', LDAP_PW: 'ldap-secret' });
    for (const role of ['smtpd', 'portal', 'relay'] as const) expect([role, roleEnvironment(role, withLdap, FROM)]).toEqual([role, { PATH: '/usr/bin:/bin' }]);
  });

  it('a PKCS#11 KEK: the PIN and the module settings (SOFTHSM2_CONF) reach the worker only', () => {
    const c = { ...testConfig('/tmp/x', { import_environment: ['PATH'] }), kek: { pkcs11: { module: '/lib/x.so', token: 't', pin_env: 'HSM_PIN', key_label: 'k' } } };
    expect(roleEnvironment('worker', c, FROM)).toEqual({ PATH: '/usr/bin:/bin', HSM_PIN: '1234', SOFTHSM2_CONF: '/etc/softhsm2.conf' });
    expect(roleEnvironment('smtpd', c, FROM)).toEqual({ PATH: '/usr/bin:/bin' });
  });

  it("a cluster's PostgreSQL password reaches the roles that open the keystore; the portal gets its own login's, or the keystore's when it has none", () => {
    const base = testConfig('/tmp/x', { import_environment: ['PATH'] });
    const pg = { url: 'postgres://postern@db.example:5432/postern', password_env: 'PG_PW', pool: 4 };
    const env = { ...FROM, PG_PW: 'db-secret', PG_PORTAL_PW: 'portal-secret' };
    const shared = { ...base, keystore: { ...base.keystore, postgres: pg } };
    expect(secretVariables(shared)).toEqual(['PG_PW']);
    for (const role of ['worker', 'admin', 'portal'] as const) expect([role, roleEnvironment(role, shared, env)]).toEqual([role, { PATH: '/usr/bin:/bin', PG_PW: 'db-secret' }]);
    for (const role of ['smtpd', 'relay'] as const) expect([role, roleEnvironment(role, shared, env)]).toEqual([role, { PATH: '/usr/bin:/bin' }]);
    const own = { ...base, keystore: { ...base.keystore, postgres: { ...pg, portal: { url: 'postgres://portal@db.example:5432/postern', password_env: 'PG_PORTAL_PW' } } } };
    expect(secretVariables(own)).toEqual(['PG_PW', 'PG_PORTAL_PW']);
    expect(roleEnvironment('portal', own, env)).toEqual({ PATH: '/usr/bin:/bin', PG_PORTAL_PW: 'portal-secret' });
    expect(roleEnvironment('worker', own, env)).toEqual({ PATH: '/usr/bin:/bin', PG_PW: 'db-secret', PG_PORTAL_PW: 'portal-secret' });
    expect(roleEnvironment('smtpd', own, env)).toEqual({ PATH: '/usr/bin:/bin' });
  });

  it('a secret listed in a config built in code is still withheld from the roles that may not have it', () => {
    const c = { ...testConfig('/tmp/x', { import_environment: ['PATH', 'KEK_PASS', 'KEK_PASS=forced'] }), kek: { passphrase_env: 'KEK_PASS' } as const };
    expect(secretVariables(c)).toEqual(['KEK_PASS']);
    expect(roleEnvironment('portal', c, FROM)).toEqual({ PATH: '/usr/bin:/bin' });
    expect(roleEnvironment('worker', c, FROM)).toEqual({ PATH: '/usr/bin:/bin', KEK_PASS: 'kek-passphrase' });
  });
});

describe('user: and import_environment: in postern.yaml', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  });
  afterEach(() => cleanup());
  const check = async (yaml: string) => {
    const file = join(dir, 'postern.yaml');
    await writeFile(file, yaml);
    const r = await checkConfig(file);
    return { file, r };
  };

  it('default to the postern account and a short allow-list', async () => {
    const { r } = await check('hostname: gw.example\n');
    expect(r.ok && { user: r.config.user, env: r.config.import_environment }).toEqual({
      user: 'postern',
      env: ['PATH', 'TZ', 'LANG', 'LC_ALL', 'LC_CTYPE', 'NODE_EXTRA_CA_CERTS', 'POSTERN_LOG_LEVEL'],
    });
  });

  it("refuses the KEK's or an LDAP password variable in import_environment, and malformed entries, with file:line", async () => {
    const { file, r } = await check(
      `kek: { passphrase_env: KEK_PASS }
import_environment:
  - PATH
  - KEK_PASS=x
  - "not a name"
user: "bad user"
`,
    );
    expect(r.ok ? [] : r.problems.map(formatConfigProblem)).toEqual([
      `${file}:6:7: user: expected an account name like postern`,
      `${file}:5:5: import_environment.2: expected NAME or NAME=VALUE`,
    ]);
    const second = await check('kek: { passphrase_env: KEK_PASS }\nimport_environment: [PATH, KEK_PASS]\n');
    expect(second.r.ok ? [] : second.r.problems.map(formatConfigProblem)).toEqual([
      `${second.file}:2:28: import_environment.1: KEK_PASS holds a secret (the KEK's, an LDAP or a PostgreSQL password): it reaches only the roles that need it, never every role`,
    ]);
    const third = await check('keystore: { postgres: { url: "postgres://postern@db.example/postern", password_env: PG_PW } }\nimport_environment: [PATH, PG_PW]\n');
    expect(third.r.ok ? [] : third.r.problems.map(formatConfigProblem)).toEqual([
      `${third.file}:2:28: import_environment.1: PG_PW holds a secret (the KEK's, an LDAP or a PostgreSQL password): it reaches only the roles that need it, never every role`,
    ]);
  });
});

describe('--user UID:GID, as the supervisor passes it to a role', () => {
  it('takes two non-zero numbers only', () => {
    expect(parseIds('999:994')).toEqual({ uid: 999, gid: 994 });
    for (const bad of ['0:994', '999:0', 'postern', '999', '-1:2', '999:994:1']) expect(() => parseIds(bad)).toThrow(/expected UID:GID of an unprivileged account/);
  });
});
