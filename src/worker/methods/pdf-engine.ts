/**
 * The heavy half of PDF mail (pdf-lib, fontkit, the HTML-to-text renderer), loaded by pdf.ts on
 * the first PDF a worker makes instead of at the worker's start: they cost about 0.7 s of CPU to
 * import, paid by every worker process (two per gateway) whether or not a rule ever says pdf.
 */
export { loadFonts } from '../../pdfmail/fonts.js';
export { renderMailPdf } from '../../pdfmail/render.js';
export { saveEncrypted } from '../../pdfmail/security.js';
