/**
 * The gateway's /metrics: every role's registry gathered through the supervisor (a 'metrics'
 * request, answered within about a second with the processes that answered), this process's own,
 * and the gauges only the admin role can compute at scrape time — how many entries wait in each
 * spool directory, and how long until the certificates that matter expire — rendered as one
 * Prometheus text (series of processes of one role summed: log/metrics.ts renderMetrics).
 *
 * The gauges are computed when scraped, never kept up to date on the mail's path.
 */
import { Gauge, Registry } from 'prom-client';
import { addressKey, inDomains } from '../core/index.js';
import type { StoredCertificate } from '../keystore/index.js';
import { metricsSnapshot, renderMetrics } from '../log/index.js';
import { QUEUES } from '../spool/index.js';
import { processedByMethod } from './hourly.js';
import { CarriedCounts, type ProcessSnapshot } from './metrics-carry.js';
import type { AdminContext } from './routes.js';

/** Bound on the certificate series: the soonest to expire are kept, an admin acts on those first. */
export const MAX_CERTIFICATE_SERIES = 500;

export interface GatewayMetricsOptions {
  ctx: Pick<AdminContext, 'config' | 'spool' | 'store' | 'log'>;
  /** The other processes' snapshots (the supervisor's 'metrics'); rejects when it cannot answer. */
  gather: () => Promise<ProcessSnapshot[]>;
  now?: () => number;
  /** Told each scrape's totals of recipients' copies by method (the dashboard's messages per hour: hourly.ts). */
  observeProcessed?: (totals: Record<string, number>) => void;
}

/** The text /metrics answers. Without the supervisor (a test, a console run alone) it still has this process's series and the gauges. */
export function gatewayMetrics(opts: GatewayMetricsOptions): () => Promise<string> {
  const { ctx } = opts;
  const now = opts.now ?? Date.now;
  const scrape = new Registry();
  const queue = new Gauge({ name: 'postern_queue_entries', help: 'Entries in each spool directory now', labelNames: ['queue'], registers: [scrape] });
  const expiry = new Gauge({
    name: 'postern_certificate_expiry_seconds',
    help: `Seconds until a certificate expires (negative: expired): per internal address the certificate with a private key that lasts longest, and every trusted CA; the ${MAX_CERTIFICATE_SERIES} soonest`,
    labelNames: ['kind', 'fingerprint', 'name'],
    registers: [scrape],
  });
  const carried = new CarriedCounts();
  const answered = new Gauge({ name: 'postern_metrics_processes', help: 'Processes whose metrics this scrape holds (the supervisor, the admin role and each role process that answered in time)', registers: [scrape] });
  return async () => {
    const others = await opts.gather().catch((err: Error) => {
      ctx.log.warn({ event: 'admin.metrics_incomplete', reason: err.message }, 'metrics of the other roles not gathered; this process\'s only');
      return [] as ProcessSnapshot[];
    });
    queue.reset();
    for (const q of QUEUES) queue.set({ queue: q }, (await ctx.spool.list(q)).length);
    expiry.reset();
    const t = now();
    for (const c of watchedCertificates(await ctx.store.listCertificates(), ctx.config().internal_domains)) {
      expiry.set({ kind: c.kind, fingerprint: c.cert.fingerprint, name: c.name }, Math.round((c.cert.notAfter.getTime() - t) / 1000));
    }
    answered.set(others.length + 1);
    const summed = [...(await carried.merge(others)), await metricsSnapshot(), await scrape.getMetricsAsJSON()];
    opts.observeProcessed?.(processedByMethod(summed));
    return renderMetrics(summed);
  };
}

export interface WatchedCertificate {
  kind: 'user' | 'ca';
  cert: StoredCertificate;
  /** The internal address, or the CA's subject. */
  name: string;
}

/**
 * The certificates whose expiry stops mail being signed or decrypted: for each internal address,
 * its certificate with a private key that lasts longest (an older one it replaced does not
 * matter), and each trusted CA. At most MAX_CERTIFICATE_SERIES, soonest first.
 */
export function watchedCertificates(certs: readonly StoredCertificate[], internalDomains: readonly string[]): WatchedCertificate[] {
  const byAddress = new Map<string, StoredCertificate>();
  const out: WatchedCertificate[] = [];
  for (const c of certs) {
    if (c.trusted && c.isCA) out.push({ kind: 'ca', cert: c, name: c.subject.slice(0, 200) });
    if (!c.hasPrivateKey || c.isCA) continue;
    for (const a of c.emails) {
      if (!inDomains(a, internalDomains)) continue;
      const key = addressKey(a);
      const had = byAddress.get(key);
      if (!had || had.notAfter < c.notAfter) byAddress.set(key, c);
    }
  }
  for (const [address, cert] of byAddress) out.push({ kind: 'user', cert, name: address });
  out.sort((a, b) => a.cert.notAfter.getTime() - b.cert.notAfter.getTime());
  return out.slice(0, MAX_CERTIFICATE_SERIES);
}
