/**
 * The configuration page: the config in force as the API shows it (GET /api/config: defaults
 * filled in, every secret redacted there, not here), as YAML, and the button that reloads the
 * running gateway (POST /api/system/reload, system.change; refused with the problems when the
 * files on disk do not validate).
 */
import { stringify } from 'yaml';
import { html } from '../../portal/index.js';
import type { AdminWeb } from '../app.js';
import { api, apiAnswer, consoleRoute, doneNotice, redirectDone, refusalOf, sendPage } from './kit.js';
import { actionForm } from './layout.js';

interface Problem {
  file?: string;
  line?: number;
  column?: number;
  message: string;
}

export function configPages(web: AdminWeb): void {
  web.app.get(
    '/config',
    { schema: { hide: true } },
    consoleRoute(web, 'config', async (p) => {
      const c = await api<{ file: string; config: unknown }>(p, 'GET', '/config');
      const body = html`<div class="actions">${actionForm({ caller: p.caller, csrf: p.csrf, action: '/config/reload', permission: 'system.change', label: 'Reload the gateway', confirm: 'Reload the configuration and policy from disk now?' })}
<span class="hint">Reads postern.yaml and the policy again, as SIGHUP does; files that do not validate are refused and the running ones stay.</span></div>
<section class="card"><h2>${c.file} <small>in force, defaults filled in, secrets redacted</small></h2><pre class="block" id="config">${stringify(c.config, { lineWidth: 0 })}</pre></section>`;
      const notice = doneNotice(p.req);
      return sendPage(p, { title: 'Configuration', section: 'config', body, ...(notice ? { notice } : {}) });
    }),
  );

  web.app.post(
    '/config/reload',
    { schema: { hide: true } },
    consoleRoute(web, 'config', async (p) => {
      const r = await apiAnswer<{ reloaded: boolean }>(p, 'POST', '/system/reload');
      if (r.status === 200) return redirectDone(p.reply, '/config', 'system.reload');
      const refusal = refusalOf(r);
      const problems = ((refusal.details as { problems?: Problem[] } | undefined)?.problems ?? []);
      return sendPage(p, {
        title: 'Configuration', section: 'config', status: r.status, notice: { kind: 'error', text: refusal.message },
        body: html`<section class="card"><h2>Problems</h2><ol class="problems">${problems.map((x) => html`<li>${x.file ?? ''}${x.line ? `:${x.line}${x.column ? `:${x.column}` : ''}` : ''} ${x.message}</li>`)}</ol><div class="actions"><a class="button secondary" href="/config">Back</a></div></section>`,
      });
    }),
  );
}
