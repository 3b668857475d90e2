/**
 * The portal role's key source: the public key file the supervisor publishes (keystore/public.ts),
 * not postern.db — the portal runs as the unprivileged account, which cannot open the database.
 * Read again whenever it was replaced (published-file.ts); otherwise answers come from memory.
 *
 * Untrusted input: the file (checked by decodePublicKeys; a damaged one makes requests fail with
 * 503, never serve something else). Secrets: none.
 */
import { addressKey } from '../core/address.js';
import { decodePublicKeys } from '../keystore/public.js';
import { PublishedFile } from './published-file.js';
import type { PortalKey, PortalStore } from './wkd.js';

export class PublicKeyFile implements PortalStore {
  private readonly published: PublishedFile<PortalKey[]>;

  constructor(file: string) {
    this.published = new PublishedFile(
      file,
      (bytes, name) =>
        decodePublicKeys(bytes, name).map((k) => ({
          hasSecret: true,
          publicKey: k.publicKey,
          info: { fingerprint: k.fingerprint, addresses: k.addresses, canEncrypt: k.canEncrypt, created: k.created },
        })),
      [],
    );
  }

  /** The same array until the file is replaced (the key server keeps its index by it). */
  async listPgpKeys(): Promise<PortalKey[]> {
    return this.published.get();
  }

  async pgpKeysFor(address: string): Promise<PortalKey[]> {
    const wanted = addressKey(address);
    return (await this.published.get()).filter((k) => k.info.addresses.some((a) => addressKey(a) === wanted));
  }
}
