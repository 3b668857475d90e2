/**
 * The per-message decision, in three steps: gather the facts (facts.ts: keys learnt from Autocrypt
 * headers and fetched from the directory first, so that they count), plan (plan.ts: pure, the same
 * plan `policy explain` prints), execute (execute.ts: the methods run, drafts for outgoing/ and
 * hold/). The plan is logged at debug level, one line per message.
 */
import type { Config } from '../config/types.js';
import type { KeyStore } from '../keystore/index.js';
import type { Logger } from '../log/index.js';
import { addressesOf, messageFacts } from '../mime/index.js';
import type { CompiledPolicy, Directory } from '../policy/index.js';
import type { ClaimedEntry } from '../spool/index.js';
import type { CryptoKeys } from './crypto-keys.js';
import { executePlan, type Decision } from './execute.js';
import { gatherFacts } from './facts.js';
import { fetchMissingKeys, learnAutocrypt, type KeySources } from './key-sources.js';
import type { PgpKeys } from './pgp-keys.js';
import { describePlan, planMessage } from './plan.js';
import { memoLookups } from './policy-facts.js';
import type { MessageMemo } from './transform.js';

export type { Decision } from './execute.js';

export interface PolicyContext {
  config: Config;
  policy: CompiledPolicy;
  store: KeyStore;
  directory: Directory;
  /** Prepared keys (shared across policy reloads); without them nothing is signed or encrypted. */
  keys?: CryptoKeys;
  pgpKeys?: PgpKeys;
  /** LDAP certificates and OpenPGP key discovery for recipients the store has no key for. */
  sources?: KeySources;
}

export async function decide(entry: ClaimedEntry, ctx: PolicyContext | null, log: Logger): Promise<Decision> {
  const env = entry.meta.envelope;
  if (!ctx) return { drafts: [{ envelope: env, body: entry.body, key: 'unchanged' }], held: [] };
  const message = messageFacts(entry.body);
  const addresses = [...new Set(env.recipients.map((r) => r.address))];
  const io = { config: ctx.config, store: ctx.store, log, queueId: entry.id };
  if (ctx.config.discovery.autocrypt) await learnAutocrypt(message.headers, addressesOf(message.headers.get('from')?.[0] ?? '')[0] ?? '', io);
  // Before the look-ups are memoised: what the directory or discovery finds must count.
  if (ctx.sources) await fetchMissingKeys(addresses, ctx.sources, io);
  const lookups = memoLookups(ctx.store);
  const memo: MessageMemo = {};
  const { facts, base } = await gatherFacts({
    body: entry.body,
    message,
    sender: env.sender,
    recipients: addresses,
    clientTrusted: env.client.trusted,
    client: env.client.address,
    policy: ctx.policy,
    config: ctx.config,
    lookups,
    directory: ctx.directory,
    keysLoaded: ctx.keys !== undefined && ctx.pgpKeys !== undefined,
    memo,
    log,
    queueId: entry.id,
  });
  const plan = planMessage(facts);
  if (log.isLevelEnabled?.('debug') ?? true) {
    log.debug({ event: 'worker.plan', queueId: entry.id, rules: facts.policy.map((p) => ({ recipient: p.recipient, direction: p.direction, rules: p.rules })), plan: describePlan(plan) }, 'policy decided');
  }
  return executePlan(entry, plan, { base, lookups, memo }, ctx, log);
}
