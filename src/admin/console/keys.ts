/**
 * The keys pages: the certificates list with filters (GET /api/certificates), a certificate's page
 * (details, chain in the store, revocation, PEM, download), importing PEM text or a file (PEM, DER,
 * PKCS#7, PKCS#12 with its password), trusting or distrusting a CA, and deleting. The import form
 * is multipart (a file): its CSRF field is read with the rest of the small form (at most one file
 * of IMPORT_LIMIT bytes) before app.ts's check runs.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import { html, type Html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import type { CertificateRow } from './dashboard.js';
import { api, apiAnswer, consoleRoute, doneNotice, field, PageRefusal, query, redirectDone, refusalOf, sendDownload, sendPage, type PageContext } from './kit.js';
import { actionForm, button, gate, when } from './layout.js';
import { pgpCards } from './pgp.js';

/** The API's own limit on an import (keys-shared.ts IMPORT_BODY): base64 makes a file 4/3 larger. */
const IMPORT_LIMIT = 384 * 1024;
const FINGERPRINT = /^[0-9a-f]{64}$/;
const LIMIT = 500;

interface CertificateDetail extends CertificateRow {
  serial: string;
  keyUsage: string[];
  extKeyUsage: string[];
  key: { algorithm: string; bits?: number; curve?: string };
  internalCa: boolean;
  firstSeen: string | null;
  source?: string;
  revocation?: { status: string; source?: string; reason?: string; revokedAt?: string } | null;
  chain: { state: string; issuers: { fingerprint: string; subject: string; trusted: boolean; notAfter: string | null }[]; missingIssuerOf?: string };
  pem: string;
}

interface ImportReport {
  certificates: { input: string; fingerprint: string; subject: string; emails: string[]; isCA: boolean; status: string; problems: string[]; warnings: string[] }[];
  keys: { input: string; algorithm: string; bits?: number; curve?: string; status: string; fingerprint?: string; problem?: string }[];
  unreadable: { input: string; problem: string }[];
}

const FLAG_LOOK: Record<string, string> = { ca: 'info', trusted: 'ok', key: 'info', expired: 'bad', 'not-yet-valid': 'warn' };
/** The extended key usages a mail admin meets, by name (others stay OIDs). */
const EKU: Record<string, string> = {
  '1.3.6.1.5.5.7.3.4': 'emailProtection', '1.3.6.1.5.5.7.3.2': 'clientAuth', '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning', '1.3.6.1.5.5.7.3.8': 'timeStamping', '1.3.6.1.5.5.7.3.9': 'OCSPSigning', '2.5.29.37.0': 'anyExtendedKeyUsage',
};
const flags = (f: readonly string[] = []) => f.map((x) => html`<span class="badge ${FLAG_LOOK[x] ?? 'warn'}">${x}</span> `);

function certificateTable(certs: CertificateRow[]): Html {
  if (!certs.length) return html`<p class="empty">No certificate matches.</p>`;
  return html`<table class="list" id="certificates"><thead><tr><th>Subject</th><th>Addresses</th><th>Issuer</th><th>Valid until</th><th>Flags</th></tr></thead><tbody>
${certs.map((c) => html`<tr data-fingerprint="${c.fingerprint}"><td><a href="/keys/certificates/${c.fingerprint}">${c.subject || c.fingerprint.slice(0, 16)}</a><small class="mono">${c.fingerprint.slice(0, 32)}…</small></td><td>${c.addresses.join(', ') || '—'}</td><td>${c.issuer}</td><td>${when(c.notAfter)}</td><td>${flags(c.flags)}</td></tr>`)}
</tbody></table>`;
}

function importCard(p: PageContext): Html {
  return html`<section class="card" id="import"><h2>Import certificates and keys <small>PEM, DER, PKCS#7 bundle or PKCS#12</small></h2>
<form method="post" action="/keys/import" enctype="multipart/form-data">
<input type="hidden" name="_csrf" value="${p.csrf}">
<fieldset${gate(p.caller, 'keys.change')}>
<label for="pem">PEM text</label>
<textarea id="pem" name="pem" rows="6" class="mono" placeholder="-----BEGIN CERTIFICATE-----" spellcheck="false"></textarea>
<div class="row">
<div><label for="file">or a file</label><input type="file" id="file" name="file" accept=".pem,.crt,.cer,.der,.p7b,.p7c,.p12,.pfx"></div>
<div><label for="password">Password <small>of a PKCS#12 file or an encrypted key</small></label><input type="password" id="password" name="password" autocomplete="off" maxlength="1024"></div>
</div>
</fieldset>
<div class="actions">${button(p.caller, 'keys.change', 'Import')}</div>
</form>
</section>`;
}

function reportPage(r: ImportReport): Html {
  const row = (status: string) => html`<span class="badge ${status === 'added' || status === 'updated' ? 'ok' : status === 'refused' ? 'bad' : ''}">${status}</span>`;
  return html`<section class="card"><h2>Import result</h2><table class="list" id="import-report"><thead><tr><th>What</th><th>Status</th><th>Notes</th></tr></thead><tbody>
${r.certificates.map((c) => html`<tr><td><a href="/keys/certificates/${c.fingerprint}">${c.subject}</a>${c.emails.length ? html`<small>${c.emails.join(', ')}</small>` : ''}</td><td>${row(c.status)}</td><td>${[...c.problems, ...c.warnings].join('; ')}</td></tr>`)}
${r.keys.map((k) => html`<tr><td>private key ${k.algorithm}${k.bits ? ` ${k.bits}` : ''}${k.curve ? ` ${k.curve}` : ''}</td><td>${row(k.status)}</td><td>${k.problem ?? ''}</td></tr>`)}
${r.unreadable.map((u) => html`<tr><td>${u.input}</td><td>${row('refused')}</td><td>${u.problem}</td></tr>`)}
</tbody></table><div class="actions"><a class="button secondary" href="/keys">Back to the keys</a></div></section>`;
}

function detailBody(p: PageContext, c: CertificateDetail): Html {
  const caller = p.caller;
  const base = `/keys/certificates/${c.fingerprint}`;
  return html`<div class="actions" id="certificate-actions">
${c.isCA ? actionForm({ caller, csrf: p.csrf, action: `${base}/${c.trusted ? 'distrust' : 'trust'}`, permission: 'keys.trust', label: c.trusted ? 'Distrust' : 'Trust as anchor', ...(c.trusted ? { confirm: 'Stop trusting this CA? Mail signed under it no longer verifies as trusted.' } : {}) }) : ''}
<a class="button secondary" href="${base}/download">Download PEM</a>
<form method="post" action="${base}/delete" class="inline" data-confirm="Delete this certificate?"><input type="hidden" name="_csrf" value="${p.csrf}">${c.hasKey ? html`<label class="inline-check"><input type="checkbox" name="withKey" value="true"${gate(caller, 'keys.change')}> with its private key</label> ` : ''}${button(caller, 'keys.change', 'Delete', { look: 'danger' })}</form>
<a class="button secondary" href="/keys">Back to the keys</a>
</div>
<div class="grid">
<section class="card"><h2>Certificate ${flags(c.flags)}</h2><dl class="meta">
<dt>Subject</dt><dd>${c.subject}</dd>
<dt>Addresses</dt><dd>${c.addresses.join(', ') || '—'}</dd>
<dt>Issuer</dt><dd>${c.issuer}</dd>
<dt>Serial</dt><dd class="mono">${c.serial}</dd>
<dt>Valid</dt><dd>${when(c.notBefore)} – ${when(c.notAfter)}</dd>
<dt>Key</dt><dd>${c.key.algorithm}${c.key.bits ? ` ${c.key.bits} bits` : ''}${c.key.curve ? ` ${c.key.curve}` : ''}${c.hasKey ? html` <span class="badge info">private key in the store</span>` : ''}</dd>
<dt>Key usage</dt><dd>${c.keyUsage.join(', ') || '—'}</dd>
<dt>Extended usage</dt><dd>${c.extKeyUsage.map((o) => EKU[o] ?? o).join(', ') || '—'}</dd>
<dt>Fingerprint</dt><dd class="mono">${c.fingerprint}</dd>
<dt>First seen</dt><dd>${when(c.firstSeen)}${c.source ? ` (${c.source})` : ''}</dd>
${c.internalCa ? html`<dt>Role</dt><dd><span class="badge info">the internal CA</span></dd>` : ''}
</dl></section>
<section class="card"><h2>Chain and revocation</h2><dl class="meta">
<dt>Chain</dt><dd>${c.chain.state}${c.chain.missingIssuerOf ? html`<small>issuer missing for ${c.chain.missingIssuerOf}</small>` : ''}</dd>
${c.chain.issuers.map((i) => html`<dt>Issuer</dt><dd><a href="/keys/certificates/${i.fingerprint}">${i.subject}</a> ${i.trusted ? html`<span class="badge ok">trusted</span>` : ''}<small>until ${when(i.notAfter)}</small></dd>`)}
<dt>Revocation</dt><dd>${c.revocation ? html`<span class="badge ${c.revocation.status === 'good' ? 'ok' : c.revocation.status === 'revoked' ? 'bad' : ''}">${c.revocation.status}</span>${c.revocation.source ? ` (${c.revocation.source})` : ''}${c.revocation.reason ? html`<small>${c.revocation.reason}</small>` : ''}` : html`<span class="muted">not checked</span>`}</dd>
</dl></section>
</div>
<section class="card"><h2>PEM</h2><pre class="block">${c.pem}</pre></section>`;
}

/** The import form's fields as the API wants them: PEM text, or a file (PEM as text, anything else base64). */
function importRequest(body: Record<string, unknown>): Record<string, string> {
  const pem = field(body, 'pem', IMPORT_LIMIT).trim();
  const password = field(body, 'password', 1024);
  const file = body.file;
  const bytes = Buffer.isBuffer(file) && file.length > 0 ? file : null;
  if (pem && bytes) throw new PageRefusal(400, 'give either PEM text or a file, not both');
  if (!pem && !bytes) throw new PageRefusal(400, 'paste PEM text or choose a file to import');
  const pass: Record<string, string> = password ? { password } : {};
  if (pem) return { pem, ...pass };
  const text = bytes!.toString('latin1');
  return /^\s*-----BEGIN /.test(text) ? { pem: bytes!.toString('utf8'), ...pass } : { base64: bytes!.toString('base64'), ...pass };
}

export function keyPages(web: AdminWeb): void {
  const { app } = web;

  app.get(
    '/keys',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      const q = p.req.query as Record<string, unknown>;
      const address = typeof q.address === 'string' ? q.address.trim().slice(0, 320) : '';
      const kind = q.kind === 'ca' || q.kind === 'key' || q.kind === 'user' ? q.kind : '';
      const expiring = typeof q.expiring === 'string' && /^[0-9]{1,4}$/.test(q.expiring) ? q.expiring : '';
      const list = await api<{ total: number; certificates: CertificateRow[] }>(
        p, 'GET',
        `/certificates${query({ address, ...(kind === 'ca' ? { ca: true } : kind === 'user' ? { ca: false } : kind === 'key' ? { key: true } : {}), expiringWithin: expiring, revocation: 'none', limit: LIMIT })}`,
      );
      const pgp = await pgpCards(p, address);
      const body = html`<section class="card">
<form method="get" action="/keys" class="filters" role="search">
<div><label for="f-address">Address</label><input type="search" id="f-address" name="address" value="${address}" maxlength="320" placeholder="alice@example.com"></div>
<div><label for="f-kind">Kind</label><select id="f-kind" name="kind">${[['', 'all certificates'], ['user', 'end-entity'], ['ca', 'CA certificates'], ['key', 'with a private key']].map(([v, l]) => html`<option value="${v}"${v === kind ? html` selected` : ''}>${l}</option>`)}</select></div>
<div><label for="f-expiring">Expiring within (days)</label><input type="number" id="f-expiring" name="expiring" value="${expiring}" min="0" max="9999"></div>
<div class="actions"><button type="submit" class="secondary">Filter</button></div>
</form></section>
<section class="card"><h2>Certificates <small>${list.total} in the store${list.total > LIMIT ? html`, the first ${LIMIT} shown` : ''}</small></h2>${certificateTable(list.certificates)}</section>
${pgp.list}
<div class="grid">${importCard(p)}${pgp.importForm}</div>`;
      const notice = doneNotice(p.req);
      return sendPage(p, { title: 'Keys', section: 'keys', body, ...(notice ? { notice } : {}) });
    }),
  );

  // Multipart only here: one small file, read before the CSRF check (app.ts's preHandler) sees the fields.
  void app.register(async (scope: FastifyInstance) => {
    await scope.register(multipart, { attachFieldsToBody: 'keyValues', limits: { files: 1, fileSize: IMPORT_LIMIT, fields: 8, fieldSize: IMPORT_LIMIT, parts: 9 } });
    scope.post(
      '/keys/import',
      { schema: { hide: true } },
      consoleRoute(web, 'keys', async (p) => {
        const r = await apiAnswer<ImportReport>(p, 'POST', '/certificates/import', importRequest((p.req.body ?? {}) as Record<string, unknown>));
        const report = r.status === 200 ? r.json : ((r.json as { details?: ImportReport } | null)?.details ?? null);
        if (!report) throw refusalOf(r);
        const taken = report.certificates.filter((c) => c.status === 'added' || c.status === 'updated');
        const clean = r.status === 200 && taken.length === 1 && report.certificates.length === 1 && !report.unreadable.length && report.keys.every((k) => k.status !== 'refused');
        if (clean) return redirectDone(p.reply, `/keys/certificates/${taken[0]!.fingerprint}`, 'cert.import');
        return sendPage(p, {
          title: 'Import', section: 'keys', status: r.status, body: reportPage(report),
          notice: r.status === 200 ? { kind: 'ok', text: `Imported ${taken.length} certificate${taken.length === 1 ? '' : 's'}.` } : { kind: 'error', text: (r.json as { error?: string }).error ?? 'nothing imported' },
        });
      }),
    );
  });

  const fingerprintOf = (p: PageContext) => {
    const fp = String((p.req.params as { fp: string }).fp).toLowerCase();
    if (!FINGERPRINT.test(fp)) throw new PageRefusal(404, 'not a certificate fingerprint');
    return fp;
  };

  app.get(
    '/keys/certificates/:fp',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      const c = await api<CertificateDetail>(p, 'GET', `/certificates/${fingerprintOf(p)}`);
      const notice = doneNotice(p.req);
      return sendPage(p, { title: c.subject || 'Certificate', section: 'keys', body: detailBody(p, c), ...(notice ? { notice } : {}) });
    }),
  );

  app.get(
    '/keys/certificates/:fp/download',
    { schema: { hide: true } },
    consoleRoute(web, 'keys', async (p) => {
      return sendDownload(p, `/certificates/${fingerprintOf(p)}/export`);
    }),
  );

  for (const verb of ['trust', 'distrust', 'delete'] as const) {
    app.post(
      `/keys/certificates/:fp/${verb}`,
      { schema: { hide: true } },
      consoleRoute(web, 'keys', async (p) => {
        const fp = fingerprintOf(p);
        await api(p, 'POST', `/certificates/${fp}/${verb}`, verb === 'delete' ? { withKey: field(p.req.body, 'withKey', 5) === 'true' } : {});
        return redirectDone(p.reply, verb === 'delete' ? '/keys' : `/keys/certificates/${fp}`, `cert.${verb}`);
      }),
    );
  }
}
