/**
 * The engine: (message facts, sender, recipients, commands) → one plan per recipient, with the
 * rules that decided it. Pure and synchronous: the worker gathers every fact first (keys,
 * directory groups), so a decision can be explained and tested without any I/O.
 */
import { addressKey, domainOfAddress } from '../core/index.js';
import type { Action, CommandName, CompiledPolicy, Condition, CryptoKind, Direction, EncryptMethod, MessageFacts, NumberTest, PartyFacts, PartyTest, PolicyInput, RecipientPlan, StringTest } from './types.js';

export const DEFAULT_RULE = '(default policy)';

/** Why a sign (or generate_keys) action of a matching rule did not run. */
export const UNTRUSTED_SIGN = 'the client is not in trusted_networks: Postern signs only mail its own users send';

/** A policy that fails while deciding: a temporary failure, never a silent pass. */
export class PolicyRuntimeError extends Error {
  override readonly name = 'PolicyRuntimeError';
}

export function directionOf(sender: PartyFacts, recipient: PartyFacts): Direction {
  if (sender.internal && recipient.internal) return 'internal';
  if (sender.internal) return 'outbound';
  if (recipient.internal) return 'inbound';
  return 'external';
}

const matches = (tests: StringTest[] | undefined, value: string) => !tests || tests.some((t) => ('glob' in t ? t.glob : t.regex).test(value));

function compare(t: NumberTest, n: number): boolean {
  switch (t.op) {
    case '<':
      return n < t.value;
    case '<=':
      return n <= t.value;
    case '>':
      return n > t.value;
    case '>=':
      return n >= t.value;
    default:
      return n === t.value;
  }
}

function party(t: PartyTest, p: PartyFacts): boolean {
  // Compared in canonical form only (core/address.ts), as the patterns were compiled: every
  // spelling of one mailbox meets the same rules.
  if (!matches(t.address, addressKey(p.address))) return false;
  if (!matches(t.domain, domainOfAddress(p.address))) return false;
  if (t.group && !t.group.some((g) => p.groups.some((pg) => pg.toLowerCase() === g.toLowerCase()))) return false;
  if (t.attribute) {
    for (const [name, tests] of Object.entries(t.attribute)) if (!(p.attributes[name] ?? []).some((v) => matches(tests, v))) return false;
  }
  if (t.internal !== undefined && t.internal !== p.internal) return false;
  switch (t.has_key) {
    case undefined:
      return true;
    case 'smime':
      return p.keys.smime;
    case 'pgp':
      return p.keys.pgp;
    case 'any':
      return p.keys.smime || p.keys.pgp;
    case 'none':
      return !p.keys.smime && !p.keys.pgp;
  }
}

interface Context {
  message: MessageFacts;
  sender: PartyFacts;
  recipient: PartyFacts;
  direction: Direction;
  clientTrusted: boolean;
  commands: CommandName[];
}

function test(c: Condition, x: Context): boolean {
  switch (c.kind) {
    case 'always':
      return true;
    case 'all':
      return c.of.every((s) => test(s, x));
    case 'any':
      return c.of.some((s) => test(s, x));
    case 'not':
      return !test(c.of, x);
    case 'direction':
      return c.is.includes(x.direction);
    case 'sender':
      return party(c.test, x.sender);
    case 'recipient':
      return party(c.test, x.recipient);
    case 'size':
      return compare(c.test, x.message.size);
    case 'attachments': {
      const list = x.message.attachments.filter((a) => matches(c.name, a.name) && matches(c.type, a.type));
      return c.count ? compare(c.count, list.length) : list.length > 0;
    }
    case 'priority':
      return c.is.includes(x.message.priority);
    case 'sensitivity':
      return c.is.includes(x.message.sensitivity);
    case 'encrypted':
    case 'signed': {
      const v = x.message[c.kind];
      return typeof c.is === 'boolean' ? (v !== null) === c.is : v === c.is;
    }
    case 'command':
      return c.is.some((k) => x.commands.includes(k));
    case 'header': {
      const values = x.message.headers.get(c.name);
      if (!values?.length) return false;
      return !c.test || values.some((v) => matches(c.test, v.trim()));
    }
    case 'client':
      return c.trusted === x.clientTrusted;
  }
}

/** DESIGN §3's default: outbound signed when the sender has a key and encrypted where possible; inbound decrypted and verified. */
function defaultActions(x: Context): Action[] {
  switch (x.direction) {
    case 'outbound': {
      return [
        { kind: 'sign', method: 'auto' },
        { kind: 'encrypt', methods: ['smime', 'pgp'], require: false, otherwise: 'hold' },
      ];
    }
    case 'inbound':
      return [{ kind: 'decrypt' }, { kind: 'verify' }];
    default:
      return [{ kind: 'none' }];
  }
}

/**
 * Subject-line commands, honoured only from trusted clients: {plain} drops encryption the policy
 * did not require; the others put their actions in place of actions of the same kind.
 */
function applyCommands(actions: Action[], commands: CommandName[], policy: CompiledPolicy): Action[] {
  let out = actions;
  for (const cmd of commands) {
    if (cmd === 'plain') {
      out = out.filter((a) => a.kind !== 'encrypt' || a.require);
      continue;
    }
    for (const add of policy.commandActions.get(cmd) ?? []) {
      const at = out.findIndex((a) => a.kind === add.kind);
      if (at >= 0) out = out.map((a, i) => (i === at ? add : a)).filter((a, i) => a.kind !== add.kind || i === at);
      else {
        // Signing comes before encryption (the signature is inside the envelope).
        const enc = add.kind === 'sign' ? out.findIndex((a) => a.kind === 'encrypt') : -1;
        out = enc >= 0 ? [...out.slice(0, enc), add, ...out.slice(enc)] : [...out, add];
      }
    }
  }
  return out;
}

export function evaluate(policy: CompiledPolicy, input: PolicyInput): RecipientPlan[] {
  const commands = input.clientTrusted ? input.commands : [];
  return input.recipients.map((recipient) => {
    const x: Context = { message: input.message, sender: input.sender, recipient, direction: directionOf(input.sender, recipient), clientTrusted: input.clientTrusted, commands };
    const rules: string[] = [];
    let actions: Action[] = [];
    let decided = false;
    try {
      for (const rule of policy.rules) {
        if (!test(rule.when, x)) continue;
        rules.push(rule.name);
        actions.push(...rule.actions);
        if (!rule.continue) {
          decided = true;
          break;
        }
      }
    } catch (err) {
      throw new PolicyRuntimeError(`policy ${policy.file}: deciding for ${recipient.address} failed: ${(err as Error).message}`);
    }
    // Rules that "continue" add passes (an archive copy, a header); the decision itself comes from
    // a rule that stops, or else from the default policy.
    if (!decided) {
      rules.push(DEFAULT_RULE);
      actions.push(...defaultActions(x));
    }
    actions = applyCommands(actions, commands, policy);
    // Postern signs only for its own users: mail from a client outside trusted_networks that
    // claims an internal sender must never leave with that sender's signature (nor make keys for
    // them). Whatever the rules say; the plan says why.
    const skipped: RecipientPlan['skipped'] = [];
    if (!input.clientTrusted) {
      for (const kind of ['sign', 'generate_keys'] as const) {
        if (actions.some((a) => a.kind === kind)) skipped.push({ action: kind, reason: UNTRUSTED_SIGN });
      }
      actions = actions.filter((a) => a.kind !== 'sign' && a.kind !== 'generate_keys');
    }
    // "sign" means "sign when the sender has a key for it"; the plan shows what will happen.
    actions = actions.filter((a) => a.kind !== 'sign' || (a.method === 'auto' ? input.sender.keys.smime || input.sender.keys.pgp : input.sender.keys[a.method]));
    if (actions.length > 1) actions = actions.filter((a) => a.kind !== 'none');
    if (!actions.length) actions = [{ kind: 'none' }];
    return { recipient: recipient.address, direction: x.direction, actions, rules, ...(skipped.length ? { skipped } : {}) };
  });
}

/**
 * How an encrypt action will turn out for a recipient with these keys: the first method of the
 * list it has a key for, or — without one — plain (optional) or the configured fallback (required).
 */
export function encryptionOutcome(a: Extract<Action, { kind: 'encrypt' }>, recipient: PartyFacts): EncryptMethod | 'plain' | 'hold' | 'bounce' {
  const method = a.methods.find((m) => recipient.keys[m] === true);
  if (method) return method;
  return a.require ? a.otherwise : 'plain';
}
