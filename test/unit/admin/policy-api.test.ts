/**
 * The admin API's policy group, handlers called directly with a real context (keystore with its
 * KEK, portal.db, spool, config and policy files in a temporary folder; the supervisor link is a
 * fake that counts reloads): validation reports what `postern check` reports, explain answers what
 * `postern policy explain` prints, activation writes atomically, keeps versions, refuses a stale
 * edit and is audited with the texts before and after.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../../src/admin/api/index.js';
import { MAX_POLICY_TEXT } from '../../../src/admin/api/policy.js';
import { type AdminCaller, type AdminContext, type ApiResult, type AuditChange } from '../../../src/admin/routes.js';
import { runCli } from '../../../src/cli/index.js';
import { loadConfig } from '../../../src/config/index.js';
import { openKeyStore, openPortalDb, portalDbFile } from '../../../src/keystore/index.js';
import { silentLogger } from '../../../src/log/index.js';
import { policyHash } from '../../../src/policy/index.js';
import { Spool } from '../../../src/spool/index.js';
import { adminHarness, type AdminHarness } from '../../helpers/admin.js';
import { refusal } from '../../helpers/admin-handlers.js';
import { tempDir } from '../../helpers/config.js';

const POLICY = `groups: groups.yaml
rules:
  - name: board encrypts
    when: { direction: outbound, sender: { group: Board } }
    do: [sign, { encrypt: { require: true, otherwise: bounce } }]
  - name: inbound
    when: { direction: inbound }
    do: [decrypt, verify]
`;

const caller: AdminCaller = { account: 'polly', roles: ['policy_operator'], client: '192.0.2.7', via: 'api' };

interface Harness {
  dir: string;
  configFile: string;
  policyFile: string;
  ctx: AdminContext;
  audits: AuditChange[];
  reloads: number;
  call(method: string, url: string, req?: { params?: Record<string, string>; body?: unknown }): Promise<ApiResult & { json?: any }>;
  cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
  close(): Promise<void>;
}

async function harness(): Promise<Harness> {
  const { dir, cleanup } = await tempDir('postern-policy-api-');
  const configFile = join(dir, 'postern.yaml');
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(configFile, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
  await writeFile(join(dir, 'groups.yaml'), 'groups:\n  Board: [ceo@example.com]\n');
  await writeFile(policyFile, POLICY, { mode: 0o640 });
  const cli = async (...argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli([...argv, '-c', configFile], 'postern', { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  };
  for (const args of [['ca', 'init'], ['ca', 'issue', 'ceo@example.com'], ['ca', 'issue', 'partner@partner.example']]) {
    const r = await cli(...args);
    expect(r.code, r.err.join('\n')).toBe(0);
  }
  const config = await loadConfig(configFile);
  const store = await openKeyStore(config);
  const portal = await openPortalDb(portalDbFile(config));
  const audits: AuditChange[] = [];
  const h: Harness = {
    dir,
    configFile,
    policyFile,
    audits,
    reloads: 0,
    ctx: {
      config: () => config,
      configFile,
      store,
      portal,
      spool: await Spool.open(config.data_dir),
      log: silentLogger(),
      supervisor: {
        status: async () => [],
        reload: async () => {
          h.reloads++;
          return true;
        },
      },
      audit: async (who, change) => {
        expect(who).toBe(caller);
        audits.push(change);
      },
    },
    async call(method, url, req = {}) {
      const route = API_ROUTES.find((r) => r.method === method && r.url === url);
      if (!route) throw new Error(`no route ${method} ${url}`);
      return (await route.handler({ params: req.params ?? {}, query: {}, body: req.body, caller }, h.ctx)) as ApiResult & { json?: any };
    },
    cli,
    async close() {
      await store.close();
      portal.close();
      await cleanup();
    },
  };
  return h;
}

describe('admin API: policy', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  }, 60_000);
  afterEach(() => h.close());

  it('shows the policy in force with its hash and modification time', async () => {
    const r = await h.call('GET', '/policy');
    const st = await stat(h.policyFile);
    expect(r.json).toEqual({ file: h.policyFile, hash: policyHash(POLICY), modified: st.mtime.toISOString(), size: POLICY.length, text: POLICY });
  });

  it('validates a draft with the line and column `postern check` reports for the same typo', async () => {
    const typo = POLICY.replace('otherwise: bounce', 'otherwise: bounse').replace('direction: inbound', 'diretcion: inbound');
    const r = await h.call('POST', '/policy/validate', { body: { text: typo } });
    expect(r.json.valid).toBe(false);
    // The same text as the policy file, checked by the CLI.
    await writeFile(h.policyFile, typo);
    const check = await h.cli('check');
    expect(check.code).toBe(1);
    const cliProblems = check.err.filter((l) => l.includes('policy.yaml:'));
    expect(cliProblems).toHaveLength(2);
    expect(r.json.problems.map((p: { line: number; column: number; key: string; message: string }) => `policy.yaml:${p.line}:${p.column}: ${p.key}: ${p.message}`)).toEqual(
      cliProblems.map((l) => l.slice(l.indexOf('policy.yaml:'))),
    );
    expect(r.json.problems[0]).toMatchObject({ line: 5, key: 'rule "board encrypts": rules.0.do.1.encrypt.otherwise' });
    expect(r.json.problems[1]).toMatchObject({ line: 7, key: 'rule "inbound": rules.1.when.diretcion' });
    expect((await h.call('POST', '/policy/validate', { body: { text: POLICY } })).json).toEqual({ valid: true, rules: 2, problems: [] });
  });

  it('reports a broken or far-away groups file and a YAML alias bomb as problems instead of failing', async () => {
    const groups = await h.call('POST', '/policy/validate', { body: { text: 'groups: missing.yaml\nrules: []\n' } });
    expect(groups.json.valid).toBe(false);
    expect(groups.json.problems[0]).toMatchObject({ file: join(h.dir, 'missing.yaml'), message: 'cannot read: ENOENT' });
    // Nothing outside the policy's folder is read as a groups file for a caller of the API.
    for (const path of ['/etc/passwd', '../other/groups.yaml']) {
      const outside = await h.call('POST', '/policy/validate', { body: { text: `rules: []\ngroups: ${path}\n` } });
      expect(outside.json.problems).toEqual([{ file: h.policyFile, line: 2, column: 9, key: 'groups', message: `a groups file must be in the policy file's folder (${h.dir})` }]);
    }
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const bomb = await h.call('POST', '/policy/validate', { body: { text: `${levels.join('\n')}\nrules: []\n` } });
    expect(bomb.json.valid).toBe(false);
    expect(bomb.json.problems[0].message).toMatch(/^YAML: .*alias/i);
  });

  it('explains a message as `postern policy explain` prints it, against the policy in force or a draft', async () => {
    const args = ['--from', 'ceo@example.com', '--to', 'partner@partner.example', '--to', 'nobody@plain.example', '--subject', 'Minutes'];
    const cli = await h.cli('policy', 'explain', ...args);
    expect(cli.code, cli.err.join('\n')).toBe(0);
    const api = await h.call('POST', '/policy/explain', { body: { from: 'ceo@example.com', to: ['partner@partner.example', 'nobody@plain.example'], subject: 'Minutes' } });
    expect(api.json.printed).toEqual(cli.out);
    expect(api.json.printed.join('\n')).toMatch(/\n  rules: "board encrypts" \(line 3\)\n  1\. sign\n  2\. encrypt .* → S\/MIME\n/);
    const json = await h.cli('policy', 'explain', ...args, '--json');
    const { draft, printed, ...rest } = api.json;
    expect(draft).toBe(false);
    expect(JSON.parse(JSON.stringify(rest))).toEqual(JSON.parse(json.out.join('\n')));
    // A draft whose rule holds instead: explained against the draft, the file untouched; its
    // groups: path is relative to the policy file's folder, as if it were the file.
    const text = POLICY.replace('otherwise: bounce', 'otherwise: hold');
    const d = await h.call('POST', '/policy/explain', { body: { from: 'ceo@example.com', to: ['nobody@plain.example'], text } });
    expect(d.json.draft).toBe(true);
    expect(d.json.printed.join('\n')).toMatch(/hold <nobody@plain\.example>: encryption required/);
    expect(await readFile(h.policyFile, 'utf8')).toBe(POLICY);
  });

  it('refuses to explain for an address smtpd would refuse, or against a draft that does not validate', async () => {
    const bad = await refusal(h.call('POST', '/policy/explain', { body: { from: 'ceo@example.com', to: ['bob@exam\u00adple.com'] } }));
    expect(bad.status).toBe(400);
    expect(bad.message).toMatch(/^to\[0\]: /);
    const draft = await refusal(h.call('POST', '/policy/explain', { body: { from: 'ceo@example.com', to: ['bob@example.com'], text: 'rules: {}\n' } }));
    expect(draft.status).toBe(400);
    expect(draft.details).toEqual({ problems: [expect.objectContaining({ line: 1, key: 'rules', message: 'expected a list of rules' })] });
  });
});

describe('admin API: activating the policy, its versions', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  }, 60_000);
  afterEach(() => h.close());

  const edited = POLICY.replace('otherwise: bounce', 'otherwise: hold');

  it('writes the new policy atomically, keeps the old one as a version, audits before and after, reloads', async () => {
    const { ino } = await stat(h.policyFile);
    const r = await h.call('POST', '/policy/activate', { body: { text: edited, hash: policyHash(POLICY) } });
    expect(r.json).toMatchObject({ outcome: 'activated', rules: 2, reloaded: true, version: { by: 'polly', hash: policyHash(edited) } });
    expect(await readFile(h.policyFile, 'utf8')).toBe(edited);
    const after = await stat(h.policyFile);
    // Replaced by a rename (a new inode), with the old file's mode; no temporary file left behind.
    expect(after.ino).not.toBe(ino);
    expect(after.mode & 0o777).toBe(0o640);
    expect((await readdir(h.dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
    expect(h.reloads).toBe(1);
    expect(h.audits).toEqual([{ action: 'policy.activate', object: 'policy', detail: `version ${r.json.version.id}`, before: POLICY, after: edited }]);

    const list = (await h.call('GET', '/policy/versions')).json.versions;
    expect(list.map((v: { by: string | null; hash: string; active: boolean }) => [v.by, v.hash, v.active])).toEqual([
      ['polly', policyHash(edited), true],
      [null, policyHash(POLICY), false],
    ]);
    const old = await h.call('GET', '/policy/versions/:id', { params: { id: list[1].id } });
    expect(old.json.text).toBe(POLICY);
    // Kept in data_dir, private to the gateway.
    expect((await stat(join(h.dir, 'policy-versions'))).mode & 0o777).toBe(0o700);
  });

  it('refuses a stale edit with 409 and leaves the file as the other admin made it', async () => {
    await h.call('POST', '/policy/activate', { body: { text: edited, hash: policyHash(POLICY) } });
    const mine = POLICY.replace('[decrypt, verify]', '[decrypt]');
    const e = await refusal(h.call('POST', '/policy/activate', { body: { text: mine, hash: policyHash(POLICY) } }));
    expect(e.status).toBe(409);
    expect(e.details).toEqual({ hash: policyHash(edited) });
    expect(await readFile(h.policyFile, 'utf8')).toBe(edited);
    // A file edited by hand is stale for an edit of the text before it, too.
    await writeFile(h.policyFile, mine);
    expect((await refusal(h.call('POST', '/policy/activate', { body: { text: POLICY, hash: policyHash(edited) } }))).status).toBe(409);
    expect(h.audits).toHaveLength(1);
    expect(h.reloads).toBe(1);
  });

  it('refuses a policy that does not validate with every problem, writing and reloading nothing', async () => {
    const e = await refusal(h.call('POST', '/policy/activate', { body: { text: POLICY.replace('direction: inbound', 'direction: sideways'), hash: policyHash(POLICY) } }));
    expect(e.status).toBe(400);
    expect(e.details).toEqual({ problems: [expect.objectContaining({ line: 7, key: 'rule "inbound": rules.1.when.direction' })] });
    expect(await readFile(h.policyFile, 'utf8')).toBe(POLICY);
    expect(h.audits).toEqual([]);
    expect(h.reloads).toBe(0);
    expect((await h.call('GET', '/policy/versions')).json.versions).toEqual([]);
  });

  it('rolls back to a kept version, keeping a hand edit made in between as a version of its own', async () => {
    const first = await h.call('POST', '/policy/activate', { body: { text: edited, hash: policyHash(POLICY) } });
    const byHand = `${edited}# edited on the machine\n`;
    await writeFile(h.policyFile, byHand);
    const versions = (await h.call('GET', '/policy/versions')).json.versions;
    const original = versions.find((v: { hash: string }) => v.hash === policyHash(POLICY));
    const r = await h.call('POST', '/policy/versions/:id/activate', { params: { id: original.id }, body: { hash: policyHash(byHand) } });
    expect(r.json.outcome).toBe('activated');
    expect(await readFile(h.policyFile, 'utf8')).toBe(POLICY);
    expect(h.audits[1]).toEqual({ action: 'policy.rollback', object: 'policy', detail: `version ${r.json.version.id}; from version ${original.id}`, before: byHand, after: POLICY });
    const now = (await h.call('GET', '/policy/versions')).json.versions;
    expect(now.map((v: { hash: string; by: string | null }) => [v.hash, v.by])).toEqual([
      [policyHash(POLICY), 'polly'],
      [policyHash(byHand), null],
      [policyHash(edited), 'polly'],
      [policyHash(POLICY), null],
    ]);
    expect(now[2].id).toBe(first.json.version.id);
    // Activating what is in force changes nothing: no write, no audit, no reload.
    const again = await h.call('POST', '/policy/activate', { body: { text: POLICY, hash: policyHash(POLICY) } });
    expect(again.json.outcome).toBe('unchanged');
    expect(h.audits).toHaveLength(2);
    expect(h.reloads).toBe(2);
  });

  it('answers 404 for a version that is not kept, and never reads outside the versions folder', async () => {
    const missing = await refusal(h.call('GET', '/policy/versions/:id', { params: { id: '20260101T000000000Z-000000000000' } }));
    expect(missing.status).toBe(404);
    // The schema refuses such ids before the handler; the handler refuses them too.
    expect((await refusal(h.call('GET', '/policy/versions/:id', { params: { id: '../policy' } }))).status).toBe(404);
    expect((await refusal(h.call('POST', '/policy/versions/:id/activate', { params: { id: '../../postern' }, body: {} }))).status).toBe(404);
  });
});

describe('admin API: the policy routes through the admin app (schemas, session, audit trail)', () => {
  let a: AdminHarness;
  beforeEach(async () => {
    a = await adminHarness({ prefix: 'postern-policy-app-', roles: ['policy_operator', 'auditor'] });
    await writeFile(a.config.policy.file, 'rules: []\n');
  }, 60_000);
  afterEach(() => a.close());

  it('records an activation in the audit trail with account, client, channel and both texts', async () => {
    const s = await a.as('policy_operator');
    const shown = (await a.call(s, 'GET', '/policy')).json();
    const r = await a.call(s, 'POST', '/policy/activate', { text: POLICY.replace('groups: groups.yaml\n', ''), hash: shown.hash });
    expect(r.statusCode, r.body).toBe(200);
    expect(a.reloads).toBe(1);
    expect(await a.store.auditLog({ object: 'policy' })).toEqual([
      expect.objectContaining({ actor: 'op-policy_operator', action: 'policy.activate', via: 'api', client: '127.0.0.1', before: 'rules: []\n', after: POLICY.replace('groups: groups.yaml\n', '') }),
    ]);
  });

  it('refuses by schema what no handler should see: oversized drafts, ids with path separators, unknown fields', async () => {
    const s = await a.as('auditor');
    const huge = await a.call(s, 'POST', '/policy/validate', { text: `rules: []\n#${'x'.repeat(MAX_POLICY_TEXT)}` });
    expect(huge.statusCode).toBe(400);
    expect((await a.call(s, 'GET', '/policy/versions/..%2F..%2Fpostern')).statusCode).toBe(400);
    expect((await a.call(s, 'POST', '/policy/validate', { text: 'rules: []\n', file: '/etc/passwd' })).statusCode).toBe(400);
    expect((await a.call(s, 'POST', '/policy/explain', { from: 'a@example.com', to: ['b@example.com'], headers: [{ name: 'X-Evil:\r\nBcc', value: 'x' }] })).statusCode).toBe(400);
    // A rollback's body may be empty ({}: no hash to compare); an unknown version is 404.
    const p = await a.as('policy_operator');
    const res = await a.call(p, 'POST', '/policy/versions/20260101T000000000Z-000000000000/activate', {});
    expect(res.statusCode, res.body).toBe(404);
  });
});
