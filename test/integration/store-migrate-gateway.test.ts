/**
 * Issue 19, "Done when": `store migrate` from the SQLite of a single gateway that holds a private
 * key to PostgreSQL, then a cluster node on that database (with the gateway's KEK) decrypts mail
 * that openssl encrypted to the migrated key — end to end through SMTP.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_PASSWORD_ENV, postgresYaml } from '../helpers/cluster.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type Gateway } from '../helpers/gateway.js';
import { maildirOf } from '../helpers/maildir.js';
import { opensslCa, opensslMailbox, run } from '../helpers/pki-openssl.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { sendRaw } from '../helpers/send.js';

const POLICY = 'rules:\n  - name: inbound mail is decrypted and verified\n    when: { direction: inbound }\n    do: [decrypt, verify]\n';

describe('a single gateway moved into a cluster with store migrate', () => {
  let pg: Postgres;
  let single: { dir: string; cleanup: () => Promise<void> };
  let node: { dir: string; cleanup: () => Promise<void> };
  let gw: Gateway | null = null;
  beforeAll(async () => {
    pg = await startPostgres();
    single = await tempDir('postern-single-');
    node = await tempDir('postern-migrated-node-');
  });
  afterAll(async () => {
    await gw?.stop();
    await pg?.stop();
    await single?.cleanup();
    await node?.cleanup();
  });

  it('decrypts, on the cluster node, mail encrypted to a key that was imported into the SQLite gateway', async () => {
    // The single gateway: a key for alice imported into its SQLite keystore (sealed under its kek.key).
    const singleConfig = await writeGatewayConfig(single.dir, await freePort());
    await writeFile(join(single.dir, 'policy.yaml'), POLICY);
    const pki = join(single.dir, 'pki');
    await run('mkdir', ['-p', pki]);
    const alice = await opensslMailbox(pki, await opensslCa(pki, 'Example CA'), 'alice@example.com');
    const imported = await runPostern(singleConfig, ['cert', 'import', alice.cert, '--key', alice.key]);
    expect(imported.code, imported.stderr).toBe(0);

    // Into PostgreSQL; the password from the environment, never the command line.
    const url = await pg.createDatabase();
    const env = { ...process.env, [PG_PASSWORD_ENV]: pg.password };
    const moved = await runPostern(singleConfig, ['store', 'migrate', '--from', `sqlite:${join(single.dir, 'postern.db')}`, '--to', url, '--password-env', PG_PASSWORD_ENV, '--yes'], env);
    expect(moved.code, moved.stderr).toBe(0);

    // A cluster node on that database with the single gateway's KEK (copied, as the README says).
    const port = await freePort();
    const config = await writeGatewayConfig(node.dir, port, postgresYaml(url, 'm1', { kekFile: join(single.dir, 'kek.key') }));
    await writeFile(join(node.dir, 'policy.yaml'), POLICY);
    gw = await startGateway(config, { env, readyTimeoutMs: 60_000 });

    const inner = join(pki, 'inner.txt');
    await writeFile(inner, 'Content-Type: text/plain; charset=us-ascii\r\n\r\nfor alice after the move, token mv1\r\n');
    await run('openssl', ['cms', '-encrypt', '-in', inner, '-aes256', '-out', join(pki, 'enc.eml'), alice.cert]);
    const enc = (await readFile(join(pki, 'enc.eml'), 'latin1')).replace(/\r?\n/g, '\r\n');
    const raw = Buffer.from(`From: dave@partner.example\r\nTo: alice@example.com\r\nSubject: after the move\r\nMessage-ID: <mv1@partner.example>\r\nDate: ${new Date().toUTCString()}\r\n${enc}`, 'latin1');
    expect(await sendRaw(port, 'dave@partner.example', ['alice@example.com'], raw)).toMatch(/^250 /);

    const file = await maildirOf(() => node.dir).waitDelivered('alice@example.com', 'after the move', 60_000);
    const text = await readFile(file, 'latin1');
    expect(text).toContain('for alice after the move, token mv1');
    expect(text).not.toMatch(/pkcs7-mime/);
    expect(text).toMatch(/^X-Postern-Encryption: decrypted; method=smime/m);
  }, 180_000);
});
