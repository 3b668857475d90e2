/**
 * The dashboard: the role processes and the queue sizes (GET /api/status), why deferred mail
 * waits (the deferred listing's last replies, grouped), and the certificates that expire within
 * 30 days (GET /api/certificates?expiringWithin=30). Each card asks the API on its own, so a role
 * that may read some of it sees those cards and a note for the others.
 */
import { html, type Html } from '../../portal/index.js';
import type { QueueRow } from '../../relay/index.js';
import type { AdminWeb } from '../app.js';
import type { Permission } from '../permissions.js';
import type { HourlyTable } from '../hourly.js';
import type { RoleStatus } from '../routes.js';
import { apiAnswer, consoleRoute, doneNotice, query, refusalOf, sendPage, type PageContext } from './kit.js';
import { age, refusedCard, when } from './layout.js';

interface Status {
  hostname: string;
  roles: RoleStatus[] | null;
  rolesError?: string;
  queues: Record<string, number>;
}

export interface CertificateRow {
  fingerprint: string;
  subject: string;
  addresses: string[];
  issuer: string;
  notAfter: string | null;
  notBefore: string | null;
  isCA: boolean;
  trusted: boolean;
  hasKey: boolean;
  flags?: string[];
}

/** The queues a tile is shown for, in the mail's order; hold and corrupt want attention. */
const TILES: { queue: string; label: string; attention?: 'warn' | 'bad' }[] = [
  { queue: 'incoming', label: 'Incoming' },
  { queue: 'active', label: 'Active' },
  { queue: 'outgoing', label: 'Outgoing' },
  { queue: 'deferred', label: 'Deferred', attention: 'warn' },
  { queue: 'hold', label: 'Held', attention: 'warn' },
  { queue: 'corrupt', label: 'Corrupt', attention: 'bad' },
];

const DEFERRED_SAMPLE = 500;
const LOG_LINES = 12;

type LogLine = Record<string, unknown> & { time: string; level: string };
const REASONS_SHOWN = 8;

/** A card's data, or the note that the caller may not read it (other refusals are the page's). */
async function read<T>(p: PageContext, url: string, permission: Permission): Promise<T | { refused: Permission }> {
  const r = await apiAnswer<T>(p, 'GET', url);
  if (r.status === 403) return { refused: permission };
  if (r.status >= 300) throw refusalOf(r);
  return r.json;
}

const isRefused = (v: unknown): v is { refused: Permission } => typeof v === 'object' && v !== null && 'refused' in v;

function statusCards(s: Status): Html {
  const tiles = html`<div class="tiles">${TILES.map((t) => {
    const n = s.queues[t.queue] ?? 0;
    return html`<a class="tile${n > 0 && t.attention ? ` ${t.attention}` : ''}" href="/queue${query({ queue: t.queue })}" data-queue="${t.queue}"><span class="n">${n}</span><span class="l">${t.label}</span></a>`;
  })}</div>`;
  const roles = s.roles
    ? html`<table class="list"><thead><tr><th>Role</th><th>State</th><th class="num">PID</th><th>Since</th><th class="num">Restarts</th></tr></thead><tbody>
${s.roles.map((r) => html`<tr data-role="${r.role}"><td>${r.role}${r.index > 0 ? html` <span class="muted">#${r.index + 1}</span>` : ''}</td><td>${r.running ? html`<span class="badge ok">running</span>` : html`<span class="badge bad">stopped</span>`}</td><td class="num mono">${r.pid ?? '—'}</td><td>${when(r.since)}</td><td class="num${r.restarts > 0 ? ' warn' : ''}">${r.restarts}</td></tr>`)}
</tbody></table>`
    : html`<p class="notice warn">The supervisor did not answer: ${s.rolesError ?? 'no reason given'}.</p>`;
  return html`<section class="card"><h2>Queue <small>entries per spool directory</small></h2>${tiles}</section>
<section class="card"><h2>Role processes <small>as the supervisor runs them</small></h2>${roles}</section>`;
}

/** Deferred mail grouped by the reply it last got (the first 160 characters: the same refusal reads the same). */
function reasonsCard(rows: QueueRow[], truncated: boolean): Html {
  const groups = new Map<string, { n: number; domains: Set<string>; oldest: number }>();
  for (const r of rows) {
    const reason = (r.last_error ?? r.error ?? 'no reply recorded').replace(/\s+/g, ' ').trim().slice(0, 160);
    const g = groups.get(reason) ?? { n: 0, domains: new Set<string>(), oldest: 0 };
    g.n++;
    g.oldest = Math.max(g.oldest, r.age_s);
    for (const rc of r.recipients) if (rc.state === 'deferred') g.domains.add(rc.address.split('@').pop() ?? '');
    groups.set(reason, g);
  }
  const top = [...groups.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, REASONS_SHOWN);
  const body = top.length
    ? html`<table class="list" id="deferred-reasons"><thead><tr><th>Last reply</th><th>Domains</th><th class="num">Messages</th><th class="num">Oldest</th></tr></thead><tbody>
${top.map(([reason, g]) => html`<tr><td class="mono">${reason}</td><td>${[...g.domains].slice(0, 4).join(', ')}${g.domains.size > 4 ? ` +${g.domains.size - 4}` : ''}</td><td class="num">${g.n}</td><td class="num">${age(g.oldest)}</td></tr>`)}
</tbody></table>`
    : html`<p class="empty">Nothing is deferred.</p>`;
  return html`<section class="card"><h2>Deferred: why mail waits <small>${truncated ? `the oldest ${DEFERRED_SAMPLE} entries` : `${rows.length} entr${rows.length === 1 ? 'y' : 'ies'}`} · <a href="/queue?queue=deferred">open</a></small></h2>${body}</section>`;
}

function expiringCard(certs: CertificateRow[]): Html {
  const now = Date.now();
  const body = certs.length
    ? html`<table class="list" id="expiring"><thead><tr><th>Certificate</th><th>Addresses</th><th>Expires</th><th class="num">Days</th></tr></thead><tbody>
${certs.map((c) => {
  const days = c.notAfter ? Math.floor((Date.parse(c.notAfter) - now) / 86_400_000) : 0;
  return html`<tr><td><a href="/keys/certificates/${c.fingerprint}">${c.subject || c.fingerprint.slice(0, 16)}</a>${c.isCA ? html` <span class="badge info">CA</span>` : ''}</td><td>${c.addresses.join(', ') || '—'}</td><td>${when(c.notAfter)}</td><td class="num"><span class="badge ${days < 7 ? 'bad' : 'warn'}">${days}</span></td></tr>`;
})}
</tbody></table>`
    : html`<p class="empty">No certificate expires within 30 days.</p>`;
  return html`<section class="card"><h2>Certificates expiring within 30 days <small><a href="/keys${query({ expiring: 30 })}">open</a></small></h2>${body}</section>`;
}

/** Recipients' copies per hour and method (GET /api/status/messages); hours without mail show 0. */
function hourlyCard(t: HourlyTable | null): Html {
  const title = 'Messages per hour by method';
  if (!t) return html`<section class="card"><h2>${title}</h2><p class="empty">Not counted by this admin role.</p></section>`;
  const shown = t.hours.slice(0, 12);
  const body = shown.length
    ? html`<table class="list" id="messages-per-hour"><thead><tr><th>Hour (UTC)</th>${t.methods.map((m) => html`<th class="num">${METHOD_TITLES[m] ?? m}</th>`)}</tr></thead><tbody>
${shown.map((h) => html`<tr><td>${h.hour.slice(0, 13).replace('T', ' ')}:00</td>${t.methods.map((m) => html`<td class="num">${h.counts[m] ?? 0}</td>`)}</tr>`)}
</tbody></table>`
    : html`<p class="empty">Counting starts with the next sample of the metrics (every five minutes).</p>`;
  return html`<section class="card"><h2>${title} <small>${t.since ? `recipients' copies since ${when(t.since)}` : 'not counted yet'}</small></h2>${body}</section>`;
}

const METHOD_TITLES: Record<string, string> = { smime: 'S/MIME', pgp: 'OpenPGP', pdf: 'PDF', webmail: 'Webmail', clear: 'Clear' };

/** The latest warnings and errors of every role (GET /api/logs): what went wrong lately, at a glance. */
function logCard(logs: { lines: LogLine[]; incomplete?: string }): Html {
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const body = logs.lines.length
    ? html`<table class="list" id="recent-warnings"><thead><tr><th>When</th><th>Level</th><th>Role</th><th>Event</th><th>Message</th></tr></thead><tbody>
${logs.lines.map((l) => html`<tr><td class="age">${when(l.time)}</td><td><span class="badge ${l.level === 'warn' ? 'warn' : 'bad'}">${l.level}</span></td><td class="age">${text(l.role)}</td><td class="mono age">${text(l.event)}</td><td>${text(l.msg)}</td></tr>`)}
</tbody></table>`
    : html`<p class="empty">No warning or error in the recent log.</p>`;
  return html`<section class="card"><h2>Recent warnings and errors <small>${logs.incomplete ? `incomplete: ${logs.incomplete}` : 'every role'}</small></h2>${body}</section>`;
}

export function dashboardPages(web: AdminWeb): void {
  web.app.get(
    '/',
    { schema: { hide: true } },
    consoleRoute(web, 'dashboard', async (p) => {
      const [status, hourly, deferred, expiring, logs] = await Promise.all([
        read<Status>(p, '/status', 'status.read'),
        // 404: this admin role does not count them (a test harness); the card says so.
        apiAnswer<HourlyTable>(p, 'GET', '/status/messages').then((r) => (r.status === 200 ? r.json : null)),
        read<{ entries: QueueRow[]; truncated: boolean }>(p, `/queue${query({ queue: 'deferred', limit: DEFERRED_SAMPLE })}`, 'queue.read'),
        read<{ certificates: CertificateRow[] }>(p, '/certificates?expiringWithin=30', 'keys.read'),
        read<{ lines: LogLine[]; incomplete?: string }>(p, `/logs${query({ level: 'warn', limit: LOG_LINES })}`, 'logs.read'),
      ]);
      const body = html`${isRefused(status) ? refusedCard('Role processes and queue sizes', status.refused) : statusCards(status)}
${isRefused(status) ? '' : hourlyCard(hourly)}
<div class="grid">
${isRefused(deferred) ? refusedCard('Deferred reasons', deferred.refused) : reasonsCard(deferred.entries, deferred.truncated)}
${isRefused(expiring) ? refusedCard('Expiring certificates', expiring.refused) : expiringCard(expiring.certificates)}
</div>
${isRefused(logs) ? refusedCard('Recent warnings and errors', logs.refused) : logCard(logs)}`;
      const notice = doneNotice(p.req);
      return sendPage(p, { title: 'Dashboard', section: 'dashboard', body, ...(notice ? { notice } : {}) });
    }),
  );
}

