/**
 * The per-message decision, in three steps: gather the facts (facts.ts: keys learnt from Autocrypt
 * headers and fetched from the directory first, so that they count), plan (plan.ts: pure, the same
 * plan `policy explain` prints), execute (execute.ts: the methods run, drafts for outgoing/ and
 * hold/). The plan is logged at debug level, one line per message.
 */
import type { Config } from '../config/types.js';
import type { KeyStore, PortalDb } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { messageFacts } from '../mime/index.js';
import type { CompiledPolicy, Directory } from '../policy/index.js';
import type { CryptoKeys } from './crypto-keys.js';
import { executePlan, type Decision } from './execute.js';
import { factsOfMessage } from './facts.js';
import type { KeySources } from './key-sources.js';
import type { PgpKeys } from './pgp-keys.js';
import { describePlan, planMessage } from './plan.js';
import { refuseTransforms, type WorkerEntry } from './binary-form.js';
import type { StoreLookups } from './store-lookups.js';

export type { Decision } from './execute.js';

export interface PolicyContext {
  config: Config;
  policy: CompiledPolicy;
  store: KeyStore;
  /** portal.db, opened beside the store (keystore/portal-db.ts). */
  portal: PortalDb;
  directory: Directory;
  /** Prepared keys (shared across policy reloads); without them nothing is signed or encrypted. */
  keys?: CryptoKeys;
  pgpKeys?: PgpKeys;
  /** LDAP certificates and OpenPGP key discovery for recipients the store has no key for. */
  sources?: KeySources;
  /** The store's look-ups cached per change generation (store-lookups.ts); without it each is asked of the store. */
  lookups?: StoreLookups;
}

export async function decide(entry: WorkerEntry, ctx: PolicyContext | null, log: Logger): Promise<Decision> {
  const env = entry.meta.envelope;
  if (!ctx) return { drafts: [{ envelope: env, body: entry.body, key: 'unchanged' }], held: [] };
  const message = messageFacts(entry.body);
  const { facts, base, lookups, memo } = await factsOfMessage({ id: entry.id, envelope: env }, entry.body, message, ctx, log);
  const plan = refuseTransforms(planMessage(facts), entry);
  if (log.isLevelEnabled?.('debug') ?? true) {
    log.debug({ event: 'worker.plan', queueId: entry.id, rules: facts.policy.map((p) => ({ recipient: p.recipient, direction: p.direction, rules: p.rules })), plan: describePlan(plan) }, 'policy decided');
  }
  return executePlan(entry, plan, { base, lookups, memo }, ctx, log);
}
