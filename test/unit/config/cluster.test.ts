/**
 * postern.yaml for a cluster (issue 19): keystore.postgres with its password kept out of the file,
 * cluster.node and cluster.heartbeat; mistakes reported with file, line and key.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatConfigProblem } from '../../../src/core/index.js';
import { postgresPassword, StoreConfigError } from '../../../src/keystore/sql/open.js';
import { yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();
const problems = async (yaml: string) => {
  const r = await yc.check(yaml);
  return r.ok ? '' : r.problems.map(formatConfigProblem).join('\n');
};

describe('keystore.postgres and cluster', () => {
  afterEach(() => {
    delete process.env.POSTERN_TEST_PG;
  });

  it('defaults: SQLite, no postgres; the node named after the host, a heartbeat every 10 s', async () => {
    const r = await yc.check('hostname: gw.example.com\n');
    expect(r.ok && r.config.keystore).toEqual({ sqlite: resolve(yc.dir(), '../var/postern.db') });
    expect(r.ok && r.config.cluster).toEqual({ node: 'gw.example.com', heartbeat: 10_000 });
  });

  it('takes a login with its password from a file beside the config, a pool, a portal login and a node name', async () => {
    const r = await yc.check(
      [
        'hostname: mx1.example.com',
        'keystore:',
        '  postgres:',
        '    url: postgres://postern@db.example.org:5432/postern?sslmode=verify-full',
        '    password_file: pg.pass',
        '    pool: 8',
        '    portal: { url: "postgres://portal@db.example.org/postern", password_env: PORTAL_PG }',
        'cluster: { node: mx1, heartbeat: 5s }',
        '',
      ].join('\n'),
    );
    expect(r.ok && r.config.keystore.postgres).toEqual({
      url: 'postgres://postern@db.example.org:5432/postern?sslmode=verify-full',
      password_file: join(yc.dir(), 'pg.pass'),
      pool: 8,
      portal: { url: 'postgres://portal@db.example.org/postern', password_env: 'PORTAL_PG' },
    });
    expect(r.ok && r.config.cluster).toEqual({ node: 'mx1', heartbeat: 5000 });
  });

  it('refuses a password in the URL, two password sources, a bad URL, a bad node name — with line and key', async () => {
    expect(await problems('keystore:\n  postgres:\n    url: postgres://postern:hunter2@db/postern\n')).toMatch(
      /postern\.yaml:3:\d+: keystore\.postgres: the URL holds a password: give it by password_env or password_file instead|postern\.yaml:\d+:\d+: keystore\.postgres.*holds a password/,
    );
    expect(await problems('keystore:\n  postgres:\n    url: postgres://postern:hunter2@db/postern\n')).not.toContain('hunter2');
    expect(await problems('keystore:\n  postgres:\n    url: postgres://p@db/x\n    password_env: A\n    password_file: f\n')).toContain('give password_env or password_file, not both');
    expect(await problems('keystore:\n  postgres:\n    url: mysql://db/x\n')).toMatch(/postern\.yaml:3:10: keystore\.postgres\.url: .*expected a URL like postgres:/);
    expect(await problems('keystore:\n  postgres:\n    url: postgres://p@db/x\n    pool: 0\n')).toMatch(/postern\.yaml:4:11: keystore\.postgres\.pool/);
    expect(await problems('cluster:\n  node: "mx 1/../"\n')).toMatch(/postern\.yaml:2:9: cluster\.node: .*expected a node name/);
    expect(await problems('cluster:\n  heartbeat: 0s\n')).toMatch(/postern\.yaml:2:14: cluster\.heartbeat/);
  });

  it('reads the password when the store opens, with a clear error that never shows it', async () => {
    const file = join(yc.dir(), 'pg.pass');
    await writeFile(file, 's3cret-pw\nsecond line ignored\n');
    expect(postgresPassword({ url: 'postgres://p@db/x', password_file: file })).toBe('s3cret-pw');
    process.env.POSTERN_TEST_PG = 'from-env';
    expect(postgresPassword({ url: 'postgres://p@db/x', password_env: 'POSTERN_TEST_PG' })).toBe('from-env');
    expect(postgresPassword({ url: 'postgres://p@db/x' })).toBeUndefined();
    expect(() => postgresPassword({ url: 'postgres://p@db/x', password_env: 'POSTERN_TEST_PG_UNSET' })).toThrow(StoreConfigError);
    expect(() => postgresPassword({ url: 'postgres://p@db/x', password_file: join(yc.dir(), 'absent') })).toThrow(/cannot read the password file .*absent: ENOENT/);
    await writeFile(file, '\n');
    expect(() => postgresPassword({ url: 'postgres://p@db/x', password_file: file })).toThrow(/is empty/);
  });
});
