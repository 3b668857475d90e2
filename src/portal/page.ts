/**
 * The portal's page layout: one HTML document per response, made on the server. The header names
 * the organisation (and shows its logo); the only script and style sheet are our own files under
 * /assets/ (assets.ts), which the Content-Security-Policy allows and nothing else.
 */
import { html, type Html } from './html.js';
import { t, type Lang } from './i18n.js';

export interface PageLook {
  organisation: string;
  /** A logo is configured: shown from /assets/logo. */
  logo: boolean;
}

export interface PageContent {
  lang: Lang;
  title: string;
  body: Html;
  /** Shown right of the organisation's name (e.g. the signed-in address and a log-out form). */
  headerExtra?: Html;
  /** A class on <main> for the page's own layout. */
  kind?: string;
}

export function renderPage(look: PageLook, p: PageContent): string {
  return `<!DOCTYPE html>\n${html`<html lang="${p.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${p.title} · ${look.organisation}</title>
<link rel="stylesheet" href="/assets/portal.css">
<script src="/assets/portal.js" defer></script>
</head>
<body>
<a class="skip" href="#main">${t(p.lang, 'page.skip')}</a>
<header class="top">
  <div class="brand">${look.logo ? html`<img src="/assets/logo" alt="" class="logo">` : ''}<span class="org">${look.organisation}</span></div>
  ${p.headerExtra ?? ''}
</header>
<main id="main" class="${p.kind ?? 'page'}">
${p.body}
</main>
<footer class="bottom">${t(p.lang, 'page.footer', { organisation: look.organisation })}</footer>
</body>
</html>`.text}\n`;
}

/** A page that says what went wrong and offers the way back; no detail of the request. */
export function errorPage(look: PageLook, lang: Lang, messageKey: string, vars: Record<string, string | number> = {}): string {
  return renderPage(look, {
    lang,
    title: t(lang, 'error.title'),
    kind: 'page narrow',
    body: html`<h1>${t(lang, 'error.title')}</h1><p class="notice error" role="alert">${t(lang, messageKey, vars)}</p><p><a href="/" data-back>${t(lang, 'error.back')}</a></p>`,
  });
}
