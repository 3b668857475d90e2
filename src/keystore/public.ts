/**
 * The keystore's public face: what it publishes as files for the roles that must not open
 * postern.db (smtpd, the portal), and where. Like the internal CA's CRL, our users' OpenPGP public
 * keys are written by the processes that may open the store (the supervisor, at start and when
 * the database changes) into data_dir/public/, readable by the unprivileged account's group; the
 * portal serves WKD from that file and never sees the database, its sealed secrets or its audit log.
 *
 * This file is the keystore's second entry point, for those roles only: it imports nothing that
 * can unseal (no kek/, no SQLite), which test/integration/role-imports.test.ts checks.
 *
 * Untrusted input: the file, when read back (checked field by field; a damaged file throws).
 * Secrets: none — public key bytes only (the portal checks each packet again before serving).
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Where the internal CA's current CRL is published for the portal to serve. */
export const internalCrlFile = (config: { data_dir: string }) => join(config.data_dir, 'crl', 'internal-ca.crl');

/** Where our users' OpenPGP public keys are published for the portal (WKD). */
export const publicKeysFile = (config: { data_dir: string }) => join(config.data_dir, 'public', 'openpgp-keys.json');

/** One published key: what WKD needs, nothing more. */
export interface PublicPgpKey {
  fingerprint: string;
  addresses: string[];
  canEncrypt: boolean;
  created: Date;
  publicKey: Buffer;
}

export class PublicFileError extends Error {
  override readonly name = 'PublicFileError';
}

const FORMAT = 'postern-openpgp-public-keys';
const VERSION = 1;

/** The keys the store holds a secret for (our users), as the published file's bytes. */
export function encodePublicKeys(keys: readonly PublicPgpKey[]): Buffer {
  const sorted = [...keys].sort((a, b) => a.fingerprint.localeCompare(b.fingerprint));
  return Buffer.from(
    `${JSON.stringify({
      format: FORMAT,
      version: VERSION,
      keys: sorted.map((k) => ({
        fingerprint: k.fingerprint,
        addresses: k.addresses,
        can_encrypt: k.canEncrypt,
        created: k.created.getTime(),
        public_key: k.publicKey.toString('base64'),
      })),
    })}\n`,
  );
}

/** Read back what encodePublicKeys wrote; PublicFileError when it is not that. */
export function decodePublicKeys(bytes: Buffer, file = 'public key file'): PublicPgpKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new PublicFileError(`${file}: not JSON (${(err as Error).message})`);
  }
  const d = doc as { format?: unknown; version?: unknown; keys?: unknown };
  if (d?.format !== FORMAT || d.version !== VERSION || !Array.isArray(d.keys)) throw new PublicFileError(`${file}: not a ${FORMAT} file, version ${VERSION}`);
  return d.keys.map((raw: unknown, i: number) => {
    const k = raw as Record<string, unknown>;
    const ok =
      typeof k?.fingerprint === 'string' && /^[0-9A-F]{32,64}$/i.test(k.fingerprint) &&
      Array.isArray(k.addresses) && k.addresses.every((a) => typeof a === 'string') &&
      typeof k.can_encrypt === 'boolean' && Number.isFinite(k.created) &&
      typeof k.public_key === 'string' && /^[A-Za-z0-9+/]+=*$/.test(k.public_key);
    if (!ok) throw new PublicFileError(`${file}: key ${i} is malformed`);
    return {
      fingerprint: k.fingerprint as string,
      addresses: k.addresses as string[],
      canEncrypt: k.can_encrypt as boolean,
      created: new Date(k.created as number),
      publicKey: Buffer.from(k.public_key as string, 'base64'),
    };
  });
}

/**
 * Write `bytes` to `file` atomically and durably (temporary file, fsync, rename, directory fsync),
 * so the portal reads either the old file or the new one whole. With `group`, the file is 0640 and
 * its directory 0750, both root's and that group's; otherwise 0600 and 0700.
 */
export async function writePublicFile(file: string, bytes: Buffer, group?: number): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Set, not left to the umask or to an earlier start with another `user:`.
  if (group !== undefined) await chown(dir, process.getuid?.() ?? 0, group);
  await chmod(dir, group === undefined ? 0o700 : 0o750);
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    if (group !== undefined) {
      await fh.chown(process.getuid?.() ?? 0, group);
      await fh.chmod(0o640);
    }
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** What publishPublicKeys reads: the store's OpenPGP keys (KeyStore has it; no KEK needed). */
export interface PublicKeySource {
  listPgpKeys(): Promise<{ hasSecret: boolean; publicKey: Buffer; info: { fingerprint: string; addresses: string[]; canEncrypt: boolean; created: Date } }[]>;
}

/**
 * Publish the keys `store` holds a secret for (our users': what WKD serves) unless the file already
 * holds exactly these bytes (`previous`, from the last call). Returns the bytes now published.
 */
export async function publishPublicKeys(store: PublicKeySource, config: { data_dir: string }, opts: { group?: number; previous?: Buffer } = {}): Promise<Buffer> {
  const keys = (await store.listPgpKeys())
    .filter((k) => k.hasSecret)
    .map((k) => ({ fingerprint: k.info.fingerprint, addresses: k.info.addresses, canEncrypt: k.info.canEncrypt, created: k.info.created, publicKey: k.publicKey }));
  const bytes = encodePublicKeys(keys);
  if (opts.previous?.equals(bytes)) return opts.previous;
  await writePublicFile(publicKeysFile(config), bytes, opts.group);
  return bytes;
}
