/**
 * The config as it may be shown to an admin who may not see secrets (the admin API's GET /config,
 * read by Auditors and operators too). postern.yaml names its secrets by environment variable or
 * file rather than holding them, so what is shown is mostly what was written; the rules below are
 * for what still is, or will be, a value: they decide by the key's name and the value's shape,
 * not by a list of today's keys, so a secret added to the config later is hidden without a change
 * here.
 *
 * - Names of environment variables (`*_env`) and paths of files (key files, password files, a
 *   PKCS#11 module) show: they say where a secret is, not what it is.
 * - Any other string or number under a name that speaks of a secret (password, passphrase, secret,
 *   pin, key, token, credential) is "[redacted]", as is every byte buffer and every PEM block.
 * - `NAME=VALUE` entries of an environment list show the name only; a URL shows no password.
 */
import { isAbsolute } from 'node:path';

export const REDACTED = '[redacted]';

const SECRET_WORDS = new Set(['password', 'passwd', 'passphrase', 'secret', 'secrets', 'pin', 'key', 'keys', 'token', 'credential', 'credentials', 'apikey']);

/**
 * Named like a secret but holding a choice, a label or a limit, never a secret (a key *type*, the
 * scope of PDF passwords, the labels a PKCS#11 token and key are found by, a size).
 */
const NOT_SECRET = new Set(['ca.key_type', 'pdf.password_scope', 'kek.pkcs11.key_label', 'kek.pkcs11.token', 'discovery.max_key_size']);

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function secretName(name: string): boolean {
  const n = name.toLowerCase();
  return n.includes('password') || n.includes('passphrase') || n.includes('secret') || n.split(/[_\-.]/).some((w) => SECRET_WORDS.has(w));
}

/** A value that says where a secret is: an environment variable's name, or a file's absolute path. */
function pointer(name: string, value: string): boolean {
  const n = name.toLowerCase();
  if (n.endsWith('_env')) return ENV_NAME.test(value);
  return isAbsolute(value) && !/[\r\n]/.test(value) && (n === 'key' || n === 'module' || n.endsWith('_file') || n.endsWith('_path') || n.endsWith('_dir'));
}

/** user:password@ in a URL (a PostgreSQL URL, a proxy) keeps its user only. */
function withoutUrlPassword(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*):[^@/\s]*@/i, `$1:${REDACTED}@`);
}

function redactValue(path: string[], value: unknown, underSecret: boolean): unknown {
  const name = path.at(-1) ?? '';
  if (value === null || value === undefined || typeof value === 'boolean') return value;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array || value instanceof ArrayBuffer) return REDACTED;
  if (typeof value === 'string') {
    if (value.includes('-----BEGIN')) return REDACTED;
    if (underSecret && !NOT_SECRET.has(path.join('.')) && !pointer(name, value)) return REDACTED;
    return withoutUrlPassword(value);
  }
  if (typeof value === 'number' || typeof value === 'bigint') return underSecret && !NOT_SECRET.has(path.join('.')) ? REDACTED : value;
  if (Array.isArray(value)) {
    const env = /environment/i.test(name);
    return value.map((v) => (env && typeof v === 'string' && v.includes('=') ? `${v.slice(0, v.indexOf('='))}=${REDACTED}` : redactValue(path, v, underSecret)));
  }
  if (value instanceof Map) return redactValue(path, Object.fromEntries(value), underSecret);
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue([...path, k], v, underSecret || secretName(k))]));
  }
  // Functions, symbols: nothing an admin reads.
  return REDACTED;
}

/** A JSON-ready copy of `config` with every secret value replaced by "[redacted]". */
export function redactConfig(config: object): Record<string, unknown> {
  return redactValue([], config, false) as Record<string, unknown>;
}
