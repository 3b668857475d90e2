/**
 * `postern restore FILE --check`: a backup read to its last byte and authenticated, its manifest
 * checked — what a restore would do before installing anything — with nothing written. For the
 * admin who wants to know that last night's backup is whole and the passphrase on file opens it.
 */
import { open } from 'node:fs/promises';
import { readManifest, type Manifest } from './contents.js';
import { BackupError, BackupReader, type BackupHeader } from './format.js';

export interface VerifySummary {
  header: BackupHeader;
  manifest: Manifest;
}

export async function verifyBackup(file: string, passphrase: string): Promise<VerifySummary> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new BackupError(`cannot read ${file}: ${err.code ?? err.message}`);
  });
  try {
    const reader = await BackupReader.open(fh, passphrase);
    try {
      const manifest = await readManifest(reader);
      for (const e of manifest.entries) await reader.pipe(e.size, async () => undefined);
      await reader.end();
      return { header: reader.header, manifest };
    } finally {
      reader.close();
    }
  } finally {
    await fh.close();
  }
}
