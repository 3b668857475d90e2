/**
 * An HTML body as readable text: html-to-text (on htmlparser2, a real HTML parser that accepts any
 * markup the way browsers do) with scripts, styles and the head dropped, images shown by their alt
 * text, and links as numbered references ("the offer [1]") listed under "Links" at the end, so a
 * reader sees where a link goes before following it. Only web and mail links are listed: a
 * javascript: or data: URL is not something a reader can use.
 *
 * Untrusted input: HTML from the message. Nesting and length are bounded; never throws.
 */
import { compile, type FormatCallback } from 'html-to-text';
import { oneLine } from './text.js';

/** Characters of HTML converted; the rest is cut with a note (a 5 MB HTML body is not a letter). */
export const MAX_HTML_CHARS = 2_000_000;
const MAX_LINKS = 500;
const MAX_URL = 2000;

let links: string[] = [];

const refLink: FormatCallback = (elem, walk, builder) => {
  walk(elem.children, builder);
  const href = String((elem as { attribs?: Record<string, string> }).attribs?.href ?? '').trim();
  if (!/^(https?|mailto|ftp):/i.test(href) || links.length >= MAX_LINKS) return;
  let n = links.indexOf(href) + 1;
  if (n === 0) n = links.push(href.length > MAX_URL ? `${href.slice(0, MAX_URL)}…` : href);
  builder.addInline(` [${n}]`, { noWordTransform: true });
};

const altText: FormatCallback = (elem, _walk, builder) => {
  const alt = oneLine(String((elem as { attribs?: Record<string, string> }).attribs?.alt ?? '')).trim();
  if (alt) builder.addInline(`[${alt.slice(0, 200)}]`, { noWordTransform: true });
};

const convert = compile({
  wordwrap: false,
  formatters: { refLink, altText },
  limits: { maxDepth: 200, maxInputLength: MAX_HTML_CHARS + 1, maxChildNodes: 100_000, ellipsis: '…' },
  selectors: [
    { selector: 'a', format: 'refLink' },
    { selector: 'img', format: 'altText' },
    { selector: 'head', format: 'skip' },
    { selector: 'script', format: 'skip' },
    { selector: 'style', format: 'skip' },
    { selector: 'template', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
    { selector: 'h4', options: { uppercase: false } },
    { selector: 'h5', options: { uppercase: false } },
    { selector: 'h6', options: { uppercase: false } },
    { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
  ],
});

export interface HtmlText {
  text: string;
  links: string[];
}

/** The text of an HTML document and the links it refers to, numbered as in the text. */
export function htmlToReadable(html: string): HtmlText {
  links = [];
  const cut = html.length > MAX_HTML_CHARS;
  let text: string;
  try {
    text = convert(cut ? html.slice(0, MAX_HTML_CHARS) : html);
  } catch {
    // html-to-text walks the tree recursively; should anything in it fail, the tags go and the words stay.
    links = [];
    text = html.replace(/<[^>]*>/g, ' ').replace(/[ \t]+/g, ' ');
  }
  if (cut) text += '\n\n[… the rest of this HTML part is not shown]';
  const result = { text, links };
  links = [];
  return result;
}
