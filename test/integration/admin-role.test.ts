/**
 * The admin role as the supervisor runs it: a real gateway with admin.listen, signed in over HTTP
 * on loopback. Its status is the supervisor's own view of the roles; a reload asked through the
 * API is the supervisor's reload; and the console is not on the mail's path — killed, or unable
 * to bind its port, mail flows on and the supervisor brings it back.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { openKeyStore } from '../../src/keystore/index.js';
import { ADMIN_PASSWORD, adminHttp } from '../helpers/admin.js';
import { tempDir } from '../helpers/config.js';
import { freePort, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { sendRaw, waitUntil } from '../helpers/send.js';

const execFileP = promisify(execFile);

const mail = (token: string) => Buffer.from(`From: alice@example.com\r\nTo: bob@example.org\r\nSubject: ${token}\r\nDate: ${new Date().toUTCString()}\r\n\r\nbody ${token}\r\n`);

async function addAccount(config: string, name: string, roles: string[]): Promise<void> {
  const store = await openKeyStore(await loadConfig(config), { createKek: true });
  try {
    await store.addAdminAccount({ name, password: ADMIN_PASSWORD, roles, actor: 'test' });
  } finally {
    await store.close();
  }
}

/** Signed in as NAME: the API's calls as that account. */
const signIn = async (base: string, name: string) => (await adminHttp(base, name)).api<any>;

describe('the admin role under the supervisor', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let port: number;
  let base: string;
  const { waitDelivered } = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-role-'));
    port = await freePort();
    const adminPort = await freePort();
    base = `http://127.0.0.1:${adminPort}`;
    const config = await writeGatewayConfig(dir, port, `admin:\n  listen: ["127.0.0.1:${adminPort}"]\n`);
    await addAccount(config, 'root-admin', ['administrator']);
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening');
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup?.();
  });

  it("shows the supervisor's own view of every role and the queue sizes", async () => {
    const api = await signIn(base, 'root-admin');
    const { status, json } = await api('GET', '/status');
    expect(status).toBe(200);
    const roles = (json.roles as { role: string; running: boolean; pid: number }[]).map((r) => `${r.role}:${r.running}`).sort();
    expect(roles).toEqual(['admin:true', 'relay:true', 'smtpd:true', 'worker:true', 'worker:true']);
    expect(json.roles.find((r: { role: string }) => r.role === 'admin').pid).toBe(gw.rolePids('admin').at(-1));
    expect(json.queues).toMatchObject({ incoming: 0, hold: 0, deferred: 0 });
  });

  it('reloads the running gateway when asked through the API, and audits it', async () => {
    const api = await signIn(base, 'root-admin');
    const before = gw.logs.filter((l) => l.event === 'supervisor.reloaded').length;
    const r = await api('POST', '/system/reload', {});
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    await waitUntil(async () => gw.logs.filter((l) => l.event === 'supervisor.reloaded').length > before, 10_000, 'the supervisor reloaded');
    const store = await openKeyStore(await loadConfig(`${dir}/postern.yaml`));
    try {
      expect((await store.auditLog({ actor: 'root-admin' })).map((r) => `${r.action} ${r.via} ${r.client}`)).toEqual(expect.arrayContaining([expect.stringMatching(/reload api 127\.0\.0\.1$/)]));
    } finally {
      await store.close();
    }
  });

  it('a killed admin role does not stop mail, and comes back', async () => {
    const [pid] = gw.rolePids('admin').slice(-1);
    process.kill(pid!, 'SIGKILL');
    expect(await sendRaw(port, 'alice@example.com', ['bob@example.org'], mail('while-admin-down'))).toMatch(/^250 /);
    await waitDelivered('bob@example.org', 'while-admin-down');
    await waitUntil(async () => gw.rolePids('admin').length === 2, 20_000, 'the admin role restarted');
    await gw.waitFor((l) => l.event === 'admin.listening' && l.pid !== pid);
    const api = await signIn(base, 'root-admin');
    expect((await api('GET', '/status')).status).toBe(200);
  });
});

describe('the admin role cannot bind its port', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let squatter: Server;
  const { waitDelivered } = maildirOf(() => dir);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-port-'));
    squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    const taken = (squatter.address() as { port: number }).port;
    const port = await freePort();
    gw = await startGateway(await writeGatewayConfig(dir, port, `admin:\n  listen: ["127.0.0.1:${taken}"]\n`));
    (gw as Gateway & { port: number }).port = port;
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    squatter?.close();
    await cleanup?.();
  });

  it('the gateway runs and delivers; the supervisor says the console is unavailable and will retry', async () => {
    await gw.waitFor((l) => l.event === 'supervisor.admin_unavailable');
    expect(gw.logs.some((l) => l.event === 'supervisor.fatal')).toBe(false);
    const port = (gw as Gateway & { port: number }).port;
    expect(await sendRaw(port, 'alice@example.com', ['bob@example.org'], mail('admin-port-taken'))).toMatch(/^250 /);
    await waitDelivered('bob@example.org', 'admin-port-taken');
  });
});

describe('the admin console over HTTPS (admin.tls)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let gw: Gateway;
  let adminPort: number;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-admin-tls-'));
    await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=admin.test.example', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'admin.key'), '-out', join(dir, 'admin.crt')]);
    adminPort = await freePort();
    const config = await writeGatewayConfig(dir, await freePort(), `admin:\n  listen: ["127.0.0.1:${adminPort}"]\n  tls: { cert: admin.crt, key: admin.key }\n`);
    await addAccount(config, 'tls-admin', ['auditor']);
    gw = await startGateway(config);
    await gw.waitFor((l) => l.event === 'admin.listening' && l.tls === true, 60_000);
  }, 90_000);
  afterAll(async () => {
    await gw?.stop();
    await cleanup?.();
  });

  it('presents admin.tls (openssl verifies it) and signs in with a Secure __Host- cookie under HSTS', async () => {
    const s = execFileP('openssl', ['s_client', '-connect', `127.0.0.1:${adminPort}`, '-CAfile', join(dir, 'admin.crt'), '-verify_return_error', '-verify_ip', '127.0.0.1'], { timeout: 10_000 });
    s.child.stdin!.end('');
    expect((await s).stdout).toMatch(/Verify return code: 0 \(ok\)/);

    const ca = await readFile(join(dir, 'admin.crt'));
    const res = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: adminPort, path: '/api/session', method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ name: 'tls-admin', password: ADMIN_PASSWORD }));
    });
    expect(res.status, res.body).toBe(200);
    const session = res.headers['set-cookie']!.find((c) => c.startsWith('__Host-postern-admin='));
    expect(session).toMatch(/; Secure/);
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Strict/);
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
  });
});
