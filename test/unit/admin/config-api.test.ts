/**
 * GET /config and POST /system/reload, handlers called directly with a real context: the config
 * in force comes out redacted; a reload is audited, and one the supervisor refuses is a 409 with
 * the problems `postern check` would list.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configRoutes } from '../../../src/admin/api/config.js';
import { REDACTED } from '../../../src/config/index.js';
import { handlerHarness, json, refusal, type HandlerHarness } from '../../helpers/admin-handlers.js';

describe('admin API: config and reload', () => {
  let h: HandlerHarness;
  let reloads: boolean[];
  beforeEach(async () => {
    h = await handlerHarness();
    // The config in force as the admin role holds it: its keystore is open already.
    const inForce = { ...h.config, kek: { passphrase_env: 'POSTERN_KEK_PASSPHRASE' }, import_environment: ['TZ', 'HTTP_PROXY=http://u:proxy-pw@proxy:3128'] };
    h.ctx.config = () => inForce;
    reloads = [];
  });
  afterEach(() => h.close());

  it('shows the config in force with secrets redacted and the policy by its file only', async () => {
    const r = json<{ file: string; config: any }>(await h.call(configRoutes, 'GET', '/config'));
    expect(r.file).toBe(h.config.file);
    expect(r.config.kek).toEqual({ passphrase_env: 'POSTERN_KEK_PASSPHRASE' });
    expect(r.config.import_environment).toEqual(['TZ', `HTTP_PROXY=${REDACTED}`]);
    expect(r.config.policy).toEqual({ file: h.config.policy.file });
    expect(JSON.stringify(r)).not.toContain('proxy-pw');
    expect(r.config.data_dir).toBe(h.dir);
  });

  it('reloads through the supervisor and audits it; a refused reload is a 409 with the problems', async () => {
    let accept = true;
    h.ctx.supervisor.reload = async () => {
      reloads.push(accept);
      return accept;
    };
    expect(json(await h.call(configRoutes, 'POST', '/system/reload'))).toEqual({ reloaded: true });
    // postern.yaml broken since the gateway started: the supervisor keeps the running config.
    await writeFile(h.config.file, 'hostname: gw.test.example\ndata_dir: .\nsmtp: { max_recipients: many }\n');
    accept = false;
    const err = await refusal(h.call(configRoutes, 'POST', '/system/reload'));
    expect(err.status).toBe(409);
    expect(err.details).toEqual({ problems: [expect.objectContaining({ file: join(h.dir, 'postern.yaml'), line: 3, key: 'smtp.max_recipients' })] });
    expect(reloads).toEqual([true, false]);
    expect(h.audits).toEqual([
      { account: 'ops', action: 'system.reload', object: 'system', detail: 'reloaded' },
      { account: 'ops', action: 'system.reload', object: 'system', detail: 'refused: the configuration does not validate' },
    ]);
  });
});
