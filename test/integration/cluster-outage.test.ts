/**
 * Outages in a cluster (issue 19, "Done when"), with real processes and a real PostgreSQL:
 * - the database stopped during a stream of 500 messages that need a key (S/MIME to a partner
 *   whose certificate is in the store) and started again: smtpd takes every message meanwhile, and
 *   afterwards each is delivered — none lost, none in clear (every delivered file is CMS
 *   enveloped-data and holds no body text), none held or bounced;
 * - node A killed with SIGKILL in the middle of a stream: B goes on serving; A, started again,
 *   delivers every message it had answered 250 for.
 * - a node started while the database is down takes mail, and delivers it once the database is back.
 * The rule encrypts "where possible" (require: false), so a key look-up that failed open would
 * show as mail in clear rather than hide as held mail. Each message goes to an address of its own
 * (all on one partner certificate), so no cached look-up hides the database from the mail path.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { opensslCa, run, type Issued } from '../helpers/pki-openssl.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { sendTokens, waitUntil } from '../helpers/send.js';

const POLICY = `rules:
  - name: outbound mail is encrypted where possible
    when: { direction: outbound }
    do: [{ encrypt: { methods: [smime], require: false } }]
`;
const FROM = 'alice@example.com';
/** Each message's own recipient: a cache miss for every one. */
const to = (token: string) => [`${token}@partner.example`];

/** One partner certificate (openssl) for every address the tests write to. */
async function partnerCertificate(dir: string, ca: Issued, addresses: readonly string[]): Promise<string> {
  const key = join(dir, 'partner.key');
  const cert = join(dir, 'partner.pem');
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  await run('openssl', ['req', '-new', '-key', key, '-subj', '/CN=Partner mail', '-out', join(dir, 'partner.csr')]);
  await writeFile(
    join(dir, 'partner.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=@alt\n[alt]\n' +
      addresses.map((a, i) => `email.${i + 1}=${a}`).join('\n') + '\n',
  );
  await run('openssl', ['x509', '-req', '-in', join(dir, 'partner.csr'), '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', '77', '-days', '30', '-sha256', '-extfile', join(dir, 'partner.ext'), '-out', cert]);
  return cert;
}

interface Delivered {
  /** Deliveries per token (the Subject, which header protection copies outside). */
  tokens: Map<string, number>;
  /** Files that are not S/MIME enveloped-data, or that show a message's body text. */
  clear: string[];
}

/**
 * Each delivered file's verdict, by path: a file in new/ never changes (written in tmp/, renamed),
 * and the tests poll 500 of them ten times a second, on the two cores the gateways need.
 */
const judged = new Map<string, { token: string | undefined; clear: boolean }>();

/** What a node's maildir holds, judged file by file. */
async function delivered(node: ClusterNode): Promise<Delivered> {
  const dir = join(node.dir, 'maildir', 'new');
  const tokens = new Map<string, number>();
  const clear: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, name);
    let verdict = judged.get(path);
    if (!verdict) {
      const text = await readFile(path, 'latin1');
      verdict = {
        token: /^Subject: test (\S+)\r$/m.exec(text)?.[1],
        clear: !/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m.test(text) || /body of /.test(text),
      };
      judged.set(path, verdict);
    }
    if (verdict.token) tokens.set(verdict.token, (tokens.get(verdict.token) ?? 0) + 1);
    if (verdict.clear) clear.push(name);
  }
  return { tokens, clear };
}

const tokens = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
const missing = (want: readonly string[], got: Delivered) => want.filter((t) => !got.tokens.has(t));

describe('a cluster through database and node outages', () => {
  let pg: Postgres;
  let cluster: Cluster;
  let a: ClusterNode;
  let b: ClusterNode;
  beforeAll(async () => {
    pg = await startPostgres();
    // Deferred mail is tried again after 2 s, not the default minute: the tests wait for that retry.
    cluster = await startCluster(pg, { policy: POLICY, extra: 'worker: { retry: 2s }\n' });
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    const pki = join(a.dir, 'pki');
    await mkdir(pki);
    const addresses = [...tokens('db', 500), ...tokens('ka', 100), ...tokens('kb', 100), ...tokens('st', 10)].flatMap(to);
    const r = await a.cli(['cert', 'import', await partnerCertificate(pki, await opensslCa(pki, 'Partner'), addresses)]);
    expect(r.code, r.stderr).toBe(0);
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
    await pg?.stop();
  });

  it('PostgreSQL stopped during a stream of 500 messages: all accepted, then all delivered encrypted once it is back', async () => {
    const want = tokens('db', 500);
    const sending = sendTokens(a.port, want, { from: FROM, to, connections: 4 });
    // Stopped once mail is flowing, so the outage falls in the middle of the stream.
    await waitUntil(async () => (await delivered(a)).tokens.size >= 30, 120_000, 'the first deliveries');
    await pg.halt();
    try {
      await a.gateway!.waitFor((l) => l.event === 'worker.store_unavailable', 60_000);
      const sent = await sending;
      // smtpd never asks the store: every message was taken into the spool during the outage.
      expect(sent.failed).toEqual([]);
      expect(sent.accepted.length).toBe(500);
    } finally {
      await pg.resume();
    }
    // Deferred messages are processed again a minute after their attempt.
    await waitUntil(async () => missing(want, await delivered(a)).length === 0, 240_000, 'every message delivered after the database came back');
    const got = await delivered(a);
    expect(missing(want, got)).toEqual([]);
    expect(got.clear).toEqual([]);
    const events = a.gateway!.logs.map((l) => l.event);
    expect(events.filter((e) => /^worker\.(held|error)|relay\.bounce/.test(String(e)))).toEqual([]);
    expect(events.filter((e) => e === 'worker.store_unavailable').length).toBeGreaterThan(0);
    for (const l of a.gateway!.logs) expect(JSON.stringify(l)).not.toContain(pg.password);
  }, 420_000);

  it('node A killed with SIGKILL mid-stream: B keeps serving, and A started again delivers what its spool held', async () => {
    const toA = tokens('ka', 100);
    const toB = tokens('kb', 100);
    const sendingA = sendTokens(a.port, toA, { from: FROM, to, connections: 4 });
    await waitUntil(async () => [...(await delivered(a)).tokens.keys()].filter((t) => t.startsWith('ka')).length >= 20, 120_000, 'A delivering');
    a.gateway!.killAll();
    await a.gateway!.exited;
    a.gateway = null;
    const [sentA, sentB] = await Promise.all([sendingA, sendTokens(b.port, toB, { from: FROM, to, connections: 4 })]);
    // A answered 250 for some, then its connections went; B took all of its own.
    expect(sentA.accepted.length).toBeGreaterThan(0);
    expect(sentB.failed).toEqual([]);
    await waitUntil(async () => missing(toB, await delivered(b)).length === 0, 180_000, 'B delivering its stream while A is down');
    await a.start();
    await waitUntil(async () => missing(sentA.accepted, await delivered(a)).length === 0, 240_000, "A delivering what it had accepted");
    const gotA = await delivered(a);
    const gotB = await delivered(b);
    expect(missing(sentA.accepted, gotA)).toEqual([]);
    expect(gotA.clear).toEqual([]);
    expect(gotB.clear).toEqual([]);
  }, 480_000);

  it('a node started while PostgreSQL is down takes mail, and delivers it once the database is back', async () => {
    await b.gateway!.stop();
    await pg.halt();
    try {
      const gw = await b.start();
      await gw.waitFor((l) => l.event === 'supervisor.keystore_unreachable' || l.event === 'worker.start_later', 60_000);
      const sent = await sendTokens(b.port, tokens('st', 10), { from: FROM, to, connections: 2 });
      expect(sent.failed).toEqual([]);
      expect(missing(tokens('st', 10), await delivered(b))).toEqual(tokens('st', 10));
    } finally {
      await pg.resume();
    }
    await waitUntil(async () => missing(tokens('st', 10), await delivered(b)).length === 0, 240_000, 'delivered once the database is back');
    expect((await delivered(b)).clear).toEqual([]);
    expect(b.gateway!.logs.filter((l) => l.event === 'supervisor.fatal')).toEqual([]);
  }, 420_000);
});
