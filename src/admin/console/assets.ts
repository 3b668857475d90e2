/**
 * The console's own style sheet and script, served from /assets/ with a content hash as ETag (the
 * admin CSP allows 'self' and nothing inline). Kept in the code like the portal's, so the build
 * needs no bundler and the role reads no file at run time.
 *
 * The script only improves pages that work without it: it asks before destructive changes, takes
 * the caret to the line of a policy problem, and lets Tab indent in the policy editor.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';

const CSS = `
:root {
  --fg: #1b2330; --muted: #5d6878; --line: #dfe3ea; --bg: #f3f5f8; --card: #fff;
  --accent: #2357c6; --accent-dark: #1a449e; --side: #131b28; --side-fg: #c9d2e0; --side-active: #2a3a55;
  --err: #b42318; --err-bg: #fdf0ee; --ok: #1a7f45; --ok-bg: #ecf8f1; --warn: #9a6100; --warn-bg: #fdf6e7;
  --mono: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace;
}
* { box-sizing: border-box; }
html { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; min-height: 100vh; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: var(--card); padding: 4px 8px; z-index: 2; }
code, pre, .mono { font-family: var(--mono); font-size: 12.5px; }
small { display: block; color: var(--muted); font-size: 12px; font-weight: 400; }

body.console { display: flex; }
nav.side { width: 216px; flex: none; background: var(--side); color: var(--side-fg); min-height: 100vh; padding: 18px 0; }
nav.side .brand { display: flex; gap: 10px; align-items: center; padding: 0 18px 18px; border-bottom: 1px solid #23304a; margin-bottom: 10px; }
nav.side .brand strong { color: #fff; font-size: 16px; letter-spacing: .2px; }
nav.side .brand small { color: #8d9ab0; overflow-wrap: anywhere; }
.mark { width: 28px; height: 28px; border-radius: 7px; background: linear-gradient(135deg, #3f7cf0, #1c3f94); position: relative; flex: none; }
.mark::after { content: ""; position: absolute; left: 8px; top: 6px; width: 12px; height: 16px; border: 2px solid #fff; border-bottom-width: 0; border-radius: 6px 6px 0 0; }
nav.side ul { list-style: none; margin: 0; padding: 0 10px; }
nav.side li a { display: block; padding: 8px 12px; border-radius: 6px; color: var(--side-fg); margin: 2px 0; }
nav.side li a:hover { background: #1d2739; text-decoration: none; }
nav.side li a.current { background: var(--side-active); color: #fff; font-weight: 600; }
nav.side li a.locked { color: #6b778c; }
.frame { flex: 1; min-width: 0; display: flex; flex-direction: column; }
header.bar { display: flex; justify-content: space-between; align-items: center; gap: 16px; padding: 14px 28px; background: var(--card); border-bottom: 1px solid var(--line); }
header.bar h1 { font-size: 19px; margin: 0; font-weight: 600; }
.who { display: flex; align-items: center; gap: 14px; }
.account { display: grid; grid-template-columns: auto auto; column-gap: 8px; align-items: center; font-weight: 600; }
.account small { grid-column: 2; }
.avatar { grid-row: 1 / span 2; width: 30px; height: 30px; border-radius: 50%; background: #e3eafa; color: var(--accent-dark); display: grid; place-items: center; font-weight: 700; }
main { padding: 22px 28px 40px; max-width: 1280px; width: 100%; }

.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin-bottom: 18px; }
.card > h2 { font-size: 15px; margin: 0 0 12px; display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
.card > h2 small { display: inline; }
.card > h2 button { font-size: 13px; }
label small { display: inline; margin-left: 4px; }
td.age { white-space: nowrap; }
.muted-card { background: transparent; border-style: dashed; }
.grid { display: grid; gap: 18px; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); gap: 10px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; background: #fafbfd; color: var(--fg); }
.tile:hover { border-color: var(--accent); text-decoration: none; }
.tile .n { font-size: 24px; font-weight: 650; display: block; }
.tile .l { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .4px; }
.tile.warn .n { color: var(--warn); }
.tile.bad .n { color: var(--err); }

table.list { width: 100%; border-collapse: collapse; }
table.list th { text-align: left; font-size: 12px; text-transform: uppercase; letter-spacing: .4px; color: var(--muted); font-weight: 600; padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
table.list td { padding: 9px 10px; border-bottom: 1px solid #eef1f5; vertical-align: top; overflow-wrap: anywhere; }
table.list tr:last-child td { border-bottom: 0; }
table.list tr:hover td { background: #f8fafc; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.do { white-space: nowrap; text-align: right; }
.empty { color: var(--muted); padding: 14px 0; text-align: center; }

.badge { display: inline-block; font-size: 11.5px; font-weight: 600; border-radius: 10px; padding: 1px 8px; background: #eef1f5; color: var(--muted); white-space: nowrap; }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.bad { background: var(--err-bg); color: var(--err); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.info { background: #e8effc; color: var(--accent-dark); }

.notice { padding: 10px 14px; border-radius: 6px; border: 1px solid var(--line); background: var(--card); margin: 0 0 16px; }
.notice.error { border-color: #f1b8b0; background: var(--err-bg); color: var(--err); }
.notice.ok { border-color: #a9dcbf; background: var(--ok-bg); color: var(--ok); }
.notice.warn { border-color: #f0d9a6; background: var(--warn-bg); color: var(--warn); }
.muted { color: var(--muted); }
.hint { color: var(--muted); font-size: 12.5px; margin: 4px 0 0; }

label { display: block; font-weight: 600; margin: 10px 0 4px; font-size: 13px; }
input[type=text], input[type=password], input[type=search], input[type=number], select, textarea {
  width: 100%; padding: 7px 10px; border: 1px solid #c9d0db; border-radius: 6px; font: inherit; background: #fff; color: var(--fg);
}
input:focus, select:focus, textarea:focus { outline: 2px solid #a9c1f2; border-color: var(--accent); }
textarea { resize: vertical; }
input[type=file] { font: inherit; }
fieldset { border: 0; margin: 0; padding: 0; min-width: 0; }
.filters { display: flex; gap: 10px; align-items: flex-end; flex-wrap: wrap; }
.filters > div { min-width: 150px; flex: 1; }
.filters label { margin-top: 0; }
.filters.narrow { max-width: 560px; }
.row { display: flex; gap: 12px; flex-wrap: wrap; }
.row > * { flex: 1; min-width: 180px; }

button, .button { display: inline-block; padding: 7px 14px; border: 1px solid var(--accent); border-radius: 6px; background: var(--accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; text-decoration: none; line-height: 1.4; white-space: nowrap; }
button:hover, .button:hover { background: var(--accent-dark); text-decoration: none; }
button.secondary, .button.secondary { background: var(--card); color: var(--accent); border-color: #b9c8e8; }
button.secondary:hover, .button.secondary:hover { background: #f0f4fc; }
button.danger { background: var(--card); color: var(--err); border-color: #eab0a8; }
button.danger:hover { background: var(--err-bg); }
button.small, .button.small { padding: 3px 10px; font-size: 12.5px; }
button:disabled, button:disabled:hover { background: #eef0f3; color: #98a1ae; border-color: #dde1e7; cursor: not-allowed; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 14px; align-items: center; }
form.inline { display: inline; margin: 0; }
details summary { cursor: pointer; color: var(--accent); font-size: 12.5px; margin-top: 4px; }
details .row { margin-top: 6px; }
label.inline-check { display: inline; font-weight: 400; margin: 0 8px 0 0; }

dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre.block { background: #f6f8fb; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto; max-height: 560px; margin: 0; white-space: pre; }

.editor textarea { font-family: var(--mono); font-size: 13px; line-height: 1.5; min-height: 320px; tab-size: 2; white-space: pre; }
ol.problems { margin: 0; padding: 0; list-style: none; }
ol.problems li { padding: 6px 10px; border-left: 3px solid var(--err); background: var(--err-bg); margin-bottom: 6px; border-radius: 0 6px 6px 0; }
ol.problems a { color: var(--err); font-weight: 600; }
ol.listing { font-family: var(--mono); font-size: 12.5px; margin: 0; padding: 8px 0 8px 48px; background: #f6f8fb; border: 1px solid var(--line); border-radius: 6px; max-height: 420px; overflow: auto; }
ol.listing li { white-space: pre; padding-left: 8px; color: var(--fg); }
ol.listing li::marker { color: #9aa4b2; }
ol.listing li.bad { background: var(--err-bg); box-shadow: inset 3px 0 0 var(--err); }
ol.listing li.bad::marker { color: var(--err); font-weight: 700; }
.explained { font-family: var(--mono); font-size: 12.5px; }

body.bare { display: grid; place-items: center; background: linear-gradient(160deg, #131b28 0%, #1d2c47 55%, #27426f 100%); }
body.bare main { max-width: 380px; padding: 0; }
body.bare .brand.big { display: flex; gap: 12px; align-items: center; color: #fff; margin-bottom: 18px; justify-content: center; }
body.bare .brand.big strong { font-size: 22px; display: block; }
body.bare .brand.big small { color: #aab6cb; }
body.bare .mark { width: 36px; height: 36px; }
body.bare .mark::after { left: 11px; top: 8px; width: 14px; height: 20px; }
body.bare .card { padding: 24px 26px; box-shadow: 0 12px 40px rgba(0,0,0,.25); }
body.bare .card h2 { font-size: 17px; }
body.bare button { width: 100%; margin-top: 16px; padding: 9px; }
`;

const JS = `'use strict';
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  });
  var editor = document.getElementById('policy-text');
  if (!editor) return;
  // A problem's link takes the caret to its line (and column) in the editor.
  document.querySelectorAll('a[data-line]').forEach(function (a) {
    a.addEventListener('click', function (e) {
      e.preventDefault();
      var line = parseInt(a.getAttribute('data-line'), 10) || 1;
      var col = parseInt(a.getAttribute('data-column'), 10) || 1;
      var lines = editor.value.split('\\n');
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      var end = start + (lines[line - 1] || '').length;
      editor.focus();
      editor.setSelectionRange(Math.min(start + col - 1, end), end);
      var lh = parseFloat(window.getComputedStyle(editor).lineHeight) || 19;
      editor.scrollTop = Math.max(0, (line - 4) * lh);
    });
  });
  // Tab indents by two spaces (YAML), as in an editor; Shift+Tab leaves the field as usual.
  editor.addEventListener('keydown', function (e) {
    if (e.key !== 'Tab' || e.shiftKey || editor.readOnly) return;
    e.preventDefault();
    var s = editor.selectionStart;
    editor.setRangeText('  ', s, editor.selectionEnd, 'end');
  });
});
`;

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
}

function asset(type: string, body: string): Asset {
  const b = Buffer.from(body, 'utf8');
  return { type, body: b, etag: `"${createHash('sha256').update(b).digest('base64url').slice(0, 22)}"` };
}

const STYLE = asset('text/css; charset=utf-8', CSS);
const SCRIPT = asset('text/javascript; charset=utf-8', JS);

export function registerAssets(app: FastifyInstance): void {
  const serve = (a: Asset) => async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('etag', a.etag).header('cache-control', 'private, max-age=3600');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  app.get('/assets/console.css', { schema: { hide: true } }, serve(STYLE));
  app.get('/assets/console.js', { schema: { hide: true } }, serve(SCRIPT));
}
