/**
 * A throwaway PostgreSQL server on 127.0.0.1 (DESIGN §5), for the tests (test/helpers/postgres.ts)
 * and `npm run bench` alike — plain JavaScript so the bench runs it without a build: Debian's
 * postgresql, `initdb` as an unprivileged account (the system account `postgres` when run as
 * root), `pg_ctl` on a free port, its socket in the data directory, stopped and removed by stop().
 *
 * initdb runs once per machine and user into a template directory (about a second and a half);
 * each server copies it. The superuser `postern` has a password and TCP logins need it
 * (scram-sha-256), so the gateway's password handling is exercised; callers pass `password` apart
 * from the URL, as the config does.
 *
 * Tests want speed (fsync off: a test server's durability is not under test); the bench wants a
 * server configured as in production (`durable: true`), so that its figures compare with SQLite's
 * synchronous=FULL honestly.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chown, cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const exec = promisify(execFile);

export const PG_USER = 'postern';
export const PG_PASSWORD = 'pg-test-password-1';

/** The directory of initdb and pg_ctl (/usr/lib/postgresql/<major>/bin), or a clear error. */
export function postgresBin() {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).filter((d) => existsSync(join(base, d, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!majors.length) throw new Error('PostgreSQL is not installed (Debian package postgresql): run npm test as root once, or apt-get install postgresql');
  return join(base, majors[0], 'bin');
}

const asRoot = process.getuid?.() === 0;

/** Run a PostgreSQL program as the unprivileged account when we are root (the server refuses root). */
async function pgRun(program, args) {
  const bin = join(postgresBin(), program);
  if (asRoot) await exec('runuser', ['-u', 'postgres', '--', bin, ...args], { cwd: '/' });
  else await exec(bin, args);
}

async function ownForServer(path) {
  if (!asRoot) return;
  await exec('chown', ['-R', 'postgres:postgres', path]);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** initdb once into a template (made under a temporary name, then renamed: concurrent starts race safely). */
async function template() {
  const major = postgresBin().split('/').at(-2);
  const dir = join(tmpdir(), `postern-pg-template-${major}-${process.getuid?.() ?? 0}`);
  if (existsSync(join(dir, 'PG_VERSION'))) return dir;
  const work = `${dir}.${process.pid}.${Date.now()}`;
  await mkdir(work, { recursive: true, mode: 0o700 });
  const pwfile = join(work, '..', `postern-pg-pw.${process.pid}`);
  await writeFile(pwfile, `${PG_PASSWORD}\n`, { mode: 0o644 });
  await ownForServer(work);
  if (asRoot) await chown(pwfile, 101, 104).catch(() => undefined);
  try {
    await pgRun('initdb', ['-D', work, '-U', PG_USER, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  } finally {
    await rm(pwfile, { force: true });
  }
  try {
    await rename(work, dir);
  } catch {
    await rm(work, { recursive: true, force: true }); // another process made it first
  }
  return dir;
}

/** @param {{ durable?: boolean, settings?: Record<string, string> }} [opts] */
/**
 * Servers this process started and has not stopped. A test file whose stop() never ran (a failed
 * hook, an afterAll vitest did not run, a killed worker) must not leave its server behind on a
 * 2-core machine: when the process exits they are shut down (SIGQUIT: immediate) and removed.
 */
const live = new Set();
let exitHook = false;
function stopAllAtExit() {
  for (const dir of live) {
    try {
      const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // already stopped
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // the next run's tmp cleanup
    }
  }
  live.clear();
}

export async function startPostgres(opts = {}) {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', stopAllAtExit);
  }
  const tpl = await template();
  const dir = join(tmpdir(), `postern-pg-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  await cp(tpl, dir, { recursive: true });
  await ownForServer(dir);
  const port = await freePort();
  let n = 0;
  const url = (database = 'postgres') => `postgres://${PG_USER}@127.0.0.1:${port}/${database}`;
  const speed = opts.durable ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
  const extra = Object.entries(opts.settings ?? {}).map(([k, v]) => ` -c ${k}=${v}`).join('');
  const start = () =>
    pgRun('pg_ctl', ['-D', dir, '-w', '-t', '30', '-l', join(dir, 'server.log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200${speed}${extra}`, 'start']);
  live.add(dir);
  await start();
  let running = true;
  const query = async (sql, params = [], database = 'postgres') => {
    const c = new pg.Client({ connectionString: url(database).replace(`${PG_USER}@`, `${PG_USER}:${PG_PASSWORD}@`) });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  };
  return {
    port,
    dir,
    url,
    password: PG_PASSWORD,
    query,
    async createDatabase(name) {
      const db = name ?? `t${process.pid}_${++n}`;
      await query(`CREATE DATABASE "${db}"`);
      return url(db);
    },
    async halt() {
      if (!running) return;
      await pgRun('pg_ctl', ['-D', dir, '-w', '-m', 'fast', 'stop']);
      running = false;
    },
    async resume() {
      if (running) return;
      await start();
      running = true;
    },
    async stop() {
      if (running) await pgRun('pg_ctl', ['-D', dir, '-w', '-m', 'immediate', 'stop']).catch(() => undefined);
      running = false;
      live.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
