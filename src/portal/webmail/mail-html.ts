/**
 * A mail's HTML made safe to put inside the webmail page. sanitize-html keeps a short list of
 * text and table elements and drops everything that runs, loads or submits: script, style,
 * iframe, object, embed, form and input, svg and math, meta and base, event handlers, style and
 * class attributes (the page's CSP refuses inline style anyway, and a mail must not borrow the
 * page's classes or ids). What is left may only:
 * - link out with http(s): or mailto: (never javascript:, data:, or a path of the portal itself),
 *   in a new tab without opener or referrer;
 * - show its own cid: images, served by the portal from the same message;
 * - show remote images only when the reader asked ("show images"); until then each one is a
 *   placeholder, and the CSP of that page allows no other host either (two locks, one key).
 *
 * Untrusted input: the HTML (any size the mailbox holds; sanitize-html's parser is linear).
 */
import sanitizeHtml, { type Attributes, type Tag } from 'sanitize-html';

export interface MailHtmlOptions {
  /** The portal's URL of an image part named by a cid: URL, or null when the message has none such. */
  cidUrl(cid: string): string | null;
  /** The reader pressed "show images": https: images load. */
  showImages: boolean;
  /** The placeholder's text for a blocked image (in the reader's language). */
  blockedText: string;
}

export interface SafeMailHtml {
  html: string;
  /** Remote images replaced by a placeholder: whether "show images" would change anything. */
  blocked: number;
}

const TAGS = [...sanitizeHtml.defaults.allowedTags, 'img', 'font', 'center', 'big', 'tt', 'strike', 'del', 'ins'];
/** Elements whose content is not text for the reader and goes with them. */
const DROPPED_WITH_CONTENT = ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'head', 'template', 'object', 'iframe', 'svg', 'math'];
const LINK = /^(?:https?:\/\/|mailto:)/i;
/** Characters browsers skip inside a URL's scheme ("java\tscript:"): compared without them. */
const URL_NOISE = /[\x00-\x20\x7f]/g;

export function sanitizeMailHtml(html: string, o: MailHtmlOptions): SafeMailHtml {
  let blocked = 0;
  const out = sanitizeHtml(html, {
    allowedTags: TAGS,
    disallowedTagsMode: 'discard',
    nonTextTags: DROPPED_WITH_CONTENT,
    allowedAttributes: {
      a: ['href', 'title', 'rel', 'target'],
      img: ['src', 'alt', 'title', 'width', 'height'],
      td: ['colspan', 'rowspan', 'align', 'valign'],
      th: ['colspan', 'rowspan', 'align', 'valign'],
      table: ['border', 'cellpadding', 'cellspacing'],
      ol: ['start', 'type'],
      span: ['class'],
      '*': ['dir', 'lang'],
    },
    allowedClasses: { span: ['blocked-image'] },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: ['https'] },
    allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
    allowProtocolRelative: false,
    transformTags: {
      a: (_tag, attribs) => {
        const href = (attribs.href ?? '').replace(URL_NOISE, '');
        const keep: Attributes = LINK.test(href) ? { href: attribs.href!.trim() } : {};
        if (attribs.title) keep.title = attribs.title;
        return { tagName: 'a', attribs: { ...keep, rel: 'noopener noreferrer', target: '_blank' } };
      },
      img: (_tag, attribs): Tag => {
        const src = (attribs.src ?? '').replace(URL_NOISE, '');
        const rest: Attributes = {};
        for (const k of ['alt', 'title', 'width', 'height'] as const) if (attribs[k] !== undefined) rest[k] = attribs[k]!;
        if (/^cid:/i.test(src)) {
          const url = o.cidUrl(src);
          if (url) return { tagName: 'img', attribs: { ...rest, src: url } };
          return { tagName: 'span', attribs: {}, text: attribs.alt ? `[${attribs.alt}]` : '' };
        }
        if (/^https:\/\//i.test(src) && o.showImages) return { tagName: 'img', attribs: { ...rest, src: attribs.src!.trim() } };
        if (/^https?:\/\//i.test(src)) {
          blocked++;
          return { tagName: 'span', attribs: { class: 'blocked-image' }, text: attribs.alt ? `[${o.blockedText}: ${attribs.alt}]` : `[${o.blockedText}]` };
        }
        // data:, javascript:, relative paths into the portal: nothing to show.
        return { tagName: 'span', attribs: {}, text: '' };
      },
    },
  });
  return { html: out, blocked };
}

/** Image types the portal shows from a message (raster only: an SVG can carry script). */
export const INLINE_IMAGE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
