/**
 * Entry point of the smtpd role (`node dist/roles/smtpd.js -c FILE [--user UID:GID]`, started by
 * the supervisor). It faces the Internet, so it loads the SMTP listener, the spool, config and log
 * and nothing else — never the keystore or a KEK (test/integration/role-imports.test.ts checks the
 * module graph) — and, started as root, drops to `user:` once its ports are bound.
 */
import type { Config } from '../config/types.js';
import { startSmtpd } from '../smtpd/index.js';
import { numericListen } from './privileges.js';
import { batched, main } from './run.js';
import { supervisorLink } from './supervisor-link.js';

main('smtpd', async ({ config, spool, log, send }) => {
  const named = config.smtp.listen;
  const listen = await numericListen(named);
  // The same listen list after a reload is the one already bound (smtpd warns about any other).
  const bound = (c: Config): Config => (JSON.stringify(c.smtp.listen) === JSON.stringify(named) ? { ...c, smtp: { ...c.smtp, listen } } : c);
  // ETRN moves deferred/ entries, which this role may not touch: the supervisor does it.
  const supervisor = supervisorLink(send);
  const smtpd = await startSmtpd({ config: bound(config), spool, log, onQueued: batched((ids) => send({ type: 'queued', ids })), etrn: (pattern) => supervisor.etrn(pattern) });
  return {
    addresses: smtpd.addresses,
    reload: (c, tls) => smtpd.reload(bound(c), tls),
    close: async () => {
      await smtpd.close();
      supervisor.close();
    },
  };
});
