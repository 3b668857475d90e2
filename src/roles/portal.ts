/**
 * Entry point of the portal role (`node dist/roles/portal.js -c FILE [--user UID:GID]`). It faces
 * the Internet like smtpd, so it holds no KEK and does not open postern.db: our users' public keys
 * and certificates come from the files the supervisor publishes and the internal CA's CRL from the
 * file the CA commands write (keystore/public.ts, the keystore's KEK-free entry). Reply links and
 * webmail are in the portal store (keystore/portal-db.ts, KEK-free too: portal.db, or the schema
 * `portal` of the cluster's PostgreSQL database under the portal's own login when the config gives
 * one), which the supervisor made before the roles started. Started as root, it drops to `user:`
 * once its ports are bound; the store is opened before that, so SQLite's -wal and -shm exist (the
 * account cannot create files in data_dir) and a PostgreSQL password file root's alone can be read.
 * Replies (PDF reply pages, webmail) are written into spool/incoming, as smtpd writes mail, for the workers.
 */
import type { Config } from '../config/index.js';
import { openReplyLink } from '../keystore/portal-reply-links.js';
import { openPortalStore } from '../keystore/portal-store.js';
import { internalCrlFile, publicCertificatesFile, publicKeysFile } from '../keystore/public.js';
import { keyServer, PublicCertificateFile, PublicKeyFile, replyPages, spooledReplies, startPortal, webmailPages } from '../portal/index.js';
import { numericListen } from './privileges.js';
import { batched, main } from './run.js';
import { openStoreOrLater } from './open-or-later.js';

/** The portal's own name in the replies it writes (Received:, Message-ID:): its URL's host, else the gateway's. */
const portalHost = (config: Config) => (config.portal.url ? new URL(config.portal.url).hostname : config.hostname);

main('portal', async ({ config, dataDir, spool, log, send }) => {
  const listen = await numericListen(config.portal.listen);
  const keys = new PublicKeyFile(publicKeysFile({ data_dir: dataDir }));
  const certificates = new PublicCertificateFile(publicCertificatesFile({ data_dir: dataDir }));
  const db = await openStoreOrLater(() => openPortalStore({ ...config, data_dir: dataDir }, { role: 'portal', create: false }));
  const queued = batched((ids: string[]) => send({ type: 'queued', ids }));
  const portal = await startPortal({
    config: { ...config, portal: { ...config.portal, listen } },
    store: keys,
    log,
    crlFile: internalCrlFile({ data_dir: dataDir }),
    pages: [
      keyServer({ keys, certificates, internalDomains: config.internal_domains, log }),
      // Replies go into spool/incoming like smtpd's mail, and the workers are told as smtpd tells them.
      replyPages({ db, openLink: (token, password, now) => openReplyLink(db, token, password, now), spool, queued, pdf: config.pdf }),
      webmailPages({ db, sendReply: spooledReplies({ spool, portalHost: portalHost(config), tls: Boolean(config.portal.tls), queued }) }),
    ],
    db,
  }).catch(async (err: unknown) => {
    await db.close();
    throw err;
  });
  return {
    // Listening addresses need a restart; keys and the CRL are read when replaced; a renewed
    // certificate comes with the reload (read by the supervisor: the key file is root's).
    reload: (_c, tls) => {
      if (tls) portal.reloadTls(tls).catch((err: Error) => log.error({ event: 'portal.tls_reload_failed', reason: err.message }, 'portal keeps its TLS certificate'));
    },
    close: async () => {
      await portal.close();
      await db.close();
    },
  };
});
