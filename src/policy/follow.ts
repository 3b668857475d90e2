/**
 * A cluster node's policy file follows the cluster's newest version (issue 19). The database is
 * the source of truth; each node's policy file is the copy it runs on, so a node that cannot reach
 * the database keeps running on the last policy it had, and the gateway's own reload of its
 * policy file (checked before it is taken) is the one way a policy reaches the roles.
 *
 * The follower runs in the supervisor (root, who owns the file): at start, on every NOTIFY of a
 * policy change, after the notification connection comes back (notifications may have been
 * missed), and every cluster.heartbeat as a safety net. A version this node cannot run (its groups
 * file missing here) is refused with the reason and the node keeps its file; a hand edit of the
 * file on one node is replaced by the cluster's version but kept among this node's own versions,
 * so nothing an admin typed is lost.
 */
import type { ConfigProblem } from '../core/index.js';
import { isStoreUnavailable } from '../keystore/sql/types.js';
import { readPolicyFile } from './activate.js';
import { CHANGES_CHANNEL, POLICY_TOPIC, type DbPolicyVersions } from './db-versions.js';
import { writeFileDurably } from './durable-file.js';
import { withFileLock } from './file-lock.js';
import { checkPolicyText } from './load.js';
import type { PolicyVersion, PolicyVersionStore } from './versions.js';

export type FollowOutcome =
  /** The file already is the newest version. */
  | { outcome: 'current'; id: string }
  /** The file was replaced by the newest version; `localKept`: the file's own text, unknown to the cluster, kept locally. */
  | { outcome: 'followed'; version: PolicyVersion; localKept: PolicyVersion | null }
  /** The cluster had no version: this node's file became the first. */
  | { outcome: 'seeded'; version: PolicyVersion }
  /** The newest version does not validate on this node: the file was left as it is. */
  | { outcome: 'refused'; version: PolicyVersion; problems: ConfigProblem[] };

/**
 * Bring `file` to the cluster's newest version, once. `local`: where this node keeps a text it
 * replaces that the cluster never had (data_dir/policy-versions).
 */
export async function followClusterPolicy(file: string, versions: DbPolicyVersions, local: PolicyVersionStore): Promise<FollowOutcome> {
  for (let attempt = 0; ; attempt++) {
    const head = await versions.newestHash();
    if (!head) {
      const current = await readPolicyFile(file);
      const check = await checkPolicyText(current.text, file);
      if (!check.ok) throw new Error(`the cluster has no policy yet and ${file} does not validate: ${check.problems[0]?.message ?? 'invalid'}`);
      const r = await versions.keepIf(current.text, null, { base: null, onlyIfEmpty: true, time: current.modified });
      if (r.outcome === 'kept') return { outcome: 'seeded', version: r.version };
      // Another node seeded it first: follow that one. (Twice at most: a version, once kept, stays.)
      if (attempt > 0) throw new Error('the cluster policy table changed while this node was seeding it');
      continue;
    }
    const current = await readPolicyFile(file);
    if (current.hash === head.hash) return { outcome: 'current', id: head.id };
    const newest = await versions.newest();
    if (!newest) continue;
    // As the gateway will check it on reload, so a refused version never reaches the file. The
    // text comes from the database, not from this machine's admin: its groups file must be in the
    // policy file's folder, or anyone who can write the table could make this root process read
    // any file of the machine (and log a piece of it in the refusal).
    const check = await checkPolicyText(newest.text, file, { groupsBesideFile: true });
    if (!check.ok) return { outcome: 'refused', version: newest.version, problems: check.problems };
    return withFileLock(file, async () => {
      // Read again under the lock: an activation on this node may have written it meanwhile.
      const now = await readPolicyFile(file);
      if (now.hash === newest.version.hash) return { outcome: 'current', id: newest.version.id } as const;
      const localKept = (await versions.knows(now.hash)) ? null : await local.keep(now.text, null, now.modified);
      await writeFileDurably(file, Buffer.from(newest.text, 'utf8'));
      return { outcome: 'followed', version: newest.version, localKept } as const;
    });
  }
}

/** pino's shape, as much of it as the follower uses. */
export interface FollowerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PolicyFollowerOptions {
  file: string;
  versions: DbPolicyVersions;
  local: PolicyVersionStore;
  log: FollowerLog;
  /** ms between checks when no notification comes (cluster.heartbeat). */
  intervalMs: number;
  /** The file now holds a new policy (followed or seeded from elsewhere): make the roles load it. */
  onFollowed?: (version: PolicyVersion) => void;
}

/** Follows the cluster's policy until stopped; never throws, never stops the gateway. */
export class PolicyFollower {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private stopped = false;
  /** What was last logged as wrong (logged once until it changes or clears). */
  private failing: string | null = null;
  private refusedId: string | null = null;

  constructor(private readonly opts: PolicyFollowerOptions) {}

  /** The first check (awaited: a node starts on the cluster's policy when it can), then follow. */
  async start(): Promise<FollowOutcome | null> {
    const first = await this.checkOnce();
    if (this.stopped) return first;
    this.unlisten = await this.opts.versions.sql.listen(
      CHANGES_CHANNEL,
      (topic) => {
        if (topic === POLICY_TOPIC) this.check();
      },
      () => this.check(),
    );
    this.timer = setInterval(() => this.check(), this.opts.intervalMs);
    this.timer.unref();
    return first;
  }

  /** Check soon; checks never overlap, and one asked for during a check runs after it. */
  check(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.checkOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when no check is running (tests; stop). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.().catch(() => undefined);
    await this.settled();
  }

  private async checkOnce(): Promise<FollowOutcome | null> {
    const { log, file } = this.opts;
    let r: FollowOutcome;
    try {
      r = await followClusterPolicy(file, this.opts.versions, this.opts.local);
    } catch (err) {
      const unreachable = isStoreUnavailable(err);
      const reason = (err as Error).message;
      const key = unreachable ? 'unreachable' : reason;
      if (this.failing !== key) {
        if (unreachable) log.warn({ event: 'policy.cluster_unreachable', reason }, 'the cluster database cannot be reached; this node keeps running on its policy file and tries again');
        else log.error({ event: 'policy.cluster_check_failed', reason }, 'could not follow the cluster policy; this node keeps running on its policy file');
      }
      this.failing = key;
      return null;
    }
    if (this.failing === 'unreachable') log.info({ event: 'policy.cluster_reachable' }, 'the cluster database is reachable again');
    this.failing = null;
    switch (r.outcome) {
      case 'current':
        this.refusedId = null;
        break;
      case 'refused':
        if (this.refusedId !== r.version.id) {
          const p = r.problems[0];
          const reason = p ? `${p.file}:${p.line}:${p.column}: ${p.message}` : 'invalid';
          log.error(
            { event: 'policy.cluster_version_refused', version: r.version.id, by: r.version.by, reason, problems: r.problems.length },
            `the cluster's policy version ${r.version.id} does not validate on this node; keeping the policy file in force`,
          );
        }
        this.refusedId = r.version.id;
        break;
      case 'seeded':
        log.info({ event: 'policy.cluster_seeded', version: r.version.id, hash: r.version.hash }, "the cluster had no policy: this node's policy file is its first version");
        break;
      case 'followed':
        this.refusedId = null;
        if (r.localKept) {
          log.warn(
            { event: 'policy.local_edit_replaced', kept: r.localKept.id, version: r.version.id },
            `this node's policy file was none of the cluster's versions; the cluster's version replaces it (the file's text is kept as local version ${r.localKept.id}: push it with \`postern policy push\` to make it the cluster's)`,
          );
        }
        log.info({ event: 'policy.cluster_followed', version: r.version.id, by: r.version.by, hash: r.version.hash }, `following the cluster's policy version ${r.version.id}`);
        this.opts.onFollowed?.(r.version);
        break;
    }
    return r;
  }
}
