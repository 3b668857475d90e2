/**
 * Entry point of the admin role (`node dist/roles/admin.js -c FILE`): the console and API for the
 * people who run the gateway. It faces only the inside and manages keys, so like the worker it
 * opens the keystore with the KEK (the supervisor gives it the KEK's variables) and stays root
 * (it writes postern.db and the policy file). It is not on the mail's path: when it cannot start,
 * the supervisor tries again later and mail flows on.
 */
import { resolve } from 'node:path';
import { gatewayMetrics, HourlyCounts, startAdmin, type AdminAccounts, type AdminContext } from '../admin/index.js';
import { consolePages } from '../admin/console/index.js';
import type { Config } from '../config/types.js';
import { openPolicyVersions } from '../cli/cluster-policy.js';
import { openKeyStoreWithPortal, saltFile } from '../keystore/index.js';
import { StoreChanges } from '../keystore/changes.js';
import { followConfiguredKek } from '../keystore/kek-follow.js';
import { numericListen } from './privileges.js';
import { main } from './run.js';
import { openStoreOrLater } from './open-or-later.js';
import { supervisorLink } from './supervisor-link.js';

/** How often the admin role gathers the metrics for the dashboard's messages per hour. */
const HOURLY_SAMPLE_MS = 5 * 60_000;

main('admin', async ({ config, spool, log, send }) => {
  const listen = await numericListen(config.admin.listen);
  const { store, portal } = await openStoreOrLater(() => openKeyStoreWithPortal(config, { role: 'admin' }));
  // A cluster's policy versions are in its database; the supervisor migrated the schema at start.
  const policy = config.keystore.postgres ? await openPolicyVersions(config, 'admin') : null;
  // A KEK rotated on another node of the cluster is followed (the admin role stays root: it reads
  // the new KEK its config names itself); on SQLite the counters are read every cluster.heartbeat.
  const changes = await StoreChanges.watch(store, { interval: config.cluster.heartbeat, notified: store.backend.dialect === 'postgres' });
  const kekFollower = followConfiguredKek(store, changes, { config, saltFile: saltFile(config), log, role: 'admin' });
  const unwatch = async () => {
    kekFollower.stop();
    await changes.close();
  };
  let current: Config = config;
  const link = supervisorLink(send);
  const ctx: AdminContext = {
    config: () => current,
    configFile: resolve(config.file),
    store,
    portal,
    spool,
    log,
    supervisor: link,
    ...(policy ? { policyVersions: policy.versions } : {}),
    audit: async (caller, c) => {
      await store.audit({ actor: caller.account, action: c.action, object: c.object, detail: c.detail, client: caller.client, via: caller.via, before: c.before, after: c.after });
    },
  };
  const accounts: AdminAccounts = {
    checkLogin: (name, password, totp) => store.checkAdminLogin(name, password, totp),
    account: async (name) => (await store.adminAccount(name)) ?? undefined,
    failures: store.adminLoginFailures(),
  };
  // The dashboard's messages per hour: the metrics are gathered every few minutes for it (and at each scrape).
  const hourly = new HourlyCounts();
  ctx.messagesPerHour = () => hourly.table();
  const metrics = gatewayMetrics({ ctx, gather: () => link.metrics(), observeProcessed: (t) => hourly.observe(t) });
  const sample = () => void metrics().catch((err: Error) => log.warn({ event: 'admin.metrics_incomplete', reason: err.message }, 'messages per hour not sampled this time'));
  const sampling = setInterval(sample, HOURLY_SAMPLE_MS);
  sampling.unref();
  const admin = await startAdmin({ ctx, accounts, log, listen, metrics, pages: [consolePages] }).catch(async (err: unknown) => {
    link.close();
    await policy?.close();
    await unwatch();
    await store.close();
    await portal.close();
    throw err;
  });
  sample();
  return {
    reload: (c, tls) => {
      current = c;
      if (tls) admin.reloadTls(tls).catch((err: Error) => log.error({ event: 'admin.tls_reload_failed', reason: err.message }, 'admin console keeps its TLS certificate'));
    },
    close: async () => {
      clearInterval(sampling);
      await admin.close();
      link.close();
      await policy?.close();
      await unwatch();
      await store.close();
      await portal.close();
    },
  };
});
