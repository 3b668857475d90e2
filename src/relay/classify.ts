/**
 * The reply-classification table: what a next hop's answer really means when its code misleads.
 * RFC 5321 makes the first digit authoritative, but real servers answer "550 try again later"
 * for greylisting and rate limits, and RFC 5321 §4.5.3.1.10 itself says a 552 for too many
 * recipients must be treated as temporary. Bouncing those would lose mail the sender can't resend
 * easily; deferring them costs a retry. The other way round, a size refusal dressed up as
 * temporary would be retried until max_queue_lifetime. The admin's rules (relay.reply_rules) come first.
 */
import type { ReplyRule } from '../config/types.js';
import type { OutcomeKind } from '../core/index.js';
import type { RecipientOutcome } from './outcome.js';

interface CompiledRule {
  re: RegExp;
  action: 'defer' | 'bounce';
  reason: string;
  /** The catalogue entry a matching reply is (core/outcomes.ts). */
  kind: OutcomeKind;
}

type BuiltInRule = ReplyRule & { kind?: OutcomeKind };

const BUILT_IN: BuiltInRule[] = [
  {
    match: String.raw`^552[ -](5\.5\.3\b|.*too many recipients)`,
    action: 'defer',
    reason: '552 for too many recipients is temporary (RFC 5321 4.5.3.1.10)',
  },
  {
    match: String.raw`^5\d\d[ -]4\.\d{1,3}\.\d{1,3}\b`,
    action: 'defer',
    reason: 'the enhanced status code says the failure is temporary',
  },
  {
    // RFC 1870: 552 is the permanent size refusal (452 "insufficient storage" is the temporary
    // one and stays deferred). A message too big today is as big tomorrow: retrying it for days
    // only delays the bounce the sender needs. Before the "temporary" texts below, so a size
    // refusal that adds "try again later with a smaller message" still bounces.
    match: String.raw`^5\d\d[ -](5\.3\.4\b|5\.2\.3\b|.*\b(message|mail)\b[^.;]*\b(size|too (big|large)|larger than allowed)\b|.*\bdatabytes\b)`,
    action: 'bounce',
    reason: 'a size refusal is permanent (RFC 1870)',
    kind: 'bounced_size',
  },
  {
    match: String.raw`^5\d\d[ -].*\b(try (again )?later|temporar(y|ily)|greylist|too many (connections|messages)|rate limit|throttl)`,
    action: 'defer',
    reason: 'the reply text says the failure is temporary',
  },
];

export class ReplyClassifier {
  private readonly rules: CompiledRule[];

  constructor(adminRules: readonly ReplyRule[] = []) {
    this.rules = [...adminRules, ...BUILT_IN].map((r: BuiltInRule) => ({
      re: new RegExp(r.match, 'i'),
      action: r.action,
      reason: r.reason ?? `relay.reply_rules: /${r.match}/ → ${r.action}`,
      kind: r.kind ?? (r.action === 'defer' ? 'deferred_remote' : 'bounced_remote'),
    }));
  }

  /**
   * The outcome with its status corrected by the first matching rule; `note` says why, `kind`
   * names the catalogue entry the rule gives (a transport's own, more precise kind stays).
   */
  classify(o: RecipientOutcome): RecipientOutcome {
    if (o.status === 'delivered') return o;
    for (const rule of this.rules) {
      if (!rule.re.test(o.reply)) continue;
      const status = rule.action === 'defer' ? 'deferred' : 'failed';
      if (status === o.status) return o.kind ? o : { ...o, kind: rule.kind };
      return { ...o, status, note: rule.reason, kind: rule.kind };
    }
    return o;
  }
}
