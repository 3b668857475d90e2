/**
 * KeyDiscovery: an OpenPGP key for a recipient the keystore has none for, from the recipient
 * domain's Web Key Directory and then the key servers configured for the address; what is found
 * is imported (source 'wkd' or 'hkp'). Answers, positive and negative, are cached in memory per
 * process (a dead server costs one time-out per negative_ttl, not one per mail), and concurrent
 * look-ups of one address share one request.
 *
 * Never throws, but for a keystore that cannot be reached now (PostgreSQL down): a key found and
 * not stored would leave the recipient looking keyless to the policy, so the caller must wait
 * (the worker defers the message). A network or parse failure is null plus a log event (directory.*). A source that
 * hangs delays the caller by at most its time-out; sources are asked one after the other, not at
 * once, because each look-up tells a third party whom we write to (worst case: the sum of the
 * time-outs of the sources configured for that address).
 *
 * Untrusted input: recipient addresses, directory answers (see wkd.ts, hkp.ts, keys.ts).
 */
import type { DiscoveryConfig } from '../config/index.js';
import { isStoreUnavailable } from '../keystore/sql/types.js';
import type { Logger } from '../log/index.js';
import type { ParsedPgpKey } from '../openpgp/index.js';
import { compilePatterns, splitAddress, type AddressMatcher } from './address.js';
import { HkpClient } from './hkp.js';
import { importCandidate, rankKeys, type CandidateKey, type DirectoryStore, type LookupOutcome } from './keys.js';
import { WkdClient, type WkdOptions } from './wkd.js';

export type DiscoverySource = 'wkd' | 'hkp';

export interface Discovered {
  key: ParsedPgpKey;
  source: DiscoverySource;
}

/** What one `lookup` did, for logs and `policy explain`. */
export interface DiscoveryTrace {
  address: string;
  result: Discovered | null;
  /** Each source asked, in order, with its outcome. */
  asked: { source: DiscoverySource; server?: string; status: LookupOutcome['status']; notes: string[] }[];
  /** Why nothing was asked (internal domain, no source configured, not an address). */
  skipped?: string;
  cached: boolean;
}

export interface KeyDiscoveryOptions {
  config: { internal_domains: readonly string[]; discovery: DiscoveryConfig };
  store: DirectoryStore;
  log: Logger;
  /** Who imports, for the audit log (default "worker"). */
  actor?: string;
  /** Tests: where WKD is asked (default https://openpgpkey.<domain>, https://<domain>). */
  wkdOrigin?: WkdOptions['origin'];
  /** Tests: the clock of the caches. */
  now?: () => number;
  /** Entries kept in the cache (oldest dropped first). */
  maxCacheEntries?: number;
}

interface CacheEntry {
  expires: number;
  result: Discovered | null;
}

export class KeyDiscovery {
  private readonly wkd: WkdClient;
  private readonly hkp: HkpClient;
  private readonly wkdDomains: AddressMatcher;
  private readonly internal: Set<string>;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<DiscoveryTrace>>();
  private readonly now: () => number;

  constructor(private readonly opts: KeyDiscoveryOptions) {
    const d = opts.config.discovery;
    this.wkd = new WkdClient({ timeout: d.wkd.timeout, maxBytes: d.max_key_size, ...(opts.wkdOrigin ? { origin: opts.wkdOrigin } : {}) });
    this.hkp = new HkpClient(d.hkp.servers, { maxBytes: d.max_key_size });
    this.wkdDomains = compilePatterns(d.wkd.domains);
    this.internal = new Set(opts.config.internal_domains.map((x) => x.toLowerCase()));
    this.now = opts.now ?? Date.now;
  }

  /** True when some source would be asked about `address` (cheap; no I/O). */
  enabledFor(address: string): boolean {
    return this.skipReason(address) === undefined;
  }

  /** A usable (encryption-capable) key for `address`, imported into the keystore; null otherwise. */
  async find(address: string): Promise<Discovered | null> {
    try {
      return (await this.lookup(address)).result;
    } catch (err) {
      if (isStoreUnavailable(err)) throw err;
      // lookup() catches everything it expects; this is the promise that the caller never sees a throw.
      this.opts.log.error({ event: 'directory.discovery_failed', address, reason: (err as Error).message }, 'key discovery failed');
      return null;
    }
  }

  /** Like find(), with what was asked and answered. */
  async lookup(address: string): Promise<DiscoveryTrace> {
    const a = splitAddress(address);
    const id = a ? a.address.toLowerCase() : address.trim().toLowerCase();
    const hit = this.cache.get(id);
    if (hit && hit.expires > this.now()) return { address, result: hit.result, asked: [], cached: true };
    if (hit) this.cache.delete(id);
    const running = this.inflight.get(id);
    if (running) return running;
    const run = this.discover(address).finally(() => this.inflight.delete(id));
    this.inflight.set(id, run);
    return run;
  }

  /** Forget cached answers (all, or one address's), e.g. after an admin imported a key. */
  forget(address?: string): void {
    if (address === undefined) this.cache.clear();
    else this.cache.delete((splitAddress(address)?.address ?? address.trim()).toLowerCase());
  }

  private skipReason(address: string): string | undefined {
    const a = splitAddress(address);
    if (!a) return 'not an address';
    if (this.internal.has(a.domain)) return 'internal domain: the keystore is its directory';
    if (!this.wkdDomains(a) && !this.hkp.serversFor(a.address).length) return 'no key source configured for this address';
    return undefined;
  }

  private async discover(address: string): Promise<DiscoveryTrace> {
    const log = this.opts.log;
    const skipped = this.skipReason(address);
    const a = splitAddress(address);
    if (skipped || !a) return { address, result: null, asked: [], skipped: skipped ?? 'not an address', cached: false };
    const trace: DiscoveryTrace = { address, result: null, asked: [], cached: false };
    const sources: { source: DiscoverySource; server?: string; ask: () => Promise<LookupOutcome> }[] = [];
    if (this.wkdDomains(a)) sources.push({ source: 'wkd', ask: () => this.wkd.lookup(a.address) });
    for (const server of this.hkp.serversFor(a.address)) sources.push({ source: 'hkp', server: server.url, ask: () => this.hkp.lookup(server, a.address) });

    let found: { source: DiscoverySource; keys: CandidateKey[] } | null = null;
    for (const s of sources) {
      const started = this.now();
      const outcome = await s.ask();
      trace.asked.push({ source: s.source, ...(s.server ? { server: s.server } : {}), status: outcome.status, notes: outcome.notes });
      const ms = this.now() - started;
      if (outcome.status === 'found') {
        log.info({ event: `directory.${s.source}.found`, address: a.address, url: outcome.url, fingerprints: outcome.keys.map((k) => k.key.info.fingerprint), notes: outcome.notes, ms }, 'OpenPGP key found');
        found = { source: s.source, keys: outcome.keys };
        // The first source with keys for the address speaks for it (WKD is the domain's own word):
        // a key server's older, unrevoked key must not overrule a revocation served by WKD.
        break;
      }
      const level = outcome.status === 'error' ? 'warn' : 'debug';
      log[level]({ event: `directory.${s.source}.${outcome.status === 'error' ? 'error' : 'not_found'}`, address: a.address, server: s.server, notes: outcome.notes, ms }, outcome.status === 'error' ? 'key look-up failed' : 'no key');
    }

    if (found) trace.result = await this.take(a.address, found.source, found.keys);
    this.remember(a.address.toLowerCase(), trace.result);
    return trace;
  }

  /** Import every key found (a revocation updates what we have), return the best usable one. */
  private async take(address: string, source: DiscoverySource, keys: CandidateKey[]): Promise<Discovered | null> {
    const log = this.opts.log;
    for (const c of keys) {
      try {
        const r = await importCandidate(this.opts.store, c, { source, actor: this.opts.actor ?? 'worker' });
        if (r.status !== 'duplicate') log.info({ event: 'directory.imported', address, source, fingerprint: c.key.info.fingerprint, status: r.status }, 'OpenPGP key stored');
      } catch (err) {
        // Not cached as found: the policy asks the store, which does not have it.
        if (isStoreUnavailable(err)) throw err;
        // The key is still good for this message; the next look-up will try to store it again.
        log.error({ event: 'directory.import_failed', address, source, fingerprint: c.key.info.fingerprint, reason: (err as Error).message }, 'found key not stored');
      }
    }
    const best = rankKeys(keys.map((c) => c.key)).find((k) => k.info.canEncrypt);
    if (!best) {
      log.warn({ event: 'directory.unusable', address, source, problems: keys.map((c) => `${c.key.info.fingerprint}: ${c.key.info.encryptProblem ?? 'cannot encrypt'}`) }, 'only unusable keys found');
      return null;
    }
    return { key: best, source };
  }

  private remember(id: string, result: Discovered | null): void {
    const d = this.opts.config.discovery;
    const ttl = result ? d.cache_ttl : d.negative_ttl;
    if (ttl <= 0) return;
    this.cache.delete(id);
    this.cache.set(id, { expires: this.now() + ttl, result });
    const max = this.opts.maxCacheEntries ?? 10_000;
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
  }
}
