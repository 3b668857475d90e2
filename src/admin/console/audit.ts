/**
 * The audit trail page: filters (time, actor, action, object prefix), a page of records newest
 * first with "older" paging by the API's cursor, before/after of a change folded under its row,
 * and the selection as a JSON-lines download (GET /api/audit/export, which audits the export).
 * Every field of a record may hold text from outside (addresses, names): escaped like all else.
 */
import { html, type Html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import { api, consoleRoute, query, sendDownload, sendPage } from './kit.js';
import { when } from './layout.js';

const PAGE = 50;
const FILTERS = ['since', 'until', 'actor', 'action', 'object'] as const;

interface AuditRecord {
  id: number;
  at: string;
  actor: string;
  via: string | null;
  client: string | null;
  action: string;
  object: string;
  detail: string | null;
  before: string | null;
  after: string | null;
}

const ACTION_LOOK = (a: string) => (a === 'denied' || a === 'login-failed' ? 'bad' : a.includes('delete') || a.includes('revoke') || a.includes('distrust') ? 'warn' : a.startsWith('login') || a === 'logout' ? '' : 'info');

function recordsTable(records: AuditRecord[]): Html {
  if (!records.length) return html`<p class="empty">No record matches.</p>`;
  return html`<table class="list" id="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Object</th><th>Detail</th></tr></thead><tbody>
${records.map((r) => html`<tr data-id="${r.id}"><td class="age">${when(r.at)}</td><td>${r.actor}<small>${[r.via, r.client].filter(Boolean).join(' · ')}</small></td><td><span class="badge ${ACTION_LOOK(r.action)}">${r.action}</span></td><td class="mono">${r.object}</td>
<td>${r.detail ?? ''}${r.before !== null || r.after !== null ? html`<details><summary>before and after</summary><div class="row"><div><small>before</small><pre class="block">${r.before ?? ''}</pre></div><div><small>after</small><pre class="block">${r.after ?? ''}</pre></div></div></details>` : ''}</td></tr>`)}
</tbody></table>`;
}

export function auditPages(web: AdminWeb): void {
  web.app.get(
    '/audit',
    { schema: { hide: true } },
    consoleRoute(web, 'audit', async (p) => {
      const q = p.req.query as Record<string, unknown>;
      const f: Record<string, string> = {};
      for (const k of FILTERS) if (typeof q[k] === 'string' && q[k]) f[k] = (q[k] as string).trim().slice(0, k === 'since' || k === 'until' ? 40 : 1000);
      const cursor = typeof q.cursor === 'string' && /^[0-9]{1,15}$/.test(q.cursor) ? q.cursor : '';
      const page = await api<{ records: AuditRecord[]; next: number | null }>(p, 'GET', `/audit${query({ ...f, limit: PAGE, cursor })}`);
      const input = (k: (typeof FILTERS)[number], label: string, placeholder: string) =>
        html`<div><label for="a-${k}">${label}</label><input type="search" id="a-${k}" name="${k}" value="${f[k] ?? ''}" placeholder="${placeholder}"></div>`;
      const body = html`<section class="card">
<form method="get" action="/audit" class="filters" role="search">
${input('since', 'Since', '2026-12-01')}${input('until', 'Until', '2026-12-31T18:00')}${input('actor', 'Actor', 'alice, cli:root')}${input('action', 'Action', 'policy.activate')}${input('object', 'Object starts with', 'cert:, queue:, policy')}
<div class="actions"><button type="submit" class="secondary">Filter</button></div>
</form></section>
<section class="card"><h2>Records <small>newest first · <a href="/audit/export${query(f)}" id="audit-export">export as JSON lines</a></small></h2>
${recordsTable(page.records)}
<div class="actions">${cursor ? html`<a class="button secondary" href="/audit${query(f)}">Newest</a>` : ''}${page.next !== null ? html`<a class="button secondary" href="/audit${query({ ...f, cursor: page.next })}">Older records</a>` : ''}</div>
</section>`;
      return sendPage(p, { title: 'Audit trail', section: 'audit', body });
    }),
  );

  web.app.get(
    '/audit/export',
    { schema: { hide: true } },
    consoleRoute(web, 'audit', async (p) => {
      const q = p.req.query as Record<string, unknown>;
      const f: Record<string, string> = {};
      for (const k of FILTERS) if (typeof q[k] === 'string' && q[k]) f[k] = (q[k] as string).slice(0, 1000);
      return sendDownload(p, `/audit/export${query(f)}`);
    }),
  );
}
