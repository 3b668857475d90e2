/**
 * Three independent PDF readers as the tests' judges: qpdf (encryption dictionary, structure),
 * poppler (pdftotext, pdfdetach, pdftoppm) and MuPDF (mutool), async and with the password, for
 * the gateway tests (test/helpers/pdf-encrypted.ts has the plaintext scan; pdf-readers.ts the
 * unencrypted readers of the renderer's tests). A non-zero exit is a result, not an exception.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ReaderResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a reader; a non-zero exit is a result, not an exception (wrong passwords are tested). */
export async function reader(cmd: string, args: string[]): Promise<ReaderResult> {
  try {
    const r = await run(cmd, args, { maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `qpdf --show-encryption`: "R = 6", "AESv3" … and the permissions. */
export const showEncryption = (file: string, password: string) => reader('qpdf', [`--password=${password}`, '--show-encryption', file]);

/** qpdf decrypts to `out`, then `qpdf --check` of the result (exit 0 and no warnings when clean). */
export async function qpdfDecryptCheck(file: string, password: string, out: string): Promise<ReaderResult> {
  const d = await reader('qpdf', [`--password=${password}`, '--decrypt', file, out]);
  if (d.code !== 0) return d;
  return reader('qpdf', ['--check', out]);
}

export const popplerText = (file: string, password: string) => reader('pdftotext', ['-upw', password, '-enc', 'UTF-8', file, '-']);

export const mupdfText = (file: string, password: string) => reader('mutool', ['draw', '-q', '-p', password, '-F', 'txt', '-o', '-', file]);

/** Every embedded file, by name, as poppler's pdfdetach saves them. */
export async function popplerAttachments(file: string, password: string): Promise<Map<string, Buffer>> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-pdfdetach-'));
  try {
    const r = await reader('pdfdetach', ['-upw', password, '-saveall', '-o', dir, file]);
    if (r.code !== 0) throw new Error(`pdfdetach: ${r.stderr}`);
    const out = new Map<string, Buffer>();
    for (const n of await readdir(dir)) out.set(n, await readFile(join(dir, n)));
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `pdftoppm` renders page `page` at 40 dpi to a PNG under `prefix`; returns its path. */
export async function renderPage(file: string, password: string, page: number, prefix: string): Promise<string> {
  const r = await reader('pdftoppm', ['-upw', password, '-f', String(page), '-l', String(page), '-r', '40', '-png', '-singlefile', file, prefix]);
  if (r.code !== 0) throw new Error(`pdftoppm: ${r.stderr}`);
  return `${prefix}.png`;
}

/** Share of pixels that are not near-white in a PNG (via pdftoppm's PGM output instead, simpler to read). */
export async function inkShare(file: string, password: string, page: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-ink-'));
  try {
    const r = await reader('pdftoppm', ['-upw', password, '-f', String(page), '-l', String(page), '-r', '30', '-gray', '-singlefile', file, join(dir, 'p')]);
    if (r.code !== 0) throw new Error(`pdftoppm: ${r.stderr}`);
    const pgm = await readFile(join(dir, 'p.pgm'));
    // P5 header: magic, width, height, maxval, each separated by whitespace.
    const m = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(pgm.subarray(0, 64).toString('latin1'))!;
    const pixels = pgm.subarray(m[0].length);
    let ink = 0;
    for (const v of pixels) if (v < 200) ink++;
    return ink / pixels.length;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every link annotation's URI on every page, as MuPDF reads them (the file decrypted with the password). */
const LINKS = `
var doc = new PDFDocument(scriptArgs[0]);
if (doc.needsPassword() && !doc.authenticatePassword(scriptArgs[1])) throw new Error("password refused");
var out = [];
for (var i = 0; i < doc.countPages(); i++) {
  var annots = doc.findPage(i).get("Annots");
  for (var j = 0; annots && j < annots.length; j++) {
    var a = annots.get(j);
    if (a.get("Subtype").toString() === "/Link" && a.get("A").get("S").toString() === "/URI") out.push(a.get("A").get("URI").asString());
  }
}
print(JSON.stringify(out));
`;

/** The URIs of the PDF's link annotations (the Reply button's among them), read by MuPDF with the password. */
export async function pdfLinks(file: string, password: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-links-'));
  try {
    const script = join(dir, 'links.js');
    await writeFile(script, LINKS);
    return JSON.parse((await run('mutool', ['run', script, file, password])).stdout.trim()) as string[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
