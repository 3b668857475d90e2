/**
 * Remote references taken out of HTML bodies. Decrypted content that nothing authenticates (CBC
 * in EnvelopedData, no valid signature inside) may have been altered by whoever relayed the
 * ciphertext — EFAIL's CBC gadgets turn it into HTML that loads a URL carrying the plaintext. With
 * every automatic remote load disabled the gadget has no channel. Links a user must click stay.
 *
 * Untrusted input: the HTML of incoming mail; every pattern here is linear (no nested
 * quantifiers), and a rewrite never fails.
 */
import { decodeBody, encodeBase64Lines, multipartLayout, newBoundary, readEntity } from './entity.js';
import { splitHeader } from './header-fields.js';

/** A URL that is not inside the message (cid:, mid:) or the document itself (data:, about:, #). */
const REMOTE = String.raw`(?!(?:cid|mid|data|about):)(?:[a-z][a-z0-9+.-]*:|//)`;
/** Attributes a browser or mail client follows without a click. */
const AUTO_ATTR = new RegExp(String.raw`(\s)(src|srcset|background|poster|data|action|formaction|dynsrc|lowsrc|ping|xlink:href)(\s*=\s*["']?\s*)(?=${REMOTE})`, 'gi');
/** <link href=…> (style sheets, prefetch) loads by itself; <a href=…> needs a click and stays. */
const LINK_HREF = new RegExp(String.raw`(<link\b[^>]{0,2000}?\s)href(\s*=\s*["']?\s*)(?=${REMOTE})`, 'gi');
const CSS_URL = /url\(\s*(["']?)\s*(?!data:|cid:)[a-z][a-z0-9+.-]*:/gi;
const CSS_IMPORT = /@import\b/gi;
const META_REFRESH = /<meta\b[^>]{0,2000}?http-equiv\s*=\s*["']?\s*refresh[^>]{0,2000}>/gi;

export function neutraliseRemoteContent(html: string): { html: string; removed: number } {
  let removed = 0;
  const count = <T extends unknown[]>(f: (...a: T) => string) => (...a: T) => {
    removed++;
    return f(...a);
  };
  const out = html
    .replace(AUTO_ATTR, count((_m: string, sp: string, attr: string, eq: string) => `${sp}data-postern-removed-${attr}${eq}`))
    .replace(LINK_HREF, count((_m: string, before: string, eq: string) => `${before}data-postern-removed-href${eq}`))
    .replace(CSS_URL, count((_m: string, q: string) => `url(${q}about:invalid#`))
    .replace(CSS_IMPORT, count(() => '@postern-removed-import'))
    .replace(META_REFRESH, count(() => '<meta name="postern-removed-refresh">'));
  return { html: out, removed };
}

/**
 * The entity with every text/html leaf passed through `neutraliseRemoteContent` (re-encoded as
 * base64, charset kept), multiparts rebuilt around them; the other parts byte for byte.
 */
export function stripRemoteContent(entity: Buffer, depth = 0): { entity: Buffer; removed: number } {
  const e = readEntity(entity);
  const boundary = e.type.params.get('boundary');
  if (e.type.type.startsWith('multipart/') && boundary && depth < 20) {
    const layout = multipartLayout(e.body, boundary);
    let removed = 0;
    const parts = layout.parts.map((p) => {
      const r = stripRemoteContent(p, depth + 1);
      removed += r.removed;
      return r.entity;
    });
    if (!removed) return { entity, removed: 0 };
    const nb = newBoundary(Buffer.concat(parts));
    const { header } = splitHeader(entity);
    const head = header.toString('latin1').replace(/boundary\s*=\s*("[^"]*"|[^;\s]+)/i, `boundary="${nb}"`);
    const body = [layout.preamble.toString('latin1'), ...parts.map((p) => `\r\n--${nb}\r\n${p.toString('latin1')}`), `\r\n--${nb}--\r\n`].join('');
    return { entity: Buffer.from(`${head}\r\n${body.replace(/^\r\n/, '')}`, 'latin1'), removed };
  }
  if (e.type.type !== 'text/html') return { entity, removed: 0 };
  // Latin-1 keeps every byte of any charset; the patterns are ASCII.
  const { html, removed } = neutraliseRemoteContent(decodeBody(e).toString('latin1'));
  if (!removed) return { entity, removed: 0 };
  const { header } = splitHeader(entity);
  const kept = header
    .toString('latin1')
    .split(/\r?\n(?![ \t])/)
    .filter((l) => l && !/^content-transfer-encoding\s*:/i.test(l));
  return { entity: Buffer.from(`${kept.join('\r\n')}\r\nContent-Transfer-Encoding: base64\r\n\r\n${encodeBase64Lines(Buffer.from(html, 'latin1'))}`, 'latin1'), removed };
}
