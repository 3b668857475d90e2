/**
 * OpenPGP-encrypted attachments (`report.pdf.pgp`, `data.gpg`, an armored `.asc`), decrypted when
 * the policy asks for it (`decrypt: { pgp_attachments: true }`): each becomes the file it holds,
 * as an attachment of its own, next to the others. This does not break the EFAIL rule of open.ts
 * (decrypted text is never spliced into content someone else wrote): a decrypted attachment stays
 * a separate file with the name it came with, and is never rendered inline.
 *
 * Untrusted input: every part of the message; walk bounded in depth and count, every failure a
 * report. Secrets: the session keys inside openpgp.js only.
 */
import { decodeBody, encodeBase64Lines, multipartLayout, newBoundary, readEntity } from '../mime/index.js';
import { parseParams, splitHeader } from '../mime/index.js';
import { parameter } from '../mime/index.js';
import { decryptPgp, readPgpMessage } from './pgp-decrypt.js';
import type { PgpDecryptionKey } from './prepared.js';

const MAX_DEPTH = 20;
const MAX_ATTACHMENTS = 20;
const NAME = /\.(pgp|gpg|asc)$/i;

export interface AttachmentResult {
  name: string;
  status: 'decrypted' | 'failed';
  reason?: string;
}

function filenameOf(e: ReturnType<typeof readEntity>): string {
  return (parseParams(e.headers.get('content-disposition')?.[0] ?? '').params.get('filename') ?? e.type.params.get('name') ?? '').trim();
}

/** An OpenPGP message (not a key, not a signature): armored header, or a PKESK/SKESK packet first. */
function isPgpMessage(data: Buffer): boolean {
  const head = data.subarray(0, 64).toString('latin1');
  if (head.includes('-----BEGIN PGP MESSAGE-----')) return true;
  const tag = data[0] ?? 0;
  if ((tag & 0x80) === 0) return false;
  const id = tag & 0x40 ? tag & 0x3f : (tag >> 2) & 0x0f;
  return id === 1 || id === 3; // PKESK, SKESK
}

export async function decryptAttachments(
  entity: Buffer,
  keysFor: (ids: string[]) => Promise<PgpDecryptionKey[]>,
  /** A file inflating past this is left encrypted, with the limit as its reason (worker.max_decompressed_size). */
  maxDecompressedSize?: number,
): Promise<{ entity: Buffer; results: AttachmentResult[] }> {
  const results: AttachmentResult[] = [];
  const walk = async (raw: Buffer, depth: number): Promise<Buffer> => {
    const e = readEntity(raw);
    const boundary = e.type.params.get('boundary');
    if (e.type.type.startsWith('multipart/') && boundary && depth < MAX_DEPTH) {
      // Never inside a signed or encrypted structure: that is the message's own crypto, not a file.
      if (e.type.type === 'multipart/signed' || e.type.type === 'multipart/encrypted') return raw;
      const layout = multipartLayout(e.body, boundary);
      const parts: Buffer[] = [];
      let changed = false;
      for (const p of layout.parts) {
        const q = await walk(p, depth + 1);
        changed ||= q !== p;
        parts.push(q);
      }
      if (!changed) return raw;
      const nb = newBoundary(Buffer.concat(parts));
      const head = splitHeader(raw).header.toString('latin1').replace(/boundary\s*=\s*("[^"]*"|[^;\s]+)/i, `boundary="${nb}"`);
      const pre = layout.preamble.length ? `${layout.preamble.toString('latin1')}\r\n` : '';
      return Buffer.from(`${head}\r\n${pre}${parts.map((p) => `--${nb}\r\n${p.toString('latin1')}\r\n`).join('')}--${nb}--\r\n`, 'latin1');
    }
    const name = filenameOf(e);
    if (depth === 0 || !NAME.test(name) || results.length >= MAX_ATTACHMENTS) return raw;
    const data = decodeBody(e);
    if (!isPgpMessage(data)) return raw;
    try {
      const message = await readPgpMessage(data.subarray(0, 64).toString('latin1').includes('-----BEGIN') ? data.toString('latin1') : data, maxDecompressedSize);
      const d = await decryptPgp(message, keysFor, null);
      const plainName = name.replace(NAME, '') || 'decrypted';
      results.push({ name, status: 'decrypted' });
      const disp = ['attachment', ...parameter('filename', plainName)].join(';\r\n ');
      return Buffer.from(`Content-Type: application/octet-stream;\r\n ${parameter('name', plainName).join(';\r\n ')}\r\nContent-Disposition: ${disp}\r\nContent-Transfer-Encoding: base64\r\n\r\n${encodeBase64Lines(d.data)}`, 'latin1');
    } catch (err) {
      results.push({ name, status: 'failed', reason: (err as Error).message });
      return raw;
    }
  };
  const out = await walk(entity, 0);
  return { entity: out, results };
}
