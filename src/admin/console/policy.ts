/**
 * The policy pages: the YAML in force in an editor (GET /api/policy) with the version it was read
 * at, Validate (every problem with its line and column, the lines marked in a numbered listing),
 * Explain (what the text in the editor would do with a message from/to), Activate (with the
 * version the edit started from: a policy changed meanwhile is refused, not overwritten), and the
 * versions kept, each viewable and one button from being active again.
 *
 * A browser sends a textarea's lines with CRLF; the text goes to the API with LF, as files are
 * written, so an unchanged policy stays unchanged and its hash stays the one of the file.
 */
import { html, type Html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import { api, apiAnswer, consoleRoute, doneNotice, field, PageRefusal, redirectDone, refusalOf, sendPage, type PageContext } from './kit.js';
import { actionForm, button, when, type Notice } from './layout.js';

/** The API's limit (api/policy.ts MAX_POLICY_TEXT); the form body's is app.ts's (256 KiB). */
const MAX_TEXT = 512 * 1024;
const VERSION_ID = /^[0-9A-Za-z-]{1,64}$/;

interface PolicyFile {
  file: string;
  hash: string;
  modified: string;
  text: string;
}
interface Version {
  id: string;
  time: string;
  by: string | null;
  hash: string;
  size: number;
  active?: boolean;
}
interface Problem {
  file?: string;
  line?: number;
  column?: number;
  key?: string;
  message: string;
}

interface EditorState {
  text: string;
  hash: string;
  problems?: Problem[];
  valid?: { rules: number };
  explained?: string[];
  explain: { from: string; to: string; subject: string };
}

function problemsCard(s: EditorState): Html {
  if (s.valid) return html`<p class="notice ok" role="status" id="validation">The text is valid: ${s.valid.rules} rule${s.valid.rules === 1 ? '' : 's'}.</p>`;
  if (!s.problems) return html``;
  const bad = new Set(s.problems.map((p) => p.line).filter((l): l is number => typeof l === 'number'));
  return html`<section class="card" id="validation"><h2>${s.problems.length} problem${s.problems.length === 1 ? '' : 's'} <small>the policy in force is unchanged</small></h2>
<ol class="problems">${s.problems.map((p) => html`<li>${p.line ? html`<a href="#L${p.line}" data-line="${p.line}" data-column="${p.column ?? 1}">line ${p.line}${p.column ? `, column ${p.column}` : ''}</a>: ` : ''}${p.message}${p.key ? html` <span class="muted">(${p.key})</span>` : ''}</li>`)}</ol>
${bad.size ? html`<ol class="listing" aria-label="The text with the problem lines marked">${s.text.replace(/\n$/, '').split('\n').map((l, i) => html`<li id="L${i + 1}"${bad.has(i + 1) ? html` class="bad"` : ''}>${l || ' '}</li>`)}</ol>` : ''}
</section>`;
}

function editorBody(p: PageContext, s: EditorState, current: PolicyFile, versions: Version[] | null): Html {
  const c = p.caller;
  return html`${problemsCard(s)}
<form method="post" action="/policy" id="policy-form">
<input type="hidden" name="_csrf" value="${p.csrf}">
<input type="hidden" name="hash" value="${s.hash}">
<section class="card editor"><h2>Policy <small>${current.file} · changed ${when(current.modified)} · version <span class="mono">${current.hash.slice(0, 12)}</span>${s.hash !== current.hash ? html` · <strong>edited from an older version</strong>` : ''}</small></h2>
<textarea id="policy-text" name="text" rows="20" spellcheck="false" autocapitalize="none" aria-label="Policy YAML">
${s.text}</textarea>
<div class="actions">
${button(c, 'policy.read', 'Validate', { name: 'do', value: 'validate', look: 'secondary' })}
${button(c, 'policy.change', 'Activate', { name: 'do', value: 'activate' })}
<span class="hint">Activate validates the text, keeps the version in force, writes the file and reloads the gateway.</span>
</div>
</section>
<section class="card" id="explain"><h2>Explain <small>what the text above would do with a message</small></h2>
<div class="row">
<div><label for="x-from">From</label><input type="text" id="x-from" name="from" value="${s.explain.from}" maxlength="320" placeholder="alice@example.com"></div>
<div><label for="x-to">To <small>one or more, separated by spaces</small></label><input type="text" id="x-to" name="to" value="${s.explain.to}" maxlength="4000" placeholder="bob@partner.example"></div>
<div><label for="x-subject">Subject</label><input type="text" id="x-subject" name="subject" value="${s.explain.subject}" maxlength="998"></div>
</div>
<div class="actions">${button(c, 'policy.read', 'Explain', { name: 'do', value: 'explain', look: 'secondary' })}</div>
${s.explained ? html`<pre class="block explained" id="explanation">${s.explained.join('\n')}</pre>` : ''}
</section>
</form>
${versions ? versionsCard(p, versions, current.hash) : ''}`;
}

function versionsCard(p: PageContext, versions: Version[], hash: string): Html {
  return html`<section class="card" id="versions"><h2>Versions kept <small>newest first</small></h2>
${versions.length ? html`<table class="list"><thead><tr><th>Activated</th><th>By</th><th>Version</th><th class="num">Size</th><th></th></tr></thead><tbody>
${versions.map((v) => html`<tr><td><a href="/policy/versions/${v.id}">${when(v.time)}</a></td><td>${v.by ?? html`<span class="muted">found in the file</span>`}</td><td class="mono">${v.hash.slice(0, 12)} ${v.active ? html`<span class="badge ok">in force</span>` : ''}</td><td class="num">${v.size.toLocaleString('en')} B</td>
<td class="do">${v.active ? '' : actionForm({ caller: p.caller, csrf: p.csrf, action: `/policy/versions/${v.id}/activate`, permission: 'policy.change', label: 'Roll back to this', fields: { hash }, confirm: 'Make this earlier version the policy in force?' })}</td></tr>`)}
</tbody></table>` : html`<p class="empty">No version kept yet: the first activation keeps the one it replaces.</p>`}
</section>`;
}

/** The page as it stands: the file in force and its versions, around the editor's state. */
async function editorPage(p: PageContext, s: EditorState | null, notice?: Notice, status = 200) {
  const current = await api<PolicyFile>(p, 'GET', '/policy');
  const versions = await api<{ versions: Version[] }>(p, 'GET', '/policy/versions');
  const state = s ?? { text: current.text, hash: current.hash, explain: { from: '', to: '', subject: '' } };
  return sendPage(p, { title: 'Policy', section: 'policy', status, body: editorBody(p, state, current, versions.versions), ...(notice ? { notice } : {}) });
}

const problemsOf = (json: unknown): Problem[] | undefined => (json as { details?: { problems?: Problem[] } } | null)?.details?.problems;

export function policyPages(web: AdminWeb): void {
  const { app } = web;

  app.get(
    '/policy',
    { schema: { hide: true } },
    consoleRoute(web, 'policy', async (p) => editorPage(p, null, doneNotice(p.req))),
  );

  app.post(
    '/policy',
    { schema: { hide: true } },
    consoleRoute(web, 'policy', async (p) => {
      const b = p.req.body;
      const text = field(b, 'text', MAX_TEXT).replace(/\r\n?/g, '\n');
      const hash = field(b, 'hash', 64);
      const explain = { from: field(b, 'from', 320).trim(), to: field(b, 'to', 4000).trim(), subject: field(b, 'subject', 998) };
      const s: EditorState = { text, hash, explain };
      const action = field(b, 'do', 20);
      if (action === 'validate') {
        const r = await api<{ valid: boolean; rules?: number; problems: Problem[] }>(p, 'POST', '/policy/validate', { text });
        return editorPage(p, r.valid ? { ...s, valid: { rules: r.rules ?? 0 } } : { ...s, problems: r.problems });
      }
      if (action === 'explain') {
        const to = explain.to.split(/[\s,;]+/).filter(Boolean).slice(0, 100);
        if (!to.length) return editorPage(p, s, { kind: 'error', text: 'Explain needs at least one recipient (To).' }, 400);
        const r = await apiAnswer<{ printed: string[] }>(p, 'POST', '/policy/explain', { from: explain.from, to, ...(explain.subject ? { subject: explain.subject } : {}), text });
        if (r.status === 200) return editorPage(p, { ...s, explained: r.json.printed });
        const problems = problemsOf(r.json);
        if (r.status === 400) return editorPage(p, problems ? { ...s, problems } : s, { kind: 'error', text: refusalOf(r).message }, 400);
        throw refusalOf(r);
      }
      if (action === 'activate') {
        if (!/^[0-9a-f]{64}$/.test(hash)) throw new PageRefusal(400, 'the form lacks the version it was edited from: open the policy page again');
        const r = await apiAnswer<{ outcome: string; reloaded?: boolean }>(p, 'POST', '/policy/activate', { text, hash });
        if (r.status === 200) {
          const done = r.json.outcome === 'unchanged' ? 'policy.unchanged' : r.json.reloaded ? 'policy.activate' : 'policy.activate-unreloaded';
          return redirectDone(p.reply, '/policy', done);
        }
        // Refused: the draft stays in the editor, with its problems or why (changed meanwhile).
        const problems = problemsOf(r.json);
        if (r.status === 400 || r.status === 409) return editorPage(p, problems ? { ...s, problems } : s, { kind: 'error', text: refusalOf(r).message }, r.status);
        throw refusalOf(r);
      }
      throw new PageRefusal(400, 'unknown action');
    }),
  );

  app.get(
    '/policy/versions/:id',
    { schema: { hide: true } },
    consoleRoute(web, 'policy', async (p) => {
      const id = (p.req.params as { id: string }).id;
      if (!VERSION_ID.test(id)) throw new PageRefusal(404, 'not a policy version');
      const v = await api<Version & { text: string }>(p, 'GET', `/policy/versions/${id}`);
      const current = await api<PolicyFile>(p, 'GET', '/policy');
      const body = html`<div class="actions">${v.hash === current.hash ? html`<span class="badge ok">in force</span>` : actionForm({ caller: p.caller, csrf: p.csrf, action: `/policy/versions/${id}/activate`, permission: 'policy.change', label: 'Roll back to this', fields: { hash: current.hash }, confirm: 'Make this earlier version the policy in force?' })}
<a class="button secondary" href="/policy">Back to the editor</a></div>
<section class="card"><h2>Version <span class="mono">${v.hash.slice(0, 12)}</span> <small>activated ${when(v.time)}${v.by ? ` by ${v.by}` : ''}</small></h2><pre class="block">${v.text}</pre></section>`;
      return sendPage(p, { title: 'Policy version', section: 'policy', body });
    }),
  );

  app.post(
    '/policy/versions/:id/activate',
    { schema: { hide: true } },
    consoleRoute(web, 'policy', async (p) => {
      const id = (p.req.params as { id: string }).id;
      if (!VERSION_ID.test(id)) throw new PageRefusal(404, 'not a policy version');
      const hash = field(p.req.body, 'hash', 64);
      await api(p, 'POST', `/policy/versions/${id}/activate`, /^[0-9a-f]{64}$/.test(hash) ? { hash } : {});
      return redirectDone(p.reply, '/policy', 'policy.rollback');
    }),
  );
}
