/**
 * The independent PDF readers as test oracles: poppler (pdftotext, pdfdetach, pdfinfo, pdftoppm),
 * MuPDF (mutool draw, mutool run) and qpdf. Each takes a file path; files live in a temp dir the
 * test removes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { maxBuffer: 256 * 1024 * 1024 }).toString('utf8');

/** poppler's text, pages in order (raw order: the order the text was drawn in). */
export const popplerText = (file: string, extra: string[] = []) => run('pdftotext', [...extra, '-raw', '-enc', 'UTF-8', file, '-']);

/** MuPDF's text of every page. */
export const mupdfText = (file: string) => run('mutool', ['draw', '-q', '-F', 'txt', '-o', '-', file]);

export const pdfInfo = (file: string) => run('pdfinfo', ['-enc', 'UTF-8', file]);

/** qpdf --check; throws (non-zero exit) when the file has errors. */
export const qpdfCheck = (file: string) => run('qpdf', ['--check', file]);

/** poppler's pdfdetach -saveall into `dir`: file name → bytes. */
export function popplerAttachments(file: string, dir: string): Map<string, Buffer> {
  mkdirSync(dir, { recursive: true });
  execFileSync('pdfdetach', ['-saveall', '-enc', 'UTF-8', '-o', dir, file]);
  return new Map(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n))]));
}

const MUPDF_DETACH = `
var doc = new PDFDocument(scriptArgs[0]);
var names = doc.getTrailer().get("Root").get("Names").get("EmbeddedFiles").get("Names");
var list = [];
for (var i = 1; i < names.length; i += 2) {
  var spec = names.get(i);
  spec.get("EF").get("F").readStream().save(scriptArgs[1] + "/" + (i - 1) / 2);
  list.push(spec.get("UF").asString());
}
print(JSON.stringify(list));
`;

/**
 * MuPDF's view of the EmbeddedFiles name tree (mutool extract in 1.21 saves fonts and images only):
 * each file specification's /UF name → the bytes MuPDF decodes from its stream.
 */
export function mupdfAttachments(file: string, dir: string): Map<string, Buffer> {
  mkdirSync(dir, { recursive: true });
  const script = join(dir, 'detach.js');
  writeFileSync(script, MUPDF_DETACH);
  const names = JSON.parse(run('mutool', ['run', script, file, dir]).trim()) as string[];
  return new Map(names.map((n, i) => [n, readFileSync(join(dir, String(i)))]));
}

/** Pixels that are not white on page `page` rendered by pdftoppm at 50 dpi (grey scale). */
export function inkedPixels(file: string, page: number, dir: string): number {
  const base = join(dir, `page-${page}`);
  execFileSync('pdftoppm', ['-r', '50', '-gray', '-f', String(page), '-l', String(page), '-singlefile', file, base]);
  const pgm = readFileSync(`${base}.pgm`);
  // P5 header: magic, width, height, maxval, each followed by white space.
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(pgm.subarray(0, 64).toString('latin1'))!;
  const pixels = pgm.subarray(header[0].length);
  let inked = 0;
  for (const p of pixels) if (p < 200) inked++;
  return inked;
}
