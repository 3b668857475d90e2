/**
 * Two gateway nodes on one machine (issue 19, "Done when"): own ports, own data_dir and spool, one
 * PostgreSQL database (a real server, test/helpers/postgres.ts) and one KEK. Each takes mail and
 * delivers it; what one node's admin or mail makes, the other uses for its next message without a
 * restart — a certificate imported with A's CLI encrypts B's mail (openssl decrypts it), a PDF
 * password made by A opens B's PDF (qpdf), and B's portal takes the reply password of A's PDF.
 * The database password reaches the roles through the environment only.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_PASSWORD_ENV, startCluster, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { freePort } from '../helpers/gateway.js';
import { parseMail, type ParsedPart } from '../helpers/mail-parse.js';
import { maildirOf } from '../helpers/maildir.js';
import { pdfLinks, popplerText, reader } from '../helpers/pdf-mail.js';
import { opensslCa, opensslMailbox, run, type Issued } from '../helpers/pki-openssl.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';
import { maildirTokens, sendRaw, sendTokens, waitUntil } from '../helpers/send.js';

const POLICY = `rules:
  - name: partners without keys get PDF mail
    when: { recipient: { domain: pdf.example } }
    do: [{ encrypt: { methods: [pdf], require: true } }]
  - name: outbound mail is encrypted where possible
    when: { direction: outbound }
    do: [{ encrypt: { methods: [smime, pgp], require: false } }]
`;

const leaves = (p: ParsedPart): ParsedPart[] => (p.parts.length ? p.parts.flatMap(leaves) : [p]);

function message(to: string, token: string): Buffer {
  return Buffer.from(
    `From: Alice <alice@example.com>\r\nTo: ${to}\r\nSubject: Figures ${token}\r\nMessage-ID: <${token}@example.com>\r\nDate: ${new Date().toUTCString()}\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe figures, ${token}.\r\n`,
  );
}

describe('two gateway nodes on one PostgreSQL database', () => {
  let pg: Postgres;
  let cluster: Cluster;
  let a: ClusterNode;
  let b: ClusterNode;
  let pki: string;
  let bob: Issued;
  const portalPorts = new Map<string, number>();
  beforeAll(async () => {
    pg = await startPostgres();
    for (const n of ['a', 'b']) portalPorts.set(n, await freePort());
    // One public portal address for the cluster (a load balancer's); each node's portal listens on its own port.
    const url = `http://127.0.0.1:${portalPorts.get('a')}`;
    cluster = await startCluster(pg, {
      policy: POLICY,
      extra: ({ name }) => `portal: { listen: ["127.0.0.1:${portalPorts.get(name)}"], url: "${url}" }\npdf: { organisation: Example Ltd }\n`,
    });
    [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
    pki = join(a.dir, 'pki');
    await run('mkdir', ['-p', pki]);
    bob = await opensslMailbox(pki, await opensslCa(pki, 'Partner'), 'bob@partner.example');
  }, 240_000);
  afterAll(async () => {
    await cluster?.stop();
    await pg?.stop();
  });

  it('each node takes mail on its own port and delivers it from its own spool', async () => {
    expect(a.port).not.toBe(b.port);
    expect((await sendTokens(a.port, ['via-a-1', 'via-a-2'])).failed).toEqual([]);
    expect((await sendTokens(b.port, ['via-b-1'])).failed).toEqual([]);
    await waitUntil(async () => (await maildirTokens(join(a.dir, 'maildir'))).size === 2 && (await maildirTokens(join(b.dir, 'maildir'))).size === 1, 60_000, 'deliveries on both nodes');
    expect([...(await maildirTokens(join(a.dir, 'maildir'))).keys()].sort()).toEqual(['via-a-1', 'via-a-2']);
    expect([...(await maildirTokens(join(b.dir, 'maildir'))).keys()]).toEqual(['via-b-1']);
  });

  it("a certificate imported with A's CLI encrypts B's next message, without a restart", async () => {
    const bMail = maildirOf(() => b.dir);
    // Before: B looks bob up, finds nothing, and sends in clear (the rule does not require encryption).
    expect(await sendRaw(b.port, 'alice@example.com', ['bob@partner.example'], message('bob@partner.example', 'c1before'))).toMatch(/^250 /);
    expect(await readFile(await bMail.waitDelivered('bob@partner.example', 'Figures c1before', 60_000), 'latin1')).toContain('The figures, c1before.');
    const imported = await a.cli(['cert', 'import', bob.cert]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(await sendRaw(b.port, 'alice@example.com', ['bob@partner.example'], message('bob@partner.example', 'c1after'))).toMatch(/^250 /);
    const file = await bMail.waitDelivered('bob@partner.example', 'Figures c1after', 60_000);
    const text = await readFile(file, 'latin1');
    expect(text).toMatch(/^Content-Type: application\/pkcs7-mime; smime-type=enveloped-data/m);
    expect(text).not.toContain('c1after.');
    const out = join(pki, 'c1after.eml');
    await run('openssl', ['cms', '-decrypt', '-in', file, '-recip', bob.cert, '-inkey', bob.key, '-out', out]);
    expect(await readFile(out, 'latin1')).toContain('The figures, c1after.');
  });

  /** A PDF mail from alice to carol through `node`: the PDF's file. */
  async function pdfThrough(node: ClusterNode, token: string): Promise<string> {
    expect(await sendRaw(node.port, 'alice@example.com', ['carol@pdf.example'], message('carol@pdf.example', token))).toMatch(/^250 /);
    const carrier = await parseMail(await readFile(await maildirOf(() => node.dir).waitDelivered('carol@pdf.example', `${token}@example.com`, 60_000)));
    const file = join(pki, `${token}.pdf`);
    await writeFile(file, leaves(carrier).find((p) => p.contentType === 'application/pdf')!.payload!);
    return file;
  }
  /** The PDF from A and the password alice was told by A (once: the first mail of the pair). */
  let fromA: Promise<{ file: string; password: string }> | undefined;
  const firstPdfFromA = () =>
    (fromA ??= (async () => {
      const file = await pdfThrough(a, 'p1tok');
      const notice = (await readFile(await maildirOf(() => a.dir).waitDelivered('alice@example.com', 'PDF mail to carol@pdf.example', 60_000))).toString('utf8');
      return { file, password: /\r\n\r\n {4}(\S+)\r\n\r\n/.exec(notice.replace(/=\r\n/g, ''))![1]! };
    })());

  it("a PDF password made by A opens B's PDF for the same pair", async () => {
    const bMail = maildirOf(() => b.dir);
    const { password } = await firstPdfFromA();
    const fromB = await pdfThrough(b, 'p2tok');
    const opened = await popplerText(fromB, password);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toContain('The figures, p2tok.');
    expect((await reader('qpdf', ['--decrypt', fromB, join(pki, 'p2-clear.pdf')])).code).not.toBe(0);
    expect((await reader('qpdf', [`--password=${password}`, '--decrypt', fromB, join(pki, 'p2-clear.pdf')])).code).toBe(0);
    // B told nobody a second password: it had none to tell.
    expect(await bMail.delivered('alice@example.com', 'PDF mail to carol@pdf.example')).toBeUndefined();
  });

  it("B's portal takes the reply password of A's PDF", async () => {
    const { file, password } = await firstPdfFromA();
    await b.gateway!.waitFor((l) => l.event === 'portal.listening', 60_000);
    // The Reply link in A's PDF, opened on B's portal with A's password.
    const link = (await pdfLinks(file, password)).find((l) => l.includes('/r/'));
    expect(link).toBeDefined();
    const path = new URL(link!).pathname;
    const onB = `http://127.0.0.1:${portalPorts.get('b')}${path}`;
    // The sign-in form as a browser gets it from B: its CSRF cookie and field.
    const form = await fetch(onB);
    expect(form.status).toBe(200);
    const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1];
    expect(csrf).toBeDefined();
    const post = (pw: string) =>
      fetch(onB, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams({ _csrf: csrf!, password: pw }).toString() });
    const signedIn = await post(password);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe(path);
    expect((await post('not-the-password')).status).toBe(403);
  });

  it('keeps the database password out of logs and command lines, and out of the roles that never open the store', async () => {
    const proc = async (pid: number, what: string) => readFile(`/proc/${pid}/${what}`, 'latin1');
    for (const n of cluster.nodes) {
      const gw = n.gateway!;
      expect(JSON.stringify(gw.logs)).not.toContain(pg.password);
      for (const role of ['worker', 'smtpd', 'relay']) {
        const pids = gw.rolePids(role);
        expect(pids.length, role).toBeGreaterThan(0);
        for (const pid of pids) expect(await proc(pid, 'cmdline')).not.toContain(pg.password);
      }
      // The oracle: the workers have it (they open the store); smtpd and the relay do not.
      const live = async (role: string) => (await Promise.all(gw.rolePids(role).map((pid) => proc(pid, 'environ').catch(() => null)))).filter((e): e is string => e !== null);
      expect((await live('worker')).some((e) => e.includes(`${PG_PASSWORD_ENV}=${pg.password}`))).toBe(true);
      for (const role of ['smtpd', 'relay']) for (const e of await live(role)) expect(e).not.toContain(pg.password);
    }
  });
});
