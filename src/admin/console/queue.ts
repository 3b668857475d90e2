/**
 * The queue pages: the listing with filters (GET /api/queue), one message's entries with each
 * recipient's state and last reply (GET /api/queue/:id), and the buttons that hold, release,
 * delete and flush (POST /api/queue/…, queue.change). Bodies are never shown: the API has none.
 * Ids from the URL go to the API encoded; the API checks their shape.
 */
import { QUEUE_ENTRY_NAME_PATTERN } from '../../core/index.js';
import { html, type Html } from '../../portal/index.js';
import { LISTED_QUEUES, type QueueEntryView, type QueueRow } from '../../relay/index.js';
import type { AdminWeb } from '../app.js';
import { api, consoleRoute, doneNotice, field, PageRefusal, query, redirectDone, sendPage } from './kit.js';
import { actionForm, age, button, when } from './layout.js';

const LIMIT = 200;
const ENTRY = new RegExp(QUEUE_ENTRY_NAME_PATTERN);
const VERBS = ['hold', 'release', 'delete'] as const;

const QUEUE_LOOK: Record<string, string> = { deferred: 'warn', hold: 'warn', corrupt: 'bad', delivering: 'info', active: 'info' };
const STATE_LOOK: Record<string, string> = { deferred: 'warn', failed: 'bad', delivered: 'ok', pending: '' };

const queueBadge = (q: string) => html`<span class="badge ${QUEUE_LOOK[q] ?? ''}">${q}</span>`;
const stateBadge = (s: string) => html`<span class="badge ${STATE_LOOK[s] ?? ''}">${s}</span>`;
const sender = (s: string) => (s === '' ? html`<span class="muted">&lt;&gt;</span>` : s);

function listTable(rows: QueueRow[]): Html {
  if (!rows.length) return html`<p class="empty">No message matches.</p>`;
  return html`<table class="list" id="queue-list"><thead><tr><th>Queue id</th><th>Queue</th><th>Age</th><th>Sender</th><th>Recipients</th><th class="num">Tries</th><th>Last reply</th></tr></thead><tbody>
${rows.map((r) => html`<tr data-id="${r.id}"><td class="mono"><a href="/queue/${encodeURIComponent(r.id)}">${r.name}</a></td><td>${queueBadge(r.queue)}${r.held_as ? html` <span class="muted">${r.held_as}</span>` : ''}</td><td class="age" title="${when(r.arrival)}">${age(r.age_s)}</td><td>${sender(r.sender)}</td>
<td>${r.recipients.map((rc) => html`<div>${rc.address} ${stateBadge(rc.state)}</div>`)}</td><td class="num">${r.attempts ?? 0}</td><td class="mono">${r.last_error ?? r.error ?? ''}</td></tr>`)}
</tbody></table>`;
}

function entryCard(e: QueueEntryView): Html {
  const env = e.envelope;
  return html`<section class="card" data-entry="${e.name}"><h2><span class="mono">${e.name}</span> ${queueBadge(e.queue)}</h2>
<dl class="meta">
${env ? html`<dt>Sender</dt><dd>${sender(env.sender)}</dd><dt>Accepted</dt><dd>${when(env.receivedAt)} from ${env.client.address}${env.client.helo ? html` (HELO ${env.client.helo})` : ''}</dd>` : ''}
<dt>Size</dt><dd>${e.size.toLocaleString('en')} bytes</dd>
${e.attempts !== undefined ? html`<dt>Attempts</dt><dd>${e.attempts}</dd>` : ''}
${e.next_attempt ? html`<dt>Next attempt</dt><dd>${when(e.next_attempt)}</dd>` : ''}
${e.hold_reason ? html`<dt>Held because</dt><dd>${e.hold_reason}${e.held_as ? html` <span class="muted">(${e.held_as})</span>` : ''}</dd>` : ''}
${e.hold_requested ? html`<dt>Hold asked for</dt><dd>${e.hold_requested}</dd>` : ''}
${e.error ? html`<dt>Unreadable</dt><dd class="mono">${e.error}</dd>` : ''}
</dl>
${e.recipients?.length ? html`<table class="list"><thead><tr><th>Recipient</th><th>State</th><th>Last reply</th><th>At</th></tr></thead><tbody>
${e.recipients.map((r) => html`<tr><td>${r.address}${r.written ? html`<small>written ${r.written}</small>` : ''}</td><td>${stateBadge(r.state)}${r.expired ? html` <span class="badge bad">expired</span>` : ''}</td><td class="mono">${r.reply ?? ''}${r.remote ? html`<small>${r.remote}</small>` : ''}</td><td>${when(r.at)}</td></tr>`)}
</tbody></table>` : ''}
</section>`;
}

export function queuePages(web: AdminWeb): void {
  const { app } = web;

  app.get(
    '/queue',
    { schema: { hide: true } },
    consoleRoute(web, 'queue', async (p) => {
      const q = p.req.query as Record<string, unknown>;
      const filter = {
        queue: typeof q.queue === 'string' && (LISTED_QUEUES as readonly string[]).includes(q.queue) ? q.queue : '',
        sender: typeof q.sender === 'string' ? q.sender.trim().slice(0, 320) : '',
        recipient: typeof q.recipient === 'string' ? q.recipient.trim().slice(0, 320) : '',
      };
      const list = await api<{ entries: QueueRow[]; total: number; truncated: boolean }>(p, 'GET', `/queue${query({ ...filter, limit: LIMIT })}`);
      const c = p.caller;
      const body = html`<section class="card">
<form method="get" action="/queue" class="filters" role="search">
<div><label for="f-queue">Queue</label><select id="f-queue" name="queue"><option value="">all queues</option>${LISTED_QUEUES.map((n) => html`<option value="${n}"${n === filter.queue ? html` selected` : ''}>${n}</option>`)}</select></div>
<div><label for="f-sender">Sender contains</label><input type="search" id="f-sender" name="sender" value="${filter.sender}" maxlength="320"></div>
<div><label for="f-recipient">Recipient contains</label><input type="search" id="f-recipient" name="recipient" value="${filter.recipient}" maxlength="320"></div>
<div class="actions"><button type="submit" class="secondary">Filter</button></div>
</form>
</section>
<section class="card"><h2>${list.total} message entr${list.total === 1 ? 'y' : 'ies'}${list.truncated ? html` <small>the oldest ${LIMIT} shown: filter to see others</small>` : ''}
<span>
${actionForm({ caller: c, csrf: p.csrf, action: '/queue/flush', permission: 'queue.change', label: 'Retry all deferred now', fields: { all: 'true' } })}
</span></h2>
${listTable(list.entries)}
<form method="post" action="/queue/flush" class="filters actions narrow"><input type="hidden" name="_csrf" value="${p.csrf}">
<div><label for="f-domain">Retry deferred mail to a domain now</label><input type="text" id="f-domain" name="domain" placeholder="partner.example" maxlength="253" required></div>
<div>${button(c, 'queue.change', 'Retry domain', { look: 'secondary' })}</div>
</form>
</section>`;
      const notice = doneNotice(p.req);
      return sendPage(p, { title: 'Queue', section: 'queue', body, ...(notice ? { notice } : {}) });
    }),
  );

  app.get(
    '/queue/:id',
    { schema: { hide: true } },
    consoleRoute(web, 'queue', async (p) => {
      const id = (p.req.params as { id: string }).id;
      if (!ENTRY.test(id)) throw new PageRefusal(404, 'not a queue id');
      const m = await api<{ id: string; entries: QueueEntryView[] }>(p, 'GET', `/queue/${encodeURIComponent(id)}`);
      const c = p.caller;
      const deferred = m.entries.some((e) => e.queue === 'deferred');
      const held = m.entries.some((e) => e.queue === 'hold');
      const act = (verb: (typeof VERBS)[number], label: string, look: 'secondary' | 'danger', confirm?: string) =>
        actionForm({ caller: c, csrf: p.csrf, action: `/queue/${encodeURIComponent(id)}/${verb}`, permission: 'queue.change', label, look, ...(confirm ? { confirm } : {}) });
      const body = html`<div class="actions" id="queue-actions">
${held ? act('release', 'Release', 'secondary') : act('hold', 'Hold', 'secondary')}
${deferred ? actionForm({ caller: c, csrf: p.csrf, action: '/queue/flush', permission: 'queue.change', label: 'Retry now', fields: { id } }) : ''}
${act('delete', 'Delete', 'danger', 'Delete this message for good? No bounce is sent.')}
<a href="/queue" class="button secondary">Back to the queue</a>
</div>
<p class="hint">Message bodies are never shown here: only the envelope and each recipient's state.</p>
${m.entries.map(entryCard)}`;
      const notice = doneNotice(p.req);
      return sendPage(p, { title: `Message ${m.id}`, section: 'queue', body, ...(notice ? { notice } : {}) });
    }),
  );

  app.post(
    '/queue/:id/:verb',
    { schema: { hide: true } },
    consoleRoute(web, 'queue', async (p) => {
      const { id, verb } = p.req.params as { id: string; verb: string };
      if (!ENTRY.test(id) || !(VERBS as readonly string[]).includes(verb)) throw new PageRefusal(404, 'no such queue action');
      await api(p, 'POST', `/queue/${encodeURIComponent(id)}/${verb}`, {});
      return redirectDone(p.reply, verb === 'delete' ? '/queue' : `/queue/${encodeURIComponent(id)}`, `queue.${verb}`);
    }),
  );

  app.post(
    '/queue/flush',
    { schema: { hide: true } },
    consoleRoute(web, 'queue', async (p) => {
      const id = field(p.req.body, 'id', 40);
      const domain = field(p.req.body, 'domain', 253).trim();
      const all = field(p.req.body, 'all', 5) === 'true';
      await api(p, 'POST', '/queue/flush', id ? { id } : domain ? { domain } : all ? { all: true } : {});
      return redirectDone(p.reply, id ? `/queue/${encodeURIComponent(id)}` : '/queue', 'queue.flush');
    }),
  );
}
