/**
 * Gathering what a message's plan is decided from (plan.ts), once per message: the message's
 * header facts, the parties' facts (internal?, groups, which methods have usable keys), the
 * subject commands, the policy's per-recipient plans, and — only when some plan needs them — facts
 * about the body (which crypto it carries; whether it is ciphertext already). The worker and
 * `policy explain` both come through here, so they decide from the same facts.
 */
import type { Config } from '../config/types.js';
import { LimitExceededError, type Envelope } from '../core/index.js';
import type { Logger } from '../log/index.js';
import { addressesOf, cryptoMethods, editHeaders, subjectCommands, type messageFacts } from '../mime/index.js';
import type { PolicyContext } from './decide.js';
import { fetchMissingKeys, learnAutocrypt } from './key-sources.js';
import { evaluate, type CommandName, type CompiledPolicy, type Directory, type MessageFacts } from '../policy/index.js';
import type { PlanFacts } from './plan.js';
import { memoLookups, partyFacts, type KeyLookups } from './policy-facts.js';
import { sealedOnce, type MessageMemo } from './transform.js';

export interface FactsInput {
  body: Buffer;
  message: MessageFacts;
  sender: string;
  /** Distinct envelope recipients, canonical, in envelope order. */
  recipients: string[];
  clientTrusted: boolean;
  /** The client's address, for the log. */
  client?: string;
  policy: CompiledPolicy;
  config: Config;
  lookups: KeyLookups;
  directory: Directory;
  keysLoaded: boolean;
  memo: MessageMemo;
  log?: Logger;
  queueId?: string;
}

/** Only Postern states results: the X-Postern-* fields a message arrives with are removed. */
function ownFields(message: ReturnType<typeof messageFacts>): string[] {
  return [...message.headers.keys()].filter((n) => n.startsWith('x-postern-'));
}

/** The facts, and the message with the plan's header clean-up applied (what every group starts from). */
export async function gatherFacts(input: FactsInput): Promise<{ facts: PlanFacts; base: Buffer }> {
  const { message, policy } = input;
  const tokens = [...policy.commands.keys()];
  const commands = subjectCommands(message.subject, tokens)
    .found.map((t) => policy.commands.get(t.toLowerCase()))
    .filter((c): c is CommandName => c !== undefined);
  const deps = { config: input.config, store: input.lookups, directory: input.directory };
  const [sender, ...recipients] = await Promise.all([partyFacts(input.sender, 'sender', deps), ...input.recipients.map((a) => partyFacts(a, 'recipient', deps))]);
  const plans = evaluate(policy, { message, sender: sender!, recipients, clientTrusted: input.clientTrusted, commands });
  const skipped = plans.flatMap((p) => p.skipped ?? []);
  if (skipped.length && input.log) {
    input.log.info({ event: 'worker.sign_skipped', queueId: input.queueId, sender: input.sender, client: input.client, reason: skipped[0]!.reason }, 'not signed: the client is not trusted');
  }
  const strip = ownFields(message);
  // Subject commands are instructions to Postern, not part of the mail: removed before delivery —
  // before the transforms, so that header protection copies the Subject without them, and an
  // encrypted message's hidden Subject is not written outside again afterwards.
  const cleaned = commands.length && input.clientTrusted ? subjectCommands(message.subject, tokens).subject : null;
  const base = strip.length || cleaned !== null ? editHeaders(input.body, { remove: strip, ...(cleaned !== null ? { set: [['Subject', cleaned]] as [string, string][] } : {}) }) : input.body;
  // What the message carries decides how it is opened: the outermost layer's kind. Crypto only
  // below the top (a signed part in a mixed, armour in an attachment) is opened too, to be
  // reported — looked for only when some plan opens mail (not on the outbound hot path).
  const opens = plans.some((p) => p.actions.some((a) => a.kind === 'decrypt' || a.kind === 'verify'));
  let inside = message.encrypted ?? message.signed ?? null;
  let limit: string | null = null;
  if (inside === null && opens) {
    // A body past the structure limits (10,000 nested multiparts) cannot be searched: the
    // recipients whose plan opens mail are held with the limit; the others get it as it came.
    try {
      inside = cryptoMethods(input.body)[0] ?? null;
    } catch (err) {
      if (!(err instanceof LimitExceededError)) throw err;
      limit = err.message;
      input.log?.warn({ event: 'worker.limit_exceeded', queueId: input.queueId, limit: err.limit, max: err.max, reason: err.message }, 'the message goes past a limit: not opened');
    }
  }
  // Whole-body ciphertext made by the sender's client matters only to a rule requiring encryption here.
  const requires = plans.some((p) => p.actions.some((a) => a.kind === 'encrypt' && a.require));
  const sealed = requires ? (await sealedOnce(base, input.memo)) !== null : false;
  const pgpFiles = message.attachments.some((a) => /\.(pgp|gpg|asc)$/i.test(a.name));
  return {
    facts: {
      message,
      sender: sender!,
      recipients,
      commands,
      clientTrusted: input.clientTrusted,
      policy: plans,
      body: { inside, sealed, pgpFiles, ...(limit ? { limit } : {}) },
      keysLoaded: input.keysLoaded,
      autocrypt: input.config.discovery.autocrypt,
      ownFields: strip,
      cleanedSubject: cleaned,
    },
    base,
  };
}

/**
 * The worker's fact gathering for one claimed message, shared by the in-memory path (decide.ts)
 * and the streamed one (large.ts): keys learnt from its Autocrypt header and fetched from the
 * directory or discovery first — before the look-ups are memoised, so what they find counts —
 * then gatherFacts. `body` is the whole message, or the header block for a streamed one.
 */
export async function factsOfMessage(
  entry: { id: string; envelope: Envelope },
  body: Buffer,
  message: MessageFacts,
  ctx: PolicyContext,
  log: Logger,
): Promise<{ facts: PlanFacts; base: Buffer; lookups: KeyLookups; memo: MessageMemo }> {
  const env = entry.envelope;
  const addresses = [...new Set(env.recipients.map((r) => r.address))];
  const io = { config: ctx.config, store: ctx.store, log, queueId: entry.id };
  if (ctx.config.discovery.autocrypt) await learnAutocrypt(message.headers, addressesOf(message.headers.get('from')?.[0] ?? '')[0] ?? '', io);
  const unknown = ctx.sources ? await fetchMissingKeys(addresses, ctx.sources, io) : undefined;
  // Changes made elsewhere up to now count for this message (SQLite: the counters read again).
  await ctx.lookups?.current();
  const lookups = memoLookups(ctx.lookups ?? ctx.store, unknown);
  const memo: MessageMemo = {};
  const { facts, base } = await gatherFacts({
    body,
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
  return { facts, base, lookups, memo };
}
