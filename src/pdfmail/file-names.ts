/**
 * Names for embedded files. A reader saves an attachment under the name in the PDF, so a name from
 * the message must not climb out of the folder ("../../.bashrc"), hide its real extension behind a
 * bidi override ("invoice\u202Efdp.exe"), carry control characters, or be one a file system refuses
 * (empty, "..", 300 bytes long). Two attachments with the same name stay two files.
 *
 * Untrusted input: names from Content-Disposition / Content-Type and subjects (already RFC 2047 /
 * RFC 2231 decoded by mime/). Linear in the name.
 */

/** Characters that do not belong in a file name on some system a reader uses (Windows is the strictest). */
const UNSAFE = /[\/\\:*?"<>|\x00-\x1F\x7F-\x9F\u2028\u2029\uFFFE\uFFFF]/g;
/** Bidi controls in a name are an attack, not typography: replaced where they were, so it shows. */
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Characters kept of a name: file systems allow 255 bytes, and a name this long is already unusual. */
const MAX_CHARS = 120;

/** A name safe to save under, or "" when nothing usable is left. */
export function safeName(raw: string): string {
  let name = raw.normalize('NFC').replace(BIDI, '_').replace(LONE_SURROGATE, '_').replace(UNSAFE, '_').replace(/\s+/g, ' ').trim();
  // Leading dots hide a file or name a parent folder; trailing dots and spaces Windows drops.
  name = name.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (/^_*$/.test(name)) return '';
  if (name.length > MAX_CHARS) {
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 12 ? name.slice(dot) : '';
    name = `${[...name.slice(0, MAX_CHARS - ext.length)].join('').replace(/[\uD800-\uDBFF]$/, '')}${ext}`;
  }
  // Device names Windows will not create a file under, whatever the extension.
  if (/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(name)) name = `_${name}`;
  return name;
}

/** The file name a forwarded message is embedded under: its own name, else its subject, + ".eml". */
export function emlName(given: string, subject: string, n: number): string {
  const base = safeName(given) || safeName(subject.slice(0, 80)) || `forwarded-message-${n}`;
  return /\.eml$/i.test(base) ? base : `${base}.eml`;
}

/**
 * Every name made safe, empty ones "attachment-N.bin" (N its place among the attachments), and a
 * repeated name numbered like a desktop does: "report.pdf", "report (2).pdf". Compared without
 * case, as Windows and macOS file systems compare.
 */
export function distinctNames(raw: readonly string[]): string[] {
  const taken = new Set<string>();
  return raw.map((r, i) => {
    const name = safeName(r) || `attachment-${i + 1}.bin`;
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    let candidate = name;
    for (let k = 2; taken.has(candidate.toLowerCase()); k++) candidate = `${stem} (${k})${ext}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}
