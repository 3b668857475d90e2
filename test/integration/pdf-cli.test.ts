/**
 * `postern pdf password …` and `postern pdf list` through the real binary (dist/main.js), and
 * the race of several worker processes making one pair's password at once (dist/keystore, as the
 * worker role loads it): one password wins, and the CLI shows that one.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { runPostern, runPosternWithInput } from '../helpers/gateway.js';

const exec = promisify(execFile);
const KEYSTORE = resolve(import.meta.dirname, '../../dist/keystore/index.js');
const CONFIG_JS = resolve(import.meta.dirname, '../../dist/config/index.js');

describe('postern pdf', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  const env = (over: NodeJS.ProcessEnv = {}) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...over };
    if (!('POSTERN_PDF_PASSWORD' in over)) delete e.POSTERN_PDF_PASSWORD;
    return e;
  };
  const postern = (args: string[], over?: NodeJS.ProcessEnv) => runPostern(config, args, env(over));
  const ok = async (args: string[], over?: NodeJS.ProcessEnv) => {
    const r = await postern(args, over);
    if (r.code !== 0) throw new Error(`postern ${args.join(' ')} → ${r.code}\n${r.stderr}${r.stdout}`);
    return r;
  };
  /** `postern …` with `input` piped to stdin. */
  const piped = (args: string[], input: string) => runPosternWithInput(config, args, input, env());
  const audit = () => {
    const db = new Database(join(dir, 'postern.db'), { readonly: true });
    try {
      return db.prepare('SELECT actor, action, object, detail FROM audit_log ORDER BY id').all() as { actor: string; action: string; object: string; detail: string | null }[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-pdf-cli-'));
    config = join(dir, 'postern.yaml');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
  });
  afterAll(() => cleanup());

  it('ends a race of four worker processes with one password, which the CLI then shows', async () => {
    // What the worker role does: open the store from the config, ask for the pair's password.
    const script = `
      const { loadConfig } = await import(${JSON.stringify(CONFIG_JS)});
      const { openKeyStore } = await import(${JSON.stringify(KEYSTORE)});
      const store = await openKeyStore(await loadConfig(process.argv[1]), { pdfScrypt: { N: 1024, r: 8, p: 1 } });
      const r = await store.pdfPassword({ sender: 'race@example.com', recipient: 'Dest@Partner.example' }, 'pair', 'worker-' + process.pid);
      await store.close();
      process.stdout.write(JSON.stringify({ password: r.password, created: r.created }));`;
    // The first opening of the database migrates it; the race is about the password, not that.
    await ok(['pdf', 'list']);
    const runs = await Promise.all([1, 2, 3, 4].map(() => exec(process.execPath, ['--input-type=module', '-e', script, config], { env: env() })));
    const results = runs.map((r) => JSON.parse(r.stdout) as { password: string; created: boolean });
    expect(new Set(results.map((r) => r.password)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const shown = await ok(['pdf', 'password', 'show', '--from', 'RACE@example.com', '--to', 'dest@partner.example']);
    expect(shown.stdout).toBe(`${results[0]!.password}\n`);
    expect(shown.stderr).toMatch(/generated .* not yet told to the sender/);
    expect(audit().filter((a) => a.action === 'pdf-password-create')).toHaveLength(1);
  });

  it('sets a password from the environment or stdin, never from the command line, and shows it (audited)', async () => {
    const set = await ok(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'bob@partner.example'], { POSTERN_PDF_PASSWORD: 'env-chosen-secret-1' });
    expect(set.stdout).toMatch(/^password set for alice@example\.com → bob@partner\.example; the sender \(alice@example\.com\) is told it in a notice \(queue id [A-Za-z0-9]+\)\n$/);
    // The notice waits in outgoing/ for the relay: from <>, to the sender, with the password.
    const id = /queue id ([A-Za-z0-9]+)/.exec(set.stdout)![1]!;
    const notice = await readFile(join(dir, 'spool', 'outgoing', `${id}.0`), 'latin1');
    expect(notice).toContain('"address":"alice@example.com"');
    expect(notice).toMatch(/^Subject: New password for encrypted PDF mail to bob@partner\.example\r$/m);
    expect(notice).toContain('    env-chosen-secret-1\r\n');
    // A sender outside internal_domains is never mailed a password.
    const outside = await ok(['pdf', 'password', 'set', '--from', 'zed@outside.example', '--to', 'bob@partner.example'], { POSTERN_PDF_PASSWORD: 'outside-secret-77' });
    expect(outside.stdout).toBe('password set for zed@outside.example → bob@partner.example; the sender (zed@outside.example) is not in internal_domains and is not told by mail: pass it on yourself (postern pdf password show)\n');
    await ok(['pdf', 'password', 'delete', '--from', 'zed@outside.example', '--to', 'bob@partner.example']);
    expect((await ok(['pdf', 'password', 'show', '--from', 'alice@example.com', '--to', 'bob@partner.example'])).stdout).toBe('env-chosen-secret-1\n');

    const fromStdin = await piped(['pdf', 'password', 'set', '--scope', 'recipient', '--to', 'carol@third.example'], 'piped-in-secret-22\n');
    expect(fromStdin).toMatchObject({ code: 0, stdout: 'password set for any sender → carol@third.example; whoever sends the next PDF to them is told it\n' });
    expect((await ok(['pdf', 'password', 'show', '--scope', 'recipient', '--to', 'carol@third.example'])).stdout).toBe('piped-in-secret-22\n');

    // A password on the command line is refused and not echoed.
    const argv = await postern(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'bob@partner.example', 'argv-secret-333']);
    expect(argv.code).toBe(2);
    expect(argv.stderr).toMatch(/never from the command line/);
    expect(argv.stderr).not.toContain('argv-secret-333');
    // Too short: refused by the store, the old password stays.
    const weak = await postern(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'bob@partner.example'], { POSTERN_PDF_PASSWORD: 'short' });
    expect(weak).toMatchObject({ code: 1, stderr: 'postern: a PDF password must have at least 10 characters\n' });
    const empty = await piped(['pdf', 'password', 'set', '--from', 'alice@example.com', '--to', 'bob@partner.example'], '');
    expect(empty.code).toBe(2);

    const log = audit();
    expect(log.filter((a) => a.object === 'pdf:alice@example.com→bob@partner.example').map((a) => a.action)).toEqual(['pdf-password-set', 'pdf-password-notified', 'pdf-password-show']);
    expect(log.find((a) => a.action === 'pdf-password-show')!.actor).toMatch(/^cli:/);
    expect(JSON.stringify(log)).not.toMatch(/env-chosen-secret-1|piped-in-secret-22/);
  });

  it('resets to a new password, lists pairs without passwords, deletes, and says which pair it does not know', async () => {
    await ok(['pdf', 'password', 'set', '--from', 'erin@example.com', '--to', 'fay@fourth.example'], { POSTERN_PDF_PASSWORD: 'before-reset-4444' });
    const reset = await ok(['pdf', 'password', 'reset', '--from', 'erin@example.com', '--to', 'fay@fourth.example']);
    expect(reset.stdout).toMatch(/^new password made for erin@example\.com → fay@fourth\.example; the sender \(erin@example\.com\) is told it in a notice/);
    const now = (await ok(['pdf', 'password', 'show', '--from', 'erin@example.com', '--to', 'fay@fourth.example'])).stdout.trim();
    expect(now).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}-[a-z2-9]$/);

    const table = (await ok(['pdf', 'list'])).stdout;
    expect(table.split('\n')[0]).toBe('SENDER\tRECIPIENT\tCREATED\tNOTIFIED\tSOURCE');
    // Told at once (the notice is queued), so NOTIFIED has a time.
    expect(table).toMatch(/^erin@example\.com\tfay@fourth\.example\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tgenerated$/m);
    expect(table).toMatch(/^\*\tcarol@third\.example\t.*\tset$/m);
    expect(table).toMatch(/^-- 4 passwords$/m);
    expect(table).not.toContain(now);
    const json = (await ok(['pdf', 'list', '--to', 'FAY@fourth.example', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).toEqual([{ sender: 'erin@example.com', recipient: 'fay@fourth.example', created: expect.stringMatching(/Z$/), notified: expect.stringMatching(/Z$/), source: 'generated' }]);
    expect((await ok(['pdf', 'list', '--scope', 'recipient'])).stdout).toMatch(/^\*\tcarol@third\.example\t/m);
    expect((await ok(['pdf', 'list', '--from', 'erin@example.com'])).stdout).toMatch(/^-- 1 password$/m);

    expect((await ok(['pdf', 'password', 'delete', '--from', 'erin@example.com', '--to', 'fay@fourth.example'])).stdout).toMatch(/^deleted the PDF password for erin@example\.com → fay@fourth\.example/);
    for (const sub of ['show', 'reset', 'delete']) {
      const r = await postern(['pdf', 'password', sub, '--from', 'erin@example.com', '--to', 'fay@fourth.example']);
      expect(r, sub).toMatchObject({ code: 1, stderr: 'postern: no PDF password for erin@example.com → fay@fourth.example\n' });
    }
  });

  it('refuses unclear requests with a usage error (exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [['pdf', 'password', 'show', '--to', 'bob@partner.example'], /needs --from A .* or --scope recipient/],
      [['pdf', 'password', 'show', '--scope', 'recipient', '--from', 'a@example.com', '--to', 'bob@partner.example'], /leave out --from/],
      [['pdf', 'password', 'show', '--from', 'alice@example.com'], /needs --to B/],
      [['pdf', 'password', 'show', '--from', 'not an address', '--to', 'bob@partner.example'], /--from "not an address": not a mail address/],
      [['pdf', 'password', 'show', '--scope', 'everyone', '--to', 'bob@partner.example'], /--scope must be pair .* or recipient/],
      [['pdf', 'password', 'rotate', '--from', 'a@example.com', '--to', 'b@example.com'], /takes show, reset, set or delete/],
      [['pdf', 'passwords'], /unknown pdf command "passwords"/],
    ];
    for (const [args, message] of cases) {
      const r = await postern(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});
