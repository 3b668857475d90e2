/**
 * A file the supervisor publishes for the portal (keystore/public.ts), decoded once and kept in
 * memory until it is replaced: each publication is a rename, which gives the file a new inode,
 * so a stat per request tells whether to read it again. A key, certificate or revocation shows
 * as soon as it is published.
 *
 * Untrusted input: the file (the decoder checks it; a damaged one makes the request fail, never
 * serve something else). Secrets: none.
 */
import { readFile, stat } from 'node:fs/promises';

export class PublishedFile<T> {
  private cached: { stamp: string; value: T } | null = null;

  /** `empty`: what the portal has before the first publication (a test portal may run alone). */
  constructor(
    private readonly file: string,
    private readonly decode: (bytes: Buffer, file: string) => T,
    private readonly empty: T,
  ) {}

  async get(): Promise<T> {
    const st = await stat(this.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!st) return this.empty;
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (this.cached?.stamp === stamp) return this.cached.value;
    const value = this.decode(await readFile(this.file), this.file);
    this.cached = { stamp, value };
    return value;
  }
}
