/**
 * Issue 15, isolation of roles by the operating system: the real gateway started as root, then
 * what the kernel says about its roles — /proc/PID/status (user and group ids), /proc/PID/environ
 * (the environment they were started with), /proc/PID/maps (the native modules they loaded) — and
 * what a process with the unprivileged roles' ids may open. Mail still flows end to end, the
 * unprivileged portal serves WKD and its key server (HKP, certificates), and a reload reaches the
 * unprivileged smtpd.
 *
 * Needs root: only root can start processes as another user and read their /proc files. The suite
 * runs as root here and in CI (scripts/setup-test-deps.sh creates the `postern` account); run
 * unprivileged, the file is skipped.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmod, chown, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicPacketsOnly } from '../../src/portal/index.js';
import { lookupAccount } from '../../src/supervisor/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, Gateway, MAIN, runPostern, startGateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const account = isRoot ? lookupAccount('postern') : null;
/** What fork() and the supervisor add to the allow-list of every role. */
const CHANNEL = ['NODE_CHANNEL_FD', 'NODE_CHANNEL_SERIALIZATION_MODE', 'POSTERN_ROLE_INDEX'];
const DEFAULT_IMPORT = ['PATH', 'TZ', 'LANG', 'LC_ALL', 'LC_CTYPE', 'NODE_EXTRA_CA_CERTS', 'POSTERN_LOG_LEVEL'];

function ids(pid: number): { uid: number[]; gid: number[]; groups: number[] } {
  const status = spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout;
  const field = (name: string) => (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

async function environ(pid: number): Promise<Map<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8');
  return new Map(raw.split('\0').filter(Boolean).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Open `path` for reading in a fresh process with these ids (no supplementary groups): the kernel decides. */
function openAs(path: string, who: { uid: number; gid: number }): { ok: boolean; error: string } {
  const r = spawnSync(process.execPath, ['-e', 'require("fs").closeSync(require("fs").openSync(process.argv[1], "r"))', path], { uid: who.uid, gid: who.gid, encoding: 'utf8' });
  return { ok: r.status === 0, error: /\b(E[A-Z]+)\b/.exec(r.stderr)?.[1] ?? '' };
}

/** Run `code` (with `fs` in scope) in a process with these ids: 'ok', or the error code. */
function fsAs(code: string, who: { uid: number; gid: number }): string {
  const r = spawnSync(process.execPath, ['-e', `const fs = require("fs"); ${code}`], { uid: who.uid, gid: who.gid, encoding: 'utf8' });
  return r.status === 0 ? 'ok' : (/\b(E[A-Z]+)\b/.exec(r.stderr)?.[1] ?? r.stderr);
}

async function selfSigned(dir: string, name: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await exec('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}.test.example`, '-keyout', key, '-out', cert]);
  // As an admin keeps it: the key readable by root alone.
  await chmod(key, 0o600);
  return { cert, key, fingerprint: await fingerprintOf(await readFile(cert, 'utf8')) };
}

async function fingerprintOf(pem: string): Promise<string> {
  const p = exec('openssl', ['x509', '-noout', '-fingerprint', '-sha256']);
  p.child.stdin!.end(pem);
  return (await p).stdout.trim();
}

function roleConfig(port: number, portalPort: number, extra: string, smtpTls = false, portalTls = false): string {
  return `hostname: gw.test.example
data_dir: .
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
workers: 1
log: { level: info }
smtp:
  listen: ["127.0.0.1:${port}"]
${smtpTls ? '  tls: { cert: smtp.crt, key: smtp.key }\n' : ''}portal:
  listen: ["127.0.0.1:${portalPort}"]
  index_ttl: 1s
${portalTls ? '  tls: { cert: portal.crt, key: portal.key }\n' : ''}relay:
  routes: { "*": "maildir:./maildir" }
header_protection: copy
policy: policy.yaml
${/^admin:/m.test(extra) ? '' : 'admin: { listen: [] }\n'}${extra}`;
}

describe.skipIf(!isRoot)('roles isolated by the OS, file KEK (needs root: setuid and other processes\' /proc)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let portalPort: number;
  let config: string;
  let tls: { cert: string; key: string; fingerprint: string };
  const { waitDelivered } = maildirOf(() => dir);
  const pid = (role: string) => gw.rolePids(role).at(-1)!;

  beforeAll(async () => {
    expect(account, 'the postern account (scripts/setup-test-deps.sh creates it)').not.toBeNull();
    ({ dir, cleanup } = await tempDir('postern-isolation-'));
    [port, portalPort] = [await freePort(), await freePort()];
    tls = await selfSigned(dir, 'smtp');
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    config = join(dir, 'postern.yaml');
    await writeFile(config, roleConfig(port, portalPort, '', true));
    const r = await runPostern(config, ['pgp', 'generate', 'alice@example.com', '--name', 'Alice']);
    expect(r.code, r.stderr).toBe(0);
    // Not on the allow-list: must reach no role.
    process.env.POSTERN_TEST_UNLISTED = 'unlisted-value-7f3a';
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'portal.unprivileged');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    delete process.env.POSTERN_TEST_UNLISTED;
    await cleanup();
  });

  it('smtpd and the portal run as the unprivileged account, with no other group; the worker and the relay stay root', async () => {
    const a = account!;
    for (const role of ['smtpd', 'portal']) {
      // real, effective, saved and file-system ids alike: root cannot be regained.
      expect([role, ids(pid(role))]).toEqual([role, { uid: [a.uid, a.uid, a.uid, a.uid], gid: [a.gid, a.gid, a.gid, a.gid], groups: [a.gid] }]);
    }
    for (const role of ['worker', 'relay']) expect([role, ids(pid(role)).uid]).toEqual([role, [0, 0, 0, 0]]);
  });

  it('their ids cannot open kek.key or postern.db, nor read the queues smtpd has no business in, nor touch root\'s files where it writes', async () => {
    const smtpd = ids(pid('smtpd'));
    const as = { uid: smtpd.uid[0]!, gid: smtpd.gid[0]! };
    for (const f of ['kek.key', 'postern.db', 'postern.db-wal', 'smtp.key']) expect([f, openAs(join(dir, f), as)]).toEqual([f, { ok: false, error: 'EACCES' }]);
    for (const q of ['active', 'outgoing', 'deferred', 'hold', 'corrupt']) expect([q, openAs(join(dir, 'spool', q), as)]).toEqual([q, { ok: false, error: 'EACCES' }]);
    // The oracle works: the same ids open what they must (the public key file, their own queue).
    expect(openAs(join(dir, 'public', 'openpgp-keys.json'), as)).toEqual({ ok: true, error: '' });
    expect(openAs(join(dir, 'spool', 'incoming'), as)).toEqual({ ok: true, error: '' });
    expect(openAs(join(dir, 'kek.key'), { uid: 0, gid: 0 })).toEqual({ ok: true, error: '' });
    // tmp/ is sticky: a file root's roles keep there (a worker's output on its way to outgoing/)
    // can be neither removed nor renamed by these ids, and tmp/ cannot be listed. (incoming/ is
    // sticky the same way, file-modes.test.ts; a probe there would be taken by the worker.)
    const rootsFile = join(dir, 'spool', 'tmp', `${process.pid}.isolation-probe`);
    await writeFile(rootsFile, "root's", { mode: 0o600 });
    try {
      expect(fsAs(`fs.unlinkSync(${JSON.stringify(rootsFile)})`, as)).toBe('EPERM');
      expect(fsAs(`fs.renameSync(${JSON.stringify(rootsFile)}, ${JSON.stringify(`${rootsFile}.moved`)})`, as)).toBe('EPERM');
      expect(fsAs(`fs.writeFileSync(${JSON.stringify(`${rootsFile}.own`)}, "x"); fs.unlinkSync(${JSON.stringify(`${rootsFile}.own`)})`, as)).toBe('ok');
    } finally {
      await rm(rootsFile, { force: true });
    }
    expect(fsAs(`fs.readdirSync(${JSON.stringify(join(dir, 'spool', 'tmp'))})`, as)).toBe('EACCES');
  });

  it('their environment holds the allow-list and nothing else', async () => {
    for (const role of ['smtpd', 'portal', 'worker', 'relay']) {
      const env = await environ(pid(role));
      expect([role, [...env.keys()].filter((k) => !DEFAULT_IMPORT.includes(k) && !CHANNEL.includes(k))]).toEqual([role, []]);
      expect([role, [...env.values()].some((v) => v.includes('unlisted-value-7f3a'))]).toEqual([role, false]);
    }
    // The oracle: the supervisor itself has it.
    expect((await environ(gw.proc.pid!)).get('POSTERN_TEST_UNLISTED')).toBe('unlisted-value-7f3a');
  });

  it('smtpd never loaded the keystore (no SQLite, no PKCS#11 in its memory); the portal has SQLite for portal.db only, never PKCS#11', async () => {
    const maps = async (role: string) => readFile(`/proc/${pid(role)}/maps`, 'utf8');
    const m = await maps('smtpd');
    expect([/better_sqlite3\.node/.test(m), /pkcs11\.node/.test(m)]).toEqual([false, false]);
    const p = await maps('portal');
    expect([/better_sqlite3\.node/.test(p), /pkcs11\.node/.test(p)]).toEqual([true, false]);
    // The oracle: the worker has the database open.
    expect(await maps('worker')).toMatch(/better_sqlite3\.node/);
  });

  it('the portal process holds portal.db open and nothing of the keystore; as its ids it can open portal.db to write, never postern.db or kek.key', async () => {
    const portal = pid('portal');
    const open = await Promise.all(
      (await readdir(`/proc/${portal}/fd`)).map((fd) => readlink(`/proc/${portal}/fd/${fd}`).catch(() => '')),
    );
    expect(open).toContain(join(dir, 'portal.db'));
    expect(open.filter((f) => /postern\.db|kek\.(key|salt)/.test(f))).toEqual([]);
    const p = ids(portal);
    const as = { uid: p.uid[0]!, gid: p.gid[0]! };
    expect(as.uid).not.toBe(0);
    for (const f of ['kek.key', 'postern.db', 'postern.db-wal', 'postern.db-shm']) expect([f, openAs(join(dir, f), as)]).toEqual([f, { ok: false, error: 'EACCES' }]);
    // portal.db and its WAL files: root's, read and written by the account's group, nobody else's.
    for (const f of ['portal.db', 'portal.db-wal', 'portal.db-shm']) {
      const st = await stat(join(dir, f));
      expect([f, st.uid, st.gid, st.mode & 0o777]).toEqual([f, 0, account!.gid, 0o660]);
      expect([f, fsAs(`fs.closeSync(fs.openSync(${JSON.stringify(join(dir, f))}, "r+"))`, as)]).toEqual([f, 'ok']);
    }
    // Nor can it make files beside them (a database of its own, a link in place of postern.db).
    expect(fsAs(`fs.writeFileSync(${JSON.stringify(join(dir, 'planted.db'))}, "x")`, as)).toBe('EACCES');
  });

  it('mail flows end to end: smtpd (unprivileged) → worker → relay → maildir, signed by the worker with the sealed key', async () => {
    const sent = await sendTokens(port, ['iso-flow-1'], { from: 'alice@example.com', to: ['bob@partner.example'] });
    expect(sent.accepted).toEqual(['iso-flow-1']);
    const mail = await readFile(await waitDelivered('bob@partner.example', 'iso-flow-1'), 'latin1');
    expect(mail).toMatch(/^Content-Type: multipart\/signed;[^]*protocol="application\/pgp-signature"/m);
  });

  it('the portal serves WKD from the published file, root\'s and readable by the account\'s group only, and a key made while it runs shows up', async () => {
    const published = join(dir, 'public', 'openpgp-keys.json');
    const st = await stat(published);
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 0, account!.gid]);
    const { wkdUrls } = await import('../../src/directory/index.js');
    const wkd = async (address: string) => {
      const u = new URL(wkdUrls(address)!.direct);
      const res = await fetch(`http://127.0.0.1:${portalPort}${u.pathname}${u.search}`);
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    };
    const alice = await wkd('alice@example.com');
    expect(alice.status).toBe(200);
    expect(publicPacketsOnly(alice.body)).toBe(true);
    const key = await openpgp.readKey({ binaryKey: alice.body });
    expect(key.users.map((u) => u.userID?.email)).toEqual(['alice@example.com']);
    expect((await wkd('carol@example.com')).status).toBe(404);
    const r = await runPostern(config, ['pgp', 'generate', 'carol@example.com']);
    expect(r.code, r.stderr).toBe(0);
    // Published by the supervisor once it sees postern.db change; served once the index (1s) is rebuilt.
    await waitUntil(async () => (await readFile(published, 'utf8')).includes('carol@example.com'), 15_000, 'carol\'s key published');
    await waitUntil(async () => (await wkd('carol@example.com')).status === 200, 15_000, 'carol\'s key served over WKD');
  });

  it('the portal\'s key server answers HKP and serves a certificate issued while it runs, from the published file only', async () => {
    const published = join(dir, 'public', 'smime-certificates.json');
    const st = await stat(published);
    expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o640, 0, account!.gid]);
    const hkp = await fetch(`http://127.0.0.1:${portalPort}/pks/lookup?op=get&options=mr&search=alice@example.com`);
    expect([hkp.status, hkp.headers.get('content-type')]).toEqual([200, 'application/pgp-keys']);
    expect(await hkp.text()).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    const cer = () => fetch(`http://127.0.0.1:${portalPort}/certs/dave@example.com.cer`);
    expect((await cer()).status).toBe(404);
    for (const args of [['ca', 'init'], ['ca', 'issue', 'dave@example.com']]) {
      const r = await runPostern(config, args);
      expect(r.code, r.stderr).toBe(0);
    }
    await waitUntil(async () => (await readFile(published, 'utf8')).includes('dave@example.com'), 15_000, "dave's certificate published");
    const res = await cer();
    expect([res.status, res.headers.get('content-type')]).toEqual([200, 'application/pkix-cert']);
    await writeFile(join(dir, 'dave.cer'), Buffer.from(await res.arrayBuffer()));
    expect((await exec('openssl', ['x509', '-inform', 'DER', '-in', join(dir, 'dave.cer'), '-noout', '-email'])).stdout.trim()).toBe('dave@example.com');
  });

  it('a reload brings the unprivileged smtpd a renewed certificate whose key only root can read', async () => {
    const before = await presented(port);
    expect(before).toBe(tls.fingerprint);
    const renewed = await selfSigned(dir, 'renewed');
    await writeFile(tls.cert, await readFile(renewed.cert));
    await writeFile(tls.key, await readFile(renewed.key));
    const from = gw.logs.length;
    process.kill(gw.proc.pid!, 'SIGHUP');
    await gw.waitFor((l) => gw.logs.indexOf(l) >= from && l.event === 'smtpd.reloaded');
    await waitUntil(async () => (await presented(port)) === renewed.fingerprint, 10_000, 'the renewed certificate presented');
    expect(gw.logs.slice(from).filter((l) => /reload_rejected|tls_reload_failed|tls_unreadable/.test(String(l.event)))).toEqual([]);
  });
});

/** The certificate smtpd presents after STARTTLS, as openssl sees it. */
async function presented(port: number): Promise<string> {
  const s = exec('openssl', ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, '-showcerts'], { timeout: 10_000 });
  s.child.stdin!.end('QUIT\r\n');
  const out = (await s.catch((e: { stdout: string }) => e)).stdout;
  const pem = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/.exec(out)?.[0];
  return pem ? fingerprintOf(pem) : '';
}

/** The certificate the portal presents over HTTPS, as openssl sees it. */
async function presentedHttps(port: number): Promise<string> {
  const s = exec('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-showcerts'], { timeout: 10_000 });
  s.child.stdin!.end('');
  const out = (await s.catch((e: { stdout: string }) => e)).stdout;
  const pem = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/.exec(out)?.[0];
  return pem ? fingerprintOf(pem) : '';
}

describe.skipIf(!isRoot)('roles isolated by the OS, passphrase KEK (needs root: other processes\' /proc/PID/environ)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let portalPort: number;
  let portalTls: { cert: string; key: string; fingerprint: string };
  const secret = `kek-passphrase-${Math.random().toString(36).slice(2)}`;
  const { waitDelivered } = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-isolation-pp-'));
    port = await freePort();
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    const config = join(dir, 'postern.yaml');
    portalPort = await freePort();
    portalTls = await selfSigned(dir, 'portal');
    await writeFile(config, roleConfig(port, portalPort, 'kek: { passphrase_env: POSTERN_TEST_KEK }\n', false, true));
    process.env.POSTERN_TEST_KEK = secret;
    const r = await runPostern(config, ['pgp', 'generate', 'alice@example.com']);
    expect(r.code, r.stderr).toBe(0);
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'portal.unprivileged');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    delete process.env.POSTERN_TEST_KEK;
    await cleanup();
  });

  it('the KEK passphrase is in the worker\'s environment only: not in smtpd\'s, the portal\'s or the relay\'s', async () => {
    for (const role of ['smtpd', 'portal', 'relay']) {
      const env = await environ(gw.rolePids(role).at(-1)!);
      expect([role, env.has('POSTERN_TEST_KEK'), [...env.values()].some((v) => v.includes(secret))]).toEqual([role, false, false]);
      // Not in its arguments either.
      expect((await readFile(`/proc/${gw.rolePids(role).at(-1)!}/cmdline`, 'utf8')).includes(secret)).toBe(false);
    }
    expect((await environ(gw.rolePids('worker').at(-1)!)).get('POSTERN_TEST_KEK')).toBe(secret);
  });

  it('a reload brings the unprivileged portal a renewed HTTPS certificate whose key only root can read', async () => {
    expect(await presentedHttps(portalPort)).toBe(portalTls.fingerprint);
    const renewed = await selfSigned(dir, 'portal-renewed');
    await writeFile(portalTls.cert, await readFile(renewed.cert));
    await writeFile(portalTls.key, await readFile(renewed.key));
    const from = gw.logs.length;
    process.kill(gw.proc.pid!, 'SIGHUP');
    await gw.waitFor((l) => gw.logs.indexOf(l) >= from && l.event === 'portal.tls_reloaded');
    await waitUntil(async () => (await presentedHttps(portalPort)) === renewed.fingerprint, 10_000, 'the renewed portal certificate presented');
    expect(gw.logs.slice(from).filter((l) => /reload_rejected|tls_reload_failed|tls_unreadable/.test(String(l.event)))).toEqual([]);
  });

  it('and the worker unseals with it: outbound mail signed', async () => {
    expect((await sendTokens(port, ['iso-pp-1'], { from: 'alice@example.com', to: ['bob@partner.example'] })).accepted).toEqual(['iso-pp-1']);
    expect(await readFile(await waitDelivered('bob@partner.example', 'iso-pp-1'), 'latin1')).toMatch(/protocol="application\/pgp-signature"/);
    expect(JSON.stringify(gw.logs).includes(secret)).toBe(false);
  });
});

describe.skipIf(!isRoot)('started as root, the gateway refuses to run the Internet-facing roles as root (needs root)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-isolation-refuse-'));
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  });
  afterAll(async () => cleanup());

  const refused = async (extra: string, prepare?: () => Promise<void>) => {
    const config = join(dir, 'postern.yaml');
    await writeFile(config, roleConfig(await freePort(), await freePort(), extra));
    await prepare?.();
    const gw = await startGateway(config, { waitReady: false });
    const { code } = await gw.exited;
    return { code, spawned: gw.rolePids('smtpd').length, reason: String(gw.logs.find((l) => l.event === 'supervisor.data_dir_unusable')?.reason) };
  };

  it('no such account: exit 1 with the reason and the command that creates it; no role started', async () => {
    const r = await refused('user: postern-no-such-account\n');
    expect(r).toEqual({ code: 1, spawned: 0, reason: expect.stringMatching(/^user: no account "postern-no-such-account" — create it \(useradd --system .*postern-no-such-account\)/) });
  });

  it('an account with uid 0 (root itself) is refused', async () => {
    expect(await refused('user: root\n')).toEqual({ code: 1, spawned: 0, reason: expect.stringMatching(/"root" has uid 0 .*must be an unprivileged account/) });
  });

  it('a KEK file owned by the account is treated as leaked', async () => {
    const r = await refused('', async () => {
      await runPostern(join(dir, 'postern.yaml'), ['pgp', 'list']);
      await chown(join(dir, 'kek.key'), account!.uid, account!.gid);
    });
    expect(r).toEqual({ code: 1, spawned: 0, reason: expect.stringMatching(/kek\.key belongs to postern, the account smtpd and the portal run as: treat the key as leaked/) });
  });
});

describe.skipIf(!isRoot)('started as an ordinary user (needs root to start it as nobody)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway | undefined;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-isolation-user-'));
  });
  afterAll(async () => {
    await gw?.stop();
    await cleanup();
  });

  it('nothing to drop: every role runs as that user, the start says so, and mail flows', async () => {
    const nobody = lookupAccount('nobody')!;
    const port = await freePort();
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
    await writeFile(join(dir, 'postern.yaml'), roleConfig(port, await freePort(), ''));
    await exec('chown', ['-R', `${nobody.uid}:${nobody.gid}`, dir]);
    gw = new Gateway(spawn(process.execPath, [MAIN, 'start', '-c', join(dir, 'postern.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, uid: nobody.uid, gid: nobody.gid }));
    await gw.waitFor((l) => l.event === 'supervisor.ready');
    expect(gw.logs.find((l) => l.event === 'supervisor.not_root')).toMatchObject({ uid: nobody.uid });
    for (const role of ['smtpd', 'portal', 'worker', 'relay']) expect([role, ids(gw.rolePids(role).at(-1)!).uid]).toEqual([role, Array(4).fill(nobody.uid)]);
    expect((await sendTokens(port, ['iso-user-1'], { to: ['bob@partner.example'] })).accepted).toEqual(['iso-user-1']);
    await maildirOf(() => dir).waitDelivered('bob@partner.example', 'iso-user-1');
    expect(await gw.stop()).toEqual({ code: 0, signal: null });
  });
});
