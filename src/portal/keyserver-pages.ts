/**
 * The key server's two pages for people, in the portal's layout (page.ts) and languages: the
 * S/MIME certificates of an address (/certs/<address>) and the HKP index without options=mr.
 * Programs get the files and the machine-readable index instead (certificates.ts, hkp.ts).
 *
 * Untrusted input: none of the request reaches these but a canonical address; user ids and
 * certificate names come from our users' keys and are escaped by the html template.
 */
import { X509Certificate } from 'node:crypto';
import type { PublicCertificate } from './cert-file.js';
import { html } from './html.js';
import { addTexts, t, type Lang } from './i18n.js';
import type { DescribedKey } from './key-index.js';
import type { PageContent } from './page.js';

addTexts({
  en: {
    'keys.certs.title': 'S/MIME certificates of {address}',
    'keys.certs.intro': 'Import one of these into your mail program to send encrypted mail to {address}. Compare the fingerprint with the one {address} gives you by another way.',
    'keys.certs.subject': 'Subject',
    'keys.certs.issuer': 'Issued by',
    'keys.certs.valid': 'Valid',
    'keys.certs.validRange': '{from} to {to}',
    'keys.certs.serial': 'Serial number',
    'keys.certs.fingerprint': 'SHA-256 fingerprint',
    'keys.certs.bundle': 'All, with the issuing chain (.p7c)',
    'keys.certs.newestCer': 'The newest (.cer)',
    'keys.certs.newestPem': 'The newest (.pem)',
    'keys.index.title': 'OpenPGP keys',
    'keys.index.created': 'created {date}',
    'keys.index.revoked': 'revoked',
    'keys.index.expired': 'expired',
    'keys.index.download': 'Download',
  },
  de: {
    'keys.certs.title': 'S/MIME-Zertifikate von {address}',
    'keys.certs.intro': 'Importieren Sie eines davon in Ihr E-Mail-Programm, um verschlüsselte Nachrichten an {address} zu senden. Vergleichen Sie den Fingerabdruck mit dem, den {address} Ihnen auf anderem Weg nennt.',
    'keys.certs.subject': 'Inhaber',
    'keys.certs.issuer': 'Ausgestellt von',
    'keys.certs.valid': 'Gültig',
    'keys.certs.validRange': '{from} bis {to}',
    'keys.certs.serial': 'Seriennummer',
    'keys.certs.fingerprint': 'SHA-256-Fingerabdruck',
    'keys.certs.bundle': 'Alle, mit der ausstellenden Kette (.p7c)',
    'keys.certs.newestCer': 'Das neueste (.cer)',
    'keys.certs.newestPem': 'Das neueste (.pem)',
    'keys.index.title': 'OpenPGP-Schlüssel',
    'keys.index.created': 'erstellt am {date}',
    'keys.index.revoked': 'widerrufen',
    'keys.index.expired': 'abgelaufen',
    'keys.index.download': 'Herunterladen',
  },
});

const day = (d: Date) => d.toISOString().slice(0, 10);

/** Colon-separated upper-case hex, as certificate viewers print fingerprints. */
export const colonHex = (hex: string) => hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');

export function certificatesPage(lang: Lang, address: string, certs: readonly PublicCertificate[]): PageContent {
  const base = `/certs/${encodeURIComponent(address)}`;
  const items = certs.map((c) => {
    // Node prints names in the order they are written, one attribute a line (RFC 4514 reverses it).
    const x = new X509Certificate(c.der);
    const name = (dn: string) => dn.split('\n').join(', ');
    const cn = /^CN=(.*)$/m.exec(x.subject)?.[1];
    return html`<section class="card"><h2>${cn ?? name(x.subject)}</h2><dl class="meta">
<dt>${t(lang, 'keys.certs.subject')}</dt><dd>${name(x.subject)}</dd>
<dt>${t(lang, 'keys.certs.issuer')}</dt><dd>${name(x.issuer)}</dd>
<dt>${t(lang, 'keys.certs.valid')}</dt><dd>${t(lang, 'keys.certs.validRange', { from: day(c.notBefore), to: day(c.notAfter) })}</dd>
<dt>${t(lang, 'keys.certs.serial')}</dt><dd><code>${colonHex(x.serialNumber)}</code></dd>
<dt>${t(lang, 'keys.certs.fingerprint')}</dt><dd><code>${colonHex(c.fingerprint)}</code></dd>
</dl></section>`;
  });
  return {
    lang,
    title: t(lang, 'keys.certs.title', { address }),
    body: html`<h1>${t(lang, 'keys.certs.title', { address })}</h1>
<p>${t(lang, 'keys.certs.intro', { address })}</p>
${items}
<p class="actions"><a class="button" href="${base}.p7c">${t(lang, 'keys.certs.bundle')}</a>
<a class="button secondary" href="${base}.cer">${t(lang, 'keys.certs.newestCer')}</a>
<a class="button secondary" href="${base}.pem">${t(lang, 'keys.certs.newestPem')}</a></p>`,
  };
}

export function keyIndexPage(lang: Lang, keys: readonly DescribedKey[], now: number): PageContent {
  const items = keys.map((k) => {
    const i = k.info;
    const expired = i.expires !== null && i.expires.getTime() <= now;
    const state = i.revoked ? t(lang, 'keys.index.revoked') : expired ? t(lang, 'keys.index.expired') : '';
    return html`<section class="card"><h2><code>${colonHex(i.fingerprint).replace(/:/g, ' ')}</code></h2>
<p class="muted">${i.algorithm}${i.bits ? ` ${i.bits}` : ''}, ${t(lang, 'keys.index.created', { date: day(i.created) })}${state ? `, ${state}` : ''}</p>
<ul>${i.userIds.map((u) => html`<li>${u}</li>`)}</ul>
<p class="actions"><a class="button" href="/pks/lookup?op=get&amp;search=0x${i.fingerprint}">${t(lang, 'keys.index.download')}</a></p></section>`;
  });
  return { lang, title: t(lang, 'keys.index.title'), body: html`<h1>${t(lang, 'keys.index.title')}</h1>${items}` };
}
