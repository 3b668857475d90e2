/**
 * Independent PDF readers given a password (qpdf, poppler, MuPDF) and a byte scan for plaintext
 * left in an encrypted file. The readers run as child processes on files in a temp dir; nothing
 * here parses PDF with the code under test.
 */
import { spawnSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export function run(command: string, args: string[], cwd?: string): RunResult {
  const r = spawnSync(command, args, { cwd, maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

export const qpdf = (...args: string[]): RunResult => run('qpdf', args);
export const pdftotext = (file: string, password: string): RunResult => run('pdftotext', ['-upw', password, file, '-']);
export const mutoolText = (file: string, password: string): RunResult => run('mutool', ['draw', '-p', password, '-F', 'txt', file]);

/** The spellings a text can have in a PDF's bytes: as is, UTF-16BE (text strings), hex of both. */
function spellings(text: string): Buffer[] {
  const utf8 = Buffer.from(text, 'utf8');
  const utf16 = Buffer.from(text, 'utf16le').swap16();
  return [utf8, utf16, ...[utf8, utf16].flatMap((b) => [Buffer.from(b.toString('hex')), Buffer.from(b.toString('hex').toUpperCase())])];
}

/**
 * Which of `needles` occur in the raw file or in any of its streams once inflated (without
 * decryption: a compressed-but-unencrypted stream inflates, an encrypted one does not).
 */
export function plaintextsIn(raw: Uint8Array, needles: string[]): string[] {
  const file = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const haystacks: Buffer[] = [file];
  // The keyword after a dictionary's ">>", so a string that merely contains "stream" is no start.
  const starts = /(?<=>>\s*)stream(?:\r\n|\n)/g;
  const text = file.toString('latin1');
  for (let m = starts.exec(text); m; m = starts.exec(text)) {
    const body = m.index + m[0].length;
    const end = text.indexOf('endstream', body);
    if (end < 0) break;
    try {
      haystacks.push(inflateSync(file.subarray(body, end)));
    } catch {
      // Not a zlib stream (encrypted, or stored without a filter): the raw scan covers it.
    }
    starts.lastIndex = end + 'endstream'.length;
  }
  return needles.filter((n) => spellings(n).some((s) => haystacks.some((h) => h.includes(s))));
}
