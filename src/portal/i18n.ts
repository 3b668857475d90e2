/**
 * The portal's texts in English and German, chosen per request from Accept-Language (RFC 9110
 * §12.5.4: q-values, the first language we have wins; English otherwise). A missing German text
 * falls back to the English one, so a new page never shows a key.
 */
export type Lang = 'en' | 'de';
export const LANGS: readonly Lang[] = ['en', 'de'];

/** The language for an Accept-Language header (hostile: bounded, parsed leniently). */
export function langOf(header: string | undefined): Lang {
  if (!header) return 'en';
  const ranked = header
    .slice(0, 512)
    .split(',')
    .slice(0, 20)
    .map((part, i) => {
      const [tag, ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p)).find(Boolean);
      return { tag: (tag ?? '').trim().toLowerCase(), q: q ? Number(q[1]) : 1, i };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const r of ranked) {
    const primary = r.tag.split('-')[0] as Lang;
    if (LANGS.includes(primary)) return primary;
  }
  return 'en';
}

type Texts = Record<string, string>;
const registry: Record<Lang, Texts> = { en: {}, de: {} };

/** Each page module adds its own texts (keys prefixed with the page's name). */
export function addTexts(texts: { en: Texts; de: Texts }): void {
  for (const lang of LANGS) {
    for (const [k, v] of Object.entries(texts[lang])) {
      if (lang === 'en' && k in registry.en && registry.en[k] !== v) throw new Error(`portal text ${k} is defined twice`);
      registry[lang][k] = v;
    }
  }
}

/** The text `key` in `lang`, with {name} filled from `vars` (values are text: the caller's html`` escapes them). */
export function t(lang: Lang, key: string, vars: Record<string, string | number> = {}): string {
  const template = registry[lang][key] ?? registry.en[key];
  if (template === undefined) throw new Error(`portal text ${key} is missing`);
  return template.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

addTexts({
  en: {
    'page.skip': 'Skip to content',
    'page.footer': 'Protected mail service of {organisation}',
    'error.title': 'Something went wrong',
    'error.notFound': 'This page does not exist, or the link has expired.',
    'error.forbidden': 'This request was refused. Reload the page and try again.',
    'error.tooLarge': 'The upload is larger than allowed.',
    'error.tooMany': 'Too many requests. Please wait a moment and try again.',
    'error.unavailable': 'The service is not available at the moment. Please try again later.',
    'error.back': 'Back',
    'login.locked': 'Too many failed attempts. Try again in {minutes} minutes.',
  },
  de: {
    'page.skip': 'Zum Inhalt springen',
    'page.footer': 'Dienst für geschützte E-Mail von {organisation}',
    'error.title': 'Etwas ist schiefgegangen',
    'error.notFound': 'Diese Seite gibt es nicht, oder der Link ist abgelaufen.',
    'error.forbidden': 'Diese Anfrage wurde abgelehnt. Laden Sie die Seite neu und versuchen Sie es noch einmal.',
    'error.tooLarge': 'Die Datei ist größer als erlaubt.',
    'error.tooMany': 'Zu viele Anfragen. Bitte warten Sie einen Moment und versuchen Sie es noch einmal.',
    'error.unavailable': 'Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.',
    'error.back': 'Zurück',
    'login.locked': 'Zu viele Fehlversuche. Versuchen Sie es in {minutes} Minuten noch einmal.',
  },
});
