/**
 * A real OpenLDAP slapd on 127.0.0.1 for the directory tests: a temporary slapd.conf (mdb in a
 * temporary folder, the memberof overlay, the core/cosine/inetorgperson/nis schemas, a rootdn),
 * and the monitor database readable by the rootdn so tests can count the searches the server
 * really received. Data is loaded with ldapadd (not slapadd) so the overlay maintains memberOf.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { run } from './pki-openssl.js';
import { tempDir } from './config.js';

export interface Slapd {
  url: string;
  /** ldaps:// on a second port, when started with tls. */
  ldapsUrl?: string;
  port: number;
  suffix: string;
  rootDn: string;
  rootPw: string;
  /** The temporary folder (conf, db); removed by stop(). */
  dir: string;
  /** Load LDIF with ldapadd as the rootdn. */
  add(ldif: string): Promise<void>;
  /** Searches the server has started so far (cn=Monitor), this count's own search included. */
  searches(): Promise<number>;
  /** Stop the server (the data stays until cleanup). */
  kill(): Promise<void>;
  /** Start it again on the same port with the same data. */
  restart(): Promise<void>;
  /** Stop and remove everything. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `tls`: PEM certificate and key files; StartTLS is then offered on url, and ldaps:// listens too. */
export async function startSlapd(opts: { suffix?: string; tls?: { cert: string; key: string } } = {}): Promise<Slapd> {
  const suffix = opts.suffix ?? 'dc=example,dc=com';
  const rootDn = `cn=admin,${suffix}`;
  const rootPw = 'slapd-test-root';
  const tmp = await tempDir('postern-slapd-');
  const db = join(tmp.dir, 'db');
  await mkdir(db);
  const conf = join(tmp.dir, 'slapd.conf');
  await writeFile(
    conf,
    [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `pidfile ${join(tmp.dir, 'slapd.pid')}`,
      `argsfile ${join(tmp.dir, 'slapd.args')}`,
      ...(opts.tls ? [`TLSCertificateFile ${opts.tls.cert}`, `TLSCertificateKeyFile ${opts.tls.key}`] : []),
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'moduleload memberof',
      'database mdb',
      `suffix "${suffix}"`,
      `rootdn "${rootDn}"`,
      `rootpw ${rootPw}`,
      `directory ${db}`,
      'maxsize 33554432',
      'index objectClass,mail eq',
      'overlay memberof',
      'database monitor',
      `access to * by dn.exact="${rootDn}" read by * none`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = opts.tls ? `ldaps://127.0.0.1:${await freePort()}` : undefined;
  let child: ChildProcess | null = null;
  let stderr = '';

  const start = async () => {
    stderr = '';
    child = spawn('/usr/sbin/slapd', ['-f', conf, '-h', [`${url}/`, ...(ldapsUrl ? [`${ldapsUrl}/`] : [])].join(' '), '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`slapd exited (${code}): ${stderr.trim()}`))));
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = new Client({ url, timeout: 500, connectTimeout: 500 });
      try {
        await Promise.race([c.bind(rootDn, rootPw), exited]);
        await c.unbind();
        return;
      } catch (err) {
        await c.unbind().catch(() => undefined);
        if (Date.now() > deadline || /slapd exited/.test((err as Error).message)) throw new Error(`slapd did not start: ${(err as Error).message} ${stderr.trim()}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    }
  };
  const kill = async () => {
    const c = child as ChildProcess | null;
    child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
      setTimeout(() => c.kill('SIGKILL'), 3000).unref();
    });
  };
  await start();

  return {
    url,
    ...(ldapsUrl ? { ldapsUrl } : {}),
    port,
    suffix,
    rootDn,
    rootPw,
    dir: tmp.dir,
    async add(ldif) {
      const file = join(tmp.dir, `add-${Date.now()}-${Math.random().toString(36).slice(2)}.ldif`);
      await writeFile(file, ldif);
      await run('ldapadd', ['-x', '-H', url, '-D', rootDn, '-w', rootPw, '-f', file]);
    },
    async searches() {
      const c = new Client({ url, timeout: 2000 });
      try {
        await c.bind(rootDn, rootPw);
        const r = await c.search('cn=Search,cn=Operations,cn=Monitor', { scope: 'base', attributes: ['monitorOpInitiated'] });
        return Number(r.searchEntries[0]?.monitorOpInitiated);
      } finally {
        await c.unbind();
      }
    },
    kill,
    restart: start,
    async stop() {
      await kill();
      await tmp.cleanup();
    },
  };
}
