/**
 * Entry point of the portal role (`node dist/roles/portal.js -c FILE [--user UID:GID]`). It faces
 * the Internet like smtpd, so it holds no KEK and does not open postern.db: our users' public keys
 * and certificates come from the files the supervisor publishes and the internal CA's CRL from the file the CA
 * commands write (keystore/public.ts, the keystore's KEK-free entry). Started as root, it drops to
 * `user:` once its ports are bound.
 */
import { internalCrlFile, publicCertificatesFile, publicKeysFile } from '../keystore/public.js';
import { keyServer, PublicCertificateFile, PublicKeyFile, startPortal } from '../portal/index.js';
import { numericListen } from './privileges.js';
import { main } from './run.js';

main('portal', async ({ config, dataDir, log }) => {
  const listen = await numericListen(config.portal.listen);
  const keys = new PublicKeyFile(publicKeysFile({ data_dir: dataDir }));
  const certificates = new PublicCertificateFile(publicCertificatesFile({ data_dir: dataDir }));
  const portal = await startPortal({
    config: { ...config, portal: { ...config.portal, listen } },
    store: keys,
    log,
    crlFile: internalCrlFile({ data_dir: dataDir }),
    pages: [keyServer({ keys, certificates, internalDomains: config.internal_domains, log })],
  });
  return {
    // Listening addresses need a restart; keys and the CRL are read when replaced; a renewed
    // certificate comes with the reload (read by the supervisor: the key file is root's).
    reload: (_c, tls) => {
      if (tls) portal.reloadTls(tls).catch((err: Error) => log.error({ event: 'portal.tls_reload_failed', reason: err.message }, 'portal keeps its TLS certificate'));
    },
    close: () => portal.close(),
  };
});
