/**
 * A cluster's policy versions (issue 19): the table `policy_versions` of the keystore database,
 * shared by every node; the newest version is the policy in force on all of them (follow.ts makes
 * each node's policy file a copy of it). The same interface as the files of a single gateway
 * (versions.ts), the same ids, the same limit of versions kept.
 *
 * Writes run in a transaction of the store (serialised across nodes), so "is the newest still what
 * the editor started from?" and the insert are one step for the whole cluster, and they bump the
 * 'policy' change counter and NOTIFY the other nodes at COMMIT, as every change of the keystore
 * does. policy/ does no I/O of its own: the Sql is the caller's.
 */
import type { Sql } from '../keystore/sql/types.js';
import { DEFAULT_KEPT_VERSIONS, policyHash, POLICY_VERSION_ID, type PolicyVersion, type PolicyVersionStore } from './versions.js';

/** The channel and topic every keystore change is announced with (keystore/store-base.ts). */
export const CHANGES_CHANNEL = 'postern_store_changes';
export const POLICY_TOPIC = 'policy';

/** What keepIf did: kept the text as the newest, found it already newest, or found another newest than `base`. */
export type KeepIfResult =
  | { outcome: 'kept'; version: PolicyVersion; before: { version: PolicyVersion; text: string } | null }
  | { outcome: 'unchanged'; version: PolicyVersion }
  | { outcome: 'stale'; current: string };

interface VersionRow {
  id: string;
  at: number;
  actor: string | null;
  hash: string;
  size: number;
  [k: string]: unknown;
}

const COLUMNS = 'id, at, actor, hash, size';
// Ties on `at` cannot happen (keep makes each version strictly later), but the id breaks them anyway.
const NEWEST_FIRST = 'ORDER BY at DESC, id DESC';

const versionOf = (r: VersionRow): PolicyVersion => ({ id: r.id, time: new Date(Number(r.at)), by: r.actor, hash: r.hash, size: Number(r.size) });

export class DbPolicyVersions implements PolicyVersionStore {
  constructor(
    readonly sql: Sql,
    readonly limit = DEFAULT_KEPT_VERSIONS,
  ) {}

  async list(): Promise<PolicyVersion[]> {
    return (await this.sql.all<VersionRow>(`SELECT ${COLUMNS} FROM policy_versions ${NEWEST_FIRST}`)).map(versionOf);
  }

  async read(id: string): Promise<{ version: PolicyVersion; text: string } | null> {
    if (!POLICY_VERSION_ID.test(id)) return null;
    const r = await this.sql.get<VersionRow & { text: string }>(`SELECT ${COLUMNS}, text FROM policy_versions WHERE id = ?`, [id]);
    return r ? { version: versionOf(r), text: r.text } : null;
  }

  /** The policy in force in the cluster, or null before the first version. */
  async newest(): Promise<{ version: PolicyVersion; text: string } | null> {
    const r = await this.sql.get<VersionRow & { text: string }>(`SELECT ${COLUMNS}, text FROM policy_versions ${NEWEST_FIRST} LIMIT 1`);
    return r ? { version: versionOf(r), text: r.text } : null;
  }

  /** Only the newest version's id and hash: what a node compares its file with, without the text. */
  async newestHash(): Promise<{ id: string; hash: string } | null> {
    const r = await this.sql.get<{ id: string; hash: string }>(`SELECT id, hash FROM policy_versions ${NEWEST_FIRST} LIMIT 1`);
    return r ? { id: r.id, hash: r.hash } : null;
  }

  /** True when `hash` is the text of some version kept (a node's file that is merely behind). */
  async knows(hash: string): Promise<boolean> {
    return (await this.sql.get('SELECT id FROM policy_versions WHERE hash = ? LIMIT 1', [hash])) !== undefined;
  }

  async keep(text: string, by: string | null, time = new Date()): Promise<PolicyVersion> {
    const r = await this.keepIf(text, by, { base: null, time });
    if (r.outcome === 'stale') throw new Error('unreachable: keep without a base is never stale');
    return r.version;
  }

  /**
   * Keep `text` as the newest version if the newest is still `base` (a hash; null: whatever it is;
   * `onlyIfEmpty`: only when there is no version yet, as a node's file seeds a new cluster).
   */
  async keepIf(text: string, by: string | null, opts: { base: string | null; onlyIfEmpty?: boolean; time?: Date }): Promise<KeepIfResult> {
    const hash = policyHash(text);
    return this.sql.transaction(async () => {
      const last = await this.newest();
      if (last && opts.onlyIfEmpty) return { outcome: 'stale', current: last.version.hash };
      if (last && opts.base !== null && last.version.hash !== opts.base) return { outcome: 'stale', current: last.version.hash };
      if (last && last.version.hash === hash) return { outcome: 'unchanged', version: last.version };
      // Strictly after the newest, so the order of ids is the order versions were kept in, even
      // when nodes' clocks disagree a little.
      let time = opts.time ?? new Date();
      if (last && time.getTime() <= last.version.time.getTime()) time = new Date(last.version.time.getTime() + 1);
      const id = `${time.toISOString().replace(/[-:.]/g, '')}-${hash.slice(0, 12)}`;
      const version: PolicyVersion = { id, time, by, hash, size: Buffer.byteLength(text) };
      await this.sql.run('INSERT INTO policy_versions (id, at, actor, hash, size, text) VALUES (?, ?, ?, ?, ?, ?)', [id, time.getTime(), by, hash, version.size, text]);
      await this.sql.run(`DELETE FROM policy_versions WHERE id NOT IN (SELECT id FROM policy_versions ${NEWEST_FIRST} LIMIT ?)`, [this.limit]);
      // The same counter and channel as every keystore change (store-base.ts changed()): the
      // other nodes' followers wake on it; the counter is what a periodic check could compare.
      await this.sql.run('UPDATE store_changes SET generation = generation + 1 WHERE topic = ?', [POLICY_TOPIC]);
      await this.sql.notify(CHANGES_CHANNEL, POLICY_TOPIC);
      return { outcome: 'kept', version, before: last };
    });
  }
}
