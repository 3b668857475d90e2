/**
 * The portal's own style sheet and script, served from /assets/ with a content hash as ETag.
 * They are the only ones the pages load (the Content-Security-Policy allows 'self' and nothing
 * inline), kept in the code so the build needs no bundler and the role reads no file at run time.
 *
 * The script only improves what works without it: it asks before a delete, shows the chosen
 * files' names and sizes, and sends the "back" links back in history.
 */
import { createHash } from 'node:crypto';

const CSS = `
:root { --fg: #1d2430; --muted: #5b6472; --accent: #1f5fbf; --accent-fg: #fff; --line: #d9dee6; --bg: #f5f7fa; --card: #fff; --err: #a3261b; --ok: #1c6b37; }
* { box-sizing: border-box; }
html { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; min-height: 100vh; display: flex; flex-direction: column; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: var(--card); padding: 4px 8px; }
header.top { display: flex; align-items: center; justify-content: space-between; gap: 16px; padding: 12px 24px; background: var(--card); border-bottom: 1px solid var(--line); }
.brand { display: flex; align-items: center; gap: 12px; font-weight: 600; font-size: 1.1rem; }
.logo { max-height: 40px; max-width: 160px; }
main { flex: 1; width: 100%; max-width: 960px; margin: 24px auto; padding: 0 16px; }
main.narrow { max-width: 560px; }
footer.bottom { padding: 12px 24px; color: var(--muted); font-size: .85rem; text-align: center; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 20px 24px; margin-bottom: 16px; }
h1 { font-size: 1.5rem; margin: 0 0 16px; }
h2 { font-size: 1.2rem; margin: 0 0 12px; }
label { display: block; font-weight: 600; margin: 12px 0 4px; }
input[type=text], input[type=password], input[type=email], textarea { width: 100%; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; background: #fff; }
input[readonly] { background: var(--bg); color: var(--muted); }
textarea { min-height: 14em; resize: vertical; }
button, .button { display: inline-block; padding: 8px 16px; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: var(--accent-fg); font: inherit; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: var(--card); color: var(--accent); }
button.danger { background: var(--card); color: var(--err); border-color: var(--err); }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 16px; align-items: center; }
.notice { padding: 10px 14px; border-radius: 6px; border: 1px solid var(--line); background: var(--card); }
.notice.error { border-color: var(--err); color: var(--err); }
.notice.ok { border-color: var(--ok); color: var(--ok); }
.muted { color: var(--muted); }
.hint { color: var(--muted); font-size: .9rem; margin: 4px 0 0; }
table.list { width: 100%; border-collapse: collapse; background: var(--card); }
table.list th, table.list td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.list tr.unread td { font-weight: 600; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 12px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.mailbody { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .95rem; }
.mailhtml { overflow-wrap: anywhere; }
.mailhtml img { max-width: 100%; }
ul.files { padding-left: 20px; }
.inline { display: inline; }
header.top form { margin: 0; }
.account { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.badge { font-size: .75rem; font-weight: 400; color: var(--accent); border: 1px solid var(--accent); border-radius: 4px; padding: 0 4px; }
td.num { text-align: right; white-space: nowrap; }
.blocked-image { display: inline-block; color: var(--muted); border: 1px dashed var(--line); padding: 0 4px; font-size: .85rem; }
fieldset.recipients { border: 0; padding: 0; margin: 12px 0 0; }
fieldset.recipients legend { font-weight: 600; padding: 0; }
label.check { font-weight: 400; margin: 4px 0; }
article.message h2 { margin-top: 24px; }
`;

const JS = `'use strict';
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  });
  document.querySelectorAll('a[data-back]').forEach(function (a) {
    a.addEventListener('click', function (e) {
      if (window.history.length > 1) { e.preventDefault(); window.history.back(); }
    });
  });
  document.querySelectorAll('input[type=file][data-list]').forEach(function (input) {
    var out = document.getElementById(input.getAttribute('data-list'));
    if (!out) return;
    input.addEventListener('change', function () {
      out.textContent = '';
      Array.prototype.forEach.call(input.files, function (f) {
        var li = document.createElement('li');
        li.textContent = f.name + ' (' + Math.ceil(f.size / 1024) + ' KB)';
        out.appendChild(li);
      });
    });
  });
});
`;

export interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

function asset(type: string, body: string | Buffer): Asset {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { type, body: b, etag: `"${createHash('sha256').update(b).digest('base64url').slice(0, 22)}"` };
}

export const STYLE = asset('text/css; charset=utf-8', CSS);
export const SCRIPT = asset('text/javascript; charset=utf-8', JS);

/** The logo file's bytes as an asset (read once at start: the role reads no config file later). */
export function logoAsset(bytes: Buffer, file: string): Asset {
  const type = /\.svg$/i.test(file) ? 'image/svg+xml' : /\.png$/i.test(file) ? 'image/png' : 'image/jpeg';
  return asset(type, bytes);
}
