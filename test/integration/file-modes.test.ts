/**
 * Issue 14, file modes: the real gateway on a fresh data_dir, and on one an older install left
 * open, then `stat` of what it keeps on disk. Run as root (as here and in CI), smtpd and the portal
 * run as the unprivileged `user:` (issue 15): data_dir and spool/ are then root's and that
 * account's group's, which may only pass through, and spool/tmp and spool/incoming are root's,
 * group-writable and sticky (the account removes or renames only its own files there).
 */
import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { swaks } from '../helpers/smtp-swaks.js';
import { lookupAccount } from '../../src/supervisor/index.js';

const mode = async (p: string) => (await stat(p)).mode & 0o7777;
const owner = async (p: string) => {
  const st = await stat(p);
  return `${st.uid}:${st.gid}`;
};
/** The account of the default `user:` when the suite runs as root (scripts/setup-test-deps.sh makes it). */
const unpriv = process.getuid?.() === 0 ? lookupAccount('postern') : null;
const root = `${process.getuid?.()}:${process.getgid?.()}`;
const exists = (p: string) => stat(p).then(() => true, () => false);

async function writeConfig(dir: string, port: number): Promise<string> {
  await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  const file = join(dir, 'postern.yaml');
  await writeFile(
    file,
    `hostname: gw.test.example
data_dir: ./var
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
workers: 1
log: { level: info }
smtp:
  listen: ["127.0.0.1:${port}"]
relay:
  routes:
    "*": maildir:./maildir
policy: policy.yaml
admin: { listen: [] }
`,
  );
  return file;
}

/** One mail through the gateway (swaks in, maildir out): every role has done its work once. */
async function sendOne(port: number, dir: string, token: string): Promise<void> {
  const r = await swaks(['--server', '127.0.0.1', '--port', String(port), '--from', 'alice@example.com', '--to', 'bob@partner.example', '--body', token]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  await maildirOf(() => dir).waitDelivered('bob@partner.example', token);
}

describe('file modes of data_dir, the database and the KEK', () => {
  let gw: Gateway | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await gw?.stop();
    await cleanup?.();
    gw = cleanup = undefined;
  });

  it('creates data_dir 0700 (0710 with the unprivileged group) and the database, its WAL/SHM and the KEK 0600 (after a mail went through)', async () => {
    const t = await tempDir('postern-modes-');
    cleanup = t.cleanup;
    const port = await freePort();
    gw = await startGateway(await writeConfig(t.dir, port));
    await sendOne(port, t.dir, 'modes-token');

    const data = join(t.dir, 'var');
    if (unpriv) {
      const group = `0:${unpriv.gid}`;
      expect([await mode(data), await owner(data)]).toEqual([0o710, group]);
      expect([await mode(join(data, 'spool')), await owner(join(data, 'spool'))]).toEqual([0o710, group]);
      expect([await mode(join(data, 'spool', 'tmp')), await owner(join(data, 'spool', 'tmp'))]).toEqual([0o1730, group]);
      expect([await mode(join(data, 'spool', 'incoming')), await owner(join(data, 'spool', 'incoming'))]).toEqual([0o1770, group]);
      // Cut RFC 1845 transactions: smtpd keeps, lists and removes its own files there.
      expect([await mode(join(data, 'spool', 'partial')), await owner(join(data, 'spool', 'partial'))]).toEqual([0o1770, group]);
      for (const q of ['active', 'outgoing', 'deferred', 'hold', 'corrupt']) expect([q, await mode(join(data, 'spool', q)), await owner(join(data, 'spool', q))]).toEqual([q, 0o700, root]);
    } else {
      expect(await mode(data)).toBe(0o700);
      for (const q of ['', 'tmp', 'incoming', 'active', 'outgoing', 'deferred', 'hold', 'corrupt', 'partial']) {
        expect([q, await mode(join(data, 'spool', q))]).toEqual([q, 0o700]);
      }
    }
    const db = join(data, 'postern.db');
    // The worker has the database open in WAL mode, so the WAL and SHM files exist now.
    expect(await exists(`${db}-wal`)).toBe(true);
    expect(await exists(`${db}-shm`)).toBe(true);
    for (const f of [db, `${db}-wal`, `${db}-shm`, join(data, 'kek.key')]) expect([f, await mode(f), await owner(f)]).toEqual([f, 0o600, root]);
    expect(gw.logs.filter((l) => l.event === 'supervisor.mode_tightened')).toEqual([]);
  }, 60_000);

  it('tightens a data_dir created 0755 and a database left 0644 by an older install, and logs it', async () => {
    const t = await tempDir('postern-modes-');
    cleanup = t.cleanup;
    const data = join(t.dir, 'var');
    await mkdir(join(data, 'spool', 'incoming'), { recursive: true });
    await chmod(data, 0o755);
    await chmod(join(data, 'spool'), 0o755);
    await chmod(join(data, 'spool', 'incoming'), 0o755);
    // An empty file is an empty SQLite database: as an older Postern created it.
    await writeFile(join(data, 'postern.db'), '');
    await chmod(join(data, 'postern.db'), 0o644);

    const port = await freePort();
    gw = await startGateway(await writeConfig(t.dir, port));
    await sendOne(port, t.dir, 'modes-old-install');
    // The group keeps the read the admin gave it; with an unprivileged account it is that account's.
    expect(await mode(data)).toBe(0o750);
    const spoolMode = unpriv ? 0o710 : 0o700;
    expect(await mode(join(data, 'spool'))).toBe(spoolMode);
    expect(await mode(join(data, 'spool', 'incoming'))).toBe(unpriv ? 0o1770 : 0o700);
    expect(await mode(join(data, 'postern.db'))).toBe(0o600);
    expect(await mode(join(data, 'postern.db-wal'))).toBe(0o600);
    const changed = gw.logs.filter((l) => l.event === 'supervisor.mode_tightened').map((l) => [l.path, l.from, l.to]);
    expect(changed).toEqual(
      expect.arrayContaining([
        [data, '0755', '0750'],
        [join(data, 'spool'), '0755', unpriv ? '0710' : '0700'],
        // With the account: what 1770 does not give is taken, then the sticky group access given.
        [join(data, 'spool', 'incoming'), '0755', unpriv ? '0750' : '0700'],
        [join(data, 'postern.db'), '0644', '0600'],
      ]),
    );
    expect(changed).toHaveLength(4);
  }, 60_000);
});
