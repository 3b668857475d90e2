/**
 * For the PDF reply page tests: reply links in a real portal.db (sealed with the real
 * pdf-verifier functions, at a cheap scrypt cost), the page module on a portal app, and a
 * multipart body as a browser sends it.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { contentRoot, makePdfVerifier, newContentKdf, newReplyToken, openReplyData, replyTokenHash, sealReplyData, verifyPdfPassword } from '../../../src/keystore/pdf-verifier.js';
import { openPortalDb, type PortalDb } from '../../../src/keystore/portal-db.js';
import { silentLogger } from '../../../src/log/index.js';
import { buildPortalApp } from '../../../src/portal/app.js';
import { loadFonts } from '../../../src/pdfmail/fonts.js';
import { replyPages, type OpenedReplyLink } from '../../../src/portal/reply.js';
import { WkdIndex } from '../../../src/portal/wkd.js';
import { Spool } from '../../../src/spool/index.js';
import { testConfig } from '../../helpers/config.js';

const CHEAP = { N: 2 ** 10, r: 8, p: 1 };
const aad = (hash: string) => `test-link:${hash}`;

export interface LinkSpec {
  password: string;
  sender?: string;
  recipient?: string;
  subject?: string;
  messageId?: string;
  expires?: Date;
}

/** A reply link in `db`; returns its token (what the PDF's button carries). */
export async function addLink(db: PortalDb, l: LinkSpec): Promise<string> {
  const { token, hash } = newReplyToken();
  const sender = l.sender ?? 'alice@example.com';
  const recipient = l.recipient ?? 'carol@partner.example';
  const kdf = newContentKdf(CHEAP);
  const root = await contentRoot(l.password, kdf);
  const sealed = sealReplyData(root, { messageId: l.messageId ?? '<orig.1@example.com>', subject: l.subject ?? 'Quarterly figures', sender }, aad(hash));
  await db.putReplyLink({
    tokenHash: hash, senderKey: sender, recipientKey: recipient, sender, recipient, verifier: await makePdfVerifier(l.password, CHEAP), contentKdf: kdf, sealed,
    created: new Date(), expires: l.expires ?? new Date(Date.now() + 86_400_000),
  });
  return token;
}

/** What pstore's openReplyLink does, over the links addLink makes. */
export async function openLink(db: PortalDb, token: string, password: string, now: Date): Promise<OpenedReplyLink | null> {
  const hash = replyTokenHash(token);
  const link = hash ? await db.replyLink(hash, now) : null;
  if (!hash || !link || !(await verifyPdfPassword(link.verifier, password))) return null;
  const data = openReplyData(await contentRoot(password, link.contentKdf), link.sealed, aad(hash));
  return data && { sender: data.sender, recipient: link.recipient, messageId: data.messageId, subject: data.subject };
}

export async function replyApp(dir: string, over: { lockout?: { account: number; client: number; backoff: number; max_backoff: number }; maxUpload?: number; maxUploads?: number; now?: () => number } = {}) {
  const config = testConfig(dir, {
    portal: {
      listen: [{ host: '127.0.0.1', port: 0 }],
      url: 'https://portal.example.com',
      ...(over.lockout ? { lockout: over.lockout } : {}),
      ...(over.maxUpload ? { max_upload: over.maxUpload } : {}),
      ...(over.maxUploads ? { max_uploads: over.maxUploads } : {}),
    } as never,
  });
  const db = await openPortalDb(join(dir, 'portal.db'));
  const spool = await Spool.open(dir);
  const queued: string[] = [];
  const opened: string[] = [];
  const wkd = new WkdIndex({ listPgpKeys: async () => [], pgpKeysFor: async () => [] }, config.internal_domains, 60_000);
  const { app } = await buildPortalApp({
    config,
    log: silentLogger(),
    machine: { wkd, wkdEnabled: false, log: silentLogger(), crlPath: null, crl: null },
    tls: false,
    ...(over.now ? { now: over.now } : {}),
    pages: [
      replyPages({
        db,
        openLink: (token, password, now) => {
          opened.push(token);
          return openLink(db, token, password, now);
        },
        spool,
        queued: (ids) => queued.push(...ids),
        pdf: config.pdf,
        fonts: loadFonts(),
      }),
    ],
  });
  return { app, db, spool, config, queued, opened, close: async () => (await app.close(), db.close()) };
}

export interface UploadFile {
  name?: string;
  filename: string;
  type: string;
  content: Buffer;
}

/** multipart/form-data as a browser writes it: the fields in order, then the files. */
export function multipart(fields: [string, string][], files: UploadFile[] = [], filesFirst = false): { payload: Buffer; contentType: string } {
  const boundary = `----formboundary${randomBytes(8).toString('hex')}`;
  const field = ([n, v]: [string, string]) => Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${n}"\r\n\r\n${v}\r\n`);
  const file = (f: UploadFile) =>
    Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.name ?? 'files'}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`), f.content, Buffer.from('\r\n')]);
  const parts = filesFirst ? [...files.map(file), ...fields.map(field)] : [...fields.map(field), ...files.map(file)];
  return { payload: Buffer.concat([...parts, Buffer.from(`--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

export const cookiesOf = (res: { headers: Record<string, unknown> }) =>
  ([res.headers['set-cookie']].flat().filter(Boolean) as string[]).map((c) => c.split(';')[0]!).join('; ');

/** The value of the form's hidden _csrf field. */
export const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
