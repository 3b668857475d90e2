/**
 * The worker role: claim each accepted message, decide what happens to it, and hand the result to
 * the relay through outgoing/. In this version the message passes unchanged as one recipient
 * group; policy and transforms (later issues) plug in at `decide()`, which must either return
 * every output or throw — an input is removed only after all its outputs are durable.
 */
import type { Config } from '../config/types.js';
import type { Logger } from '../log/index.js';
import { watchQueue, type ClaimedEntry, type OutgoingDraft, type Spool } from '../spool/index.js';

export interface WorkerOptions {
  config: Config;
  spool: Spool;
  log: Logger;
  /** Messages processed at once by this worker (I/O overlaps; CPU work is per core). */
  concurrency?: number;
}

export interface Worker {
  /** Scan incoming/ now. */
  kick(): void;
  reload(config: Config): void;
  /** Stop claiming; finish the messages in hand (or release them after `graceMs`). */
  close(graceMs?: number): Promise<void>;
}

export async function startWorker(opts: WorkerOptions): Promise<Worker> {
  const { spool, log } = opts;
  let config = opts.config;
  const concurrency = opts.concurrency ?? 8;
  const inFlight = new Map<string, Promise<void>>();
  /** Ids seen in a listing but not yet tried, oldest first. */
  let backlog: string[] = [];
  let scanning = false;
  let rescan = false;
  let closed = false;

  async function handle(entry: ClaimedEntry): Promise<void> {
    const started = Date.now();
    const drafts = await decide(entry, config);
    await spool.commitOutgoing(entry, drafts);
    log.info(
      { event: 'worker.done', queueId: entry.id, outputs: drafts.length, ms: Date.now() - started },
      'message processed',
    );
  }

  function fill(): void {
    while (!closed && inFlight.size < concurrency && backlog.length > 0) {
      const id = backlog.shift()!;
      if (inFlight.has(id)) continue;
      const p = (async () => {
        let entry: ClaimedEntry | null = null;
        try {
          entry = await spool.claim(id);
          if (!entry) return; // another worker won, or it was corrupt (logged by the caller below)
          await handle(entry);
        } catch (err) {
          // Nothing is lost: the entry stays in active/ and is reclaimed when this worker restarts;
          // release it now so another attempt happens without a restart.
          log.error({ event: 'worker.error', queueId: id, err }, 'processing failed; message released for retry');
          if (entry) await spool.release(entry).catch(() => undefined);
        }
      })().finally(() => {
        inFlight.delete(id);
        fill();
        if (backlog.length === 0) kick();
      });
      inFlight.set(id, p);
    }
  }

  async function scan(): Promise<void> {
    if (scanning) {
      rescan = true;
      return;
    }
    scanning = true;
    try {
      do {
        rescan = false;
        if (closed) return;
        const ids = await spool.list('incoming');
        const known = new Set(backlog);
        for (const id of ids) if (!known.has(id) && !inFlight.has(id)) backlog.push(id);
        // Several workers read the same listing; starting at different points lowers rename races.
        fill();
      } while (rescan);
    } catch (err) {
      log.error({ event: 'worker.scan_error', err }, 'cannot list incoming queue');
    } finally {
      scanning = false;
    }
  }

  function kick(): void {
    if (!closed && backlog.length === 0) void scan();
    else if (!closed && inFlight.size < concurrency) fill();
  }

  const unwatch = watchQueue(spool.dir('incoming'), kick);
  kick();

  return {
    kick,
    reload(c) {
      config = c;
    },
    async close(graceMs = 30_000) {
      closed = true;
      backlog = [];
      unwatch();
      // Claimed messages finish; if they do not within the grace period the supervisor's
      // reclaim puts them back into incoming/ after this process exits.
      await Promise.race([Promise.allSettled([...inFlight.values()]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    },
  };
}

/** The per-message decision. Later issues: policy → keys → transforms, per recipient group. */
async function decide(entry: ClaimedEntry, _config: Config): Promise<OutgoingDraft[]> {
  return [{ envelope: entry.meta.envelope, body: entry.body }];
}
