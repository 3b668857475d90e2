/**
 * The console's page frame and its controls. One HTML document per response, made on the server
 * with the portal's escaping `html` template (every value from the API — addresses, replies,
 * subjects, policy text — is hostile until escaped). The only style sheet and script are our own
 * files under /assets/ (assets.ts): the admin CSP allows nothing inline.
 *
 * A control that changes something is made only through `button`/`gate`, which render it enabled
 * when the caller's roles hold its permission and otherwise `disabled` with a title naming the
 * permission and the roles that have it — so the Auditor sees every page with every change greyed
 * out. The API's guard still decides; a disabled control only spares the caller a refusal.
 */
import { ADMIN_ROLE_TITLES } from '../../core/admin-roles.js';
import { html, type Html } from '../../portal/index.js';
import { allowed, rolesGranting, type Permission } from '../permissions.js';
import type { AdminCaller } from '../routes.js';

export interface PageFrame {
  caller: AdminCaller;
  hostname: string;
  title: string;
  /** Which entry of the navigation is this page's. */
  section: Section;
  csrf: string;
  body: Html;
  /** A message after a change (from the redirect) or a refusal. */
  notice?: Notice;
}

export interface Notice {
  kind: 'ok' | 'error';
  text: string;
}

export type Section = 'dashboard' | 'queue' | 'keys' | 'policy' | 'audit' | 'config';

const NAV: { section: Section; href: string; label: string; read: Permission }[] = [
  { section: 'dashboard', href: '/', label: 'Dashboard', read: 'status.read' },
  { section: 'queue', href: '/queue', label: 'Queue', read: 'queue.read' },
  { section: 'keys', href: '/keys', label: 'Keys', read: 'keys.read' },
  { section: 'policy', href: '/policy', label: 'Policy', read: 'policy.read' },
  { section: 'audit', href: '/audit', label: 'Audit trail', read: 'audit.read' },
  { section: 'config', href: '/config', label: 'Configuration', read: 'config.read' },
];

/** "needs queue.change (Administrator, Network Operator, System Operator)": a disabled control's title. */
export function needs(permission: Permission): string {
  return `needs ${permission} (${rolesGranting(permission).map((r) => ADMIN_ROLE_TITLES[r]).join(', ')})`;
}

/** Attributes that disable a control the caller may not use ('' when allowed). */
export function gate(caller: AdminCaller, permission: Permission): Html {
  return allowed(caller.roles, permission) ? html`` : html` disabled title="${needs(permission)}"`;
}

export interface ButtonOptions {
  /** A secondary (outlined) or dangerous (red) look. */
  look?: 'primary' | 'secondary' | 'danger';
  name?: string;
  value?: string;
  /** The form element a button outside a form submits (the form's id). */
  form?: string;
}

export function button(caller: AdminCaller, permission: Permission, label: string, o: ButtonOptions = {}): Html {
  return html`<button type="submit" class="${o.look ?? 'primary'}"${o.name ? html` name="${o.name}"` : ''}${o.value !== undefined ? html` value="${o.value}"` : ''}${o.form ? html` form="${o.form}"` : ''} data-permission="${permission}"${gate(caller, permission)}>${label}</button>`;
}

/**
 * A form that posts one change: the CSRF field, a confirmation question for the script to ask
 * (destructive changes), hidden fields, and the gated button.
 */
export function actionForm(f: { caller: AdminCaller; csrf: string; action: string; permission: Permission; label: string; look?: ButtonOptions['look']; confirm?: string; fields?: Record<string, string> }): Html {
  return html`<form method="post" action="${f.action}" class="inline"${f.confirm ? html` data-confirm="${f.confirm}"` : ''}><input type="hidden" name="_csrf" value="${f.csrf}">${Object.entries(f.fields ?? {}).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}${button(f.caller, f.permission, f.label, { look: f.look ?? 'secondary' })}</form>`;
}

/** A notice of a refused read: the caller's roles do not include the permission. */
export function refusedCard(what: string, permission: Permission): Html {
  return html`<div class="card muted-card"><p class="muted">${what}: ${needs(permission)}.</p></div>`;
}

export function renderPage(p: PageFrame): string {
  const roles = p.caller.roles.map((r) => ADMIN_ROLE_TITLES[r]).join(', ') || 'no role';
  return `<!DOCTYPE html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${p.title} · Postern admin · ${p.hostname}</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body class="console">
<a class="skip" href="#main">Skip to content</a>
<nav class="side" aria-label="Sections">
  <div class="brand"><span class="mark" aria-hidden="true"></span><span><strong>Postern</strong><small>${p.hostname}</small></span></div>
  <ul>
    ${NAV.map((n) => html`<li><a href="${n.href}"${n.section === p.section ? html` aria-current="page" class="current"` : ''}${allowed(p.caller.roles, n.read) ? '' : html` class="locked" title="${needs(n.read)}"`}>${n.label}</a></li>`)}
  </ul>
</nav>
<div class="frame">
<header class="bar">
  <h1>${p.title}</h1>
  <div class="who">
    <span class="account" title="${roles}"><span class="avatar" aria-hidden="true">${p.caller.account.slice(0, 1).toUpperCase()}</span>${p.caller.account}<small>${roles}</small></span>
    <form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${p.csrf}"><button type="submit" class="secondary small">Sign out</button></form>
  </div>
</header>
<main id="main">
${p.notice ? html`<p class="notice ${p.notice.kind}" role="${p.notice.kind === 'error' ? 'alert' : 'status'}">${p.notice.text}</p>` : ''}
${p.body}
</main>
</div>
</body>
</html>`.text}\n`;
}

/** The sign-in page: no navigation, no account. */
export function renderBarePage(title: string, hostname: string, body: Html): string {
  return `<!DOCTYPE html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Postern admin · ${hostname}</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body class="bare">
<main id="main">
<div class="brand big"><span class="mark" aria-hidden="true"></span><span><strong>Postern</strong><small>${hostname}</small></span></div>
${body}
</main>
</body>
</html>`.text}\n`;
}

/** "3 min", "2 h", "4 d": an age for tables. */
export function age(seconds: number): string {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

/** An ISO time as "2026-12-03 12:40 UTC" (the gateway's clock; admins compare it with logs). */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
