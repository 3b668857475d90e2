/**
 * HTML made on the server from text that is often hostile (subjects, addresses, names of
 * attachments): the `html` template escapes every value it is given unless that value is Html
 * already, so a page cannot forget to escape one. Sanitised mail HTML enters only through
 * `trusted()`, which says at the call site that it was cleaned.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return (v as readonly Value[]).map(render).join('');
  return escapeHtml(String(v));
}

/** A template whose every value is escaped (arrays are joined; null, undefined and false vanish). */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup that was made safe elsewhere (sanitize-html's output, our own constants). */
export function trusted(markup: string): Html {
  return new Html(markup);
}
