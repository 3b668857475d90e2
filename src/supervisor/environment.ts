/**
 * The environment each role starts with: an allow-list, never the supervisor's whole environment
 * (Postfix's import_environment). Every role gets what `import_environment` names; only the roles
 * that may unseal (ROLE_PRIVILEGES) also get the KEK's passphrase or PIN variable, the PKCS#11
 * module's settings and the LDAP bind passwords. So smtpd's and the portal's /proc/PID/environ
 * hold no secret, whatever the admin exported before `postern start`.
 *
 * A cluster's PostgreSQL passwords (keystore.postgres.password_env, and its portal login's) go
 * the same way: the keystore's to the roles that unseal, the portal login's to the portal (and to
 * those roles, which open portal storage too); a portal without a login of its own uses the
 * keystore's, as the config says. smtpd and the relay never touch the database and get neither.
 */
import type { Config } from '../config/types.js';
import { ROLE_PRIVILEGES, type RoleName } from './protocol.js';

/**
 * Settings a PKCS#11 module reads from the environment (where its token lives). Other modules'
 * variables (not secrets) can be named in import_environment.
 */
const PKCS11_MODULE_VARIABLES = ['SOFTHSM2_CONF'];

type SecretSources = Pick<Config, 'kek' | 'ldap'> & { keystore?: Pick<Config['keystore'], 'postgres'> };

/** The PostgreSQL password variables: the keystore's login, and the one the portal connects with. */
function postgresVariables(config: SecretSources): { keystore?: string; portal?: string } {
  const pg = config.keystore?.postgres;
  if (!pg) return {};
  const portal = pg.portal ? pg.portal.password_env : pg.password_env;
  return { ...(pg.password_env ? { keystore: pg.password_env } : {}), ...(portal ? { portal } : {}) };
}

/** Variables that hold a secret: the KEK's passphrase or PIN, LDAP bind passwords, PostgreSQL passwords. */
export function secretVariables(config: SecretSources): string[] {
  const k = config.kek;
  const kek = 'pkcs11' in k ? k.pkcs11.pin_env : k.passphrase_env;
  const pg = postgresVariables(config);
  return [...new Set([kek, ...config.ldap.servers.map((s) => s.password_env), pg.keystore, pg.portal].filter((v): v is string => Boolean(v)))];
}

export function roleEnvironment(role: RoleName, config: SecretSources & Pick<Config, 'import_environment'>, from: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of config.import_environment) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    else if (from[entry] !== undefined) env[entry] = from[entry];
  }
  const secrets = secretVariables(config);
  // The config loader refuses these in import_environment; a config built in code is held to it too.
  for (const name of secrets) delete env[name];
  if (ROLE_PRIVILEGES[role].unseals) {
    const extra = 'pkcs11' in config.kek ? [...secrets, ...PKCS11_MODULE_VARIABLES] : secrets;
    for (const name of extra) if (from[name] !== undefined) env[name] = from[name];
  } else if (role === 'portal') {
    const name = postgresVariables(config).portal;
    if (name && from[name] !== undefined) env[name] = from[name];
  }
  return env;
}
