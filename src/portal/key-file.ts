/**
 * The portal role's key source: the public key file the supervisor publishes (keystore/public.ts),
 * not postern.db — the portal runs as the unprivileged account, which cannot open the database.
 * The file is read again whenever it was replaced (a rename gives it a new inode), so a key or a
 * revocation shows as soon as it is published; otherwise answers come from memory.
 *
 * Untrusted input: the file (checked by decodePublicKeys; a damaged one makes requests fail with
 * 503, never serve something else). Secrets: none.
 */
import { readFile, stat } from 'node:fs/promises';
import { addressKey } from '../core/address.js';
import { decodePublicKeys } from '../keystore/public.js';
import type { PortalKey, PortalStore } from './wkd.js';

export class PublicKeyFile implements PortalStore {
  private cached: { stamp: string; keys: PortalKey[] } | null = null;

  constructor(private readonly file: string) {}

  async listPgpKeys(): Promise<PortalKey[]> {
    return this.load();
  }

  async pgpKeysFor(address: string): Promise<PortalKey[]> {
    const wanted = addressKey(address);
    return (await this.load()).filter((k) => k.info.addresses.some((a) => addressKey(a) === wanted));
  }

  private async load(): Promise<PortalKey[]> {
    const st = await stat(this.file).catch((err: NodeJS.ErrnoException) => {
      // Not published yet (the supervisor writes it before any role starts; a test portal may run alone).
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!st) return [];
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (this.cached?.stamp === stamp) return this.cached.keys;
    const keys = decodePublicKeys(await readFile(this.file), this.file).map((k) => ({
      hasSecret: true,
      publicKey: k.publicKey,
      info: { fingerprint: k.fingerprint, addresses: k.addresses, canEncrypt: k.canEncrypt, created: k.created },
    }));
    this.cached = { stamp, keys };
    return keys;
  }
}
