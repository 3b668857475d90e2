/**
 * OpenPGP keys on the keys page: the list (GET /api/pgp), importing armored keys, keyrings or a
 * revocation certificate (POST /api/pgp/import), downloading a public key, and deleting one
 * (keys.change). A user id is text from outside: escaped like everything else.
 */
import { html, type Html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import { api, apiAnswer, consoleRoute, field, PageRefusal, query, redirectDone, refusalOf, sendDownload, sendPage, type PageContext } from './kit.js';
import { actionForm, button, gate, when } from './layout.js';

const FPR = /^([0-9A-F]{40}|[0-9A-F]{64})$/;
const LIMIT = 500;
/** The API's import limit (keys-shared.ts IMPORT_BODY). */
const ARMORED_MAX = 512 * 1024;

interface PgpKeyRow {
  fingerprint: string;
  userIds: string[];
  algorithm: string;
  bits?: number;
  curve?: string;
  created: string | null;
  expires: string | null;
  revoked: boolean;
  canEncrypt: boolean;
  hasSecret: boolean;
  flags?: string[];
}

interface PgpReport {
  keys: { fingerprint: string; userIds: string[]; status: string; hasSecret: boolean; warnings: string[] }[];
  problems: { input: string; problem: string }[];
}

const LOOK: Record<string, string> = { secret: 'info', revoked: 'bad', expired: 'bad', 'no-encryption': 'warn' };

/** The OpenPGP cards of the keys page (the list and the import form). */
export async function pgpCards(p: PageContext, address: string): Promise<{ list: Html; importForm: Html }> {
  const list = await api<{ total: number; keys: PgpKeyRow[] }>(p, 'GET', `/pgp${query({ address, limit: LIMIT })}`);
  const rows = list.keys.length
    ? html`<table class="list" id="pgp-keys"><thead><tr><th>User ids</th><th>Key</th><th>Created</th><th>Expires</th><th>Flags</th><th></th></tr></thead><tbody>
${list.keys.map((k) => html`<tr data-fingerprint="${k.fingerprint}"><td>${k.userIds.map((u) => html`<div>${u}</div>`)}<small class="mono">${k.fingerprint}</small></td><td>${k.algorithm}${k.bits ? ` ${k.bits}` : ''}${k.curve ? ` ${k.curve}` : ''}</td><td class="age">${when(k.created)}</td><td class="age">${k.expires ? when(k.expires) : 'never'}</td>
<td>${(k.flags ?? []).map((f) => html`<span class="badge ${LOOK[f] ?? ''}">${f}</span> `)}</td>
<td class="do"><a class="button secondary small" href="/keys/pgp/${k.fingerprint}/download">Download</a> ${actionForm({ caller: p.caller, csrf: p.csrf, action: `/keys/pgp/${k.fingerprint}/delete`, permission: 'keys.change', label: 'Delete', look: 'danger', confirm: k.hasSecret ? 'Delete this key and its secret key?' : 'Delete this key?' })}</td></tr>`)}
</tbody></table>`
    : html`<p class="empty">No OpenPGP key matches.</p>`;
  return {
    list: html`<section class="card"><h2>OpenPGP keys <small>${list.total} in the store</small></h2>${rows}</section>`,
    importForm: html`<section class="card" id="pgp-import"><h2>Import OpenPGP keys <small>armored keys, a keyring or a revocation certificate</small></h2>
<form method="post" action="/keys/pgp/import"><input type="hidden" name="_csrf" value="${p.csrf}">
<fieldset${gate(p.caller, 'keys.change')}>
<label for="armored">Armored text</label><textarea id="armored" name="armored" rows="5" class="mono" spellcheck="false" placeholder="-----BEGIN PGP PUBLIC KEY BLOCK-----"></textarea>
<label for="passphrase">Passphrase <small>of a protected secret key</small></label><input type="password" id="passphrase" name="passphrase" autocomplete="off" maxlength="1024">
</fieldset>
<div class="actions">${button(p.caller, 'keys.change', 'Import')}</div>
</form></section>`,
  };
}

function reportBody(r: PgpReport): Html {
  return html`<section class="card"><h2>Import result</h2><table class="list" id="pgp-report"><thead><tr><th>Key</th><th>Status</th><th>Notes</th></tr></thead><tbody>
${r.keys.map((k) => html`<tr><td>${k.userIds[0] ?? '(no user id)'}<small class="mono">${k.fingerprint}</small></td><td><span class="badge ${k.status === 'duplicate' ? '' : 'ok'}">${k.status}</span>${k.hasSecret ? html` <span class="badge info">secret</span>` : ''}</td><td>${k.warnings.join('; ')}</td></tr>`)}
${r.problems.map((x) => html`<tr><td>${x.input}</td><td><span class="badge bad">refused</span></td><td>${x.problem}</td></tr>`)}
</tbody></table><div class="actions"><a class="button secondary" href="/keys">Back to the keys</a></div></section>`;
}

export function pgpPages(web: AdminWeb): void {
  const { app } = web;
  const fprOf = (p: PageContext) => {
    const f = String((p.req.params as { fpr: string }).fpr).toUpperCase();
    if (!FPR.test(f)) throw new PageRefusal(404, 'not an OpenPGP fingerprint');
    return f;
  };

  app.post(
    '/keys/pgp/import',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      const armored = field(p.req.body, 'armored', ARMORED_MAX).trim();
      if (!armored) throw new PageRefusal(400, 'paste the armored key to import');
      const passphrase = field(p.req.body, 'passphrase', 1024);
      const r = await apiAnswer<PgpReport>(p, 'POST', '/pgp/import', { armored: `${armored}\n`, ...(passphrase ? { passphrase } : {}) });
      const report = r.status === 200 ? r.json : ((r.json as { details?: PgpReport } | null)?.details ?? null);
      if (!report) throw refusalOf(r);
      if (r.status === 200 && !report.problems.length) return redirectDone(p.reply, '/keys', 'pgp.import');
      return sendPage(p, { title: 'Import', section: 'keys', status: r.status, body: reportBody(report), notice: { kind: r.status === 200 ? 'ok' : 'error', text: r.status === 200 ? `Imported ${report.keys.length} key${report.keys.length === 1 ? '' : 's'}.` : refusalOf(r).message } });
    }),
  );

  app.get(
    '/keys/pgp/:fpr/download',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      return sendDownload(p, `/pgp/${fprOf(p)}/export`);
    }),
  );

  app.post(
    '/keys/pgp/:fpr/delete',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      await api(p, 'POST', `/pgp/${fprOf(p)}/delete`, {});
      return redirectDone(p.reply, '/keys', 'pgp.delete');
    }),
  );
}
