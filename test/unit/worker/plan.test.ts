/**
 * The message plan (worker/plan.ts) is a pure function of the facts: these cases pin what the
 * worker runs and `policy explain` prints — grouping, fail-closed stops, signing choices.
 */
import { describe, expect, it } from 'vitest';
import type { Action, PartyFacts, RecipientPlan } from '../../../src/policy/index.js';
import { describePlan, planMessage, type PlanFacts } from '../../../src/worker/plan.js';

const party = (address: string, keys: Partial<PartyFacts['keys']> = {}, internal = false): PartyFacts => ({ address, internal, groups: [], attributes: {}, keys: { smime: false, pgp: false, ...keys } });
const encrypt = (require = true, otherwise: 'hold' | 'bounce' = 'bounce'): Action => ({ kind: 'encrypt', methods: ['smime', 'pgp'], require, otherwise });
const plan = (recipient: string, actions: Action[], rules = ['r']): RecipientPlan => ({ recipient, direction: 'outbound', actions, rules });

function facts(over: Partial<PlanFacts> & Pick<PlanFacts, 'recipients' | 'policy'>): PlanFacts {
  return {
    message: { size: 10, headers: new Map(), subject: '', attachments: [], priority: 'normal', sensitivity: 'normal', encrypted: null, signed: null },
    sender: party('ceo@example.com', { smime: true }, true),
    commands: [],
    clientTrusted: true,
    body: { inside: null, sealed: false, pgpFiles: false },
    keysLoaded: true,
    autocrypt: false,
    ownFields: [],
    cleanedSubject: null,
    ...over,
  };
}

describe('message plan', () => {
  it('recipients with the same treatment share one delivery; others get their own, keyed by the treatment', () => {
    const rs = [party('a@p.example', { smime: true }), party('b@p.example', { smime: true }), party('c@g.example', { pgp: true })];
    const p = planMessage(facts({ recipients: rs, policy: rs.map((r) => plan(r.address, [{ kind: 'sign', method: 'auto' }, encrypt()])) }));
    expect(p.deliveries.map((d) => [d.recipients, d.treatment.sign, d.treatment.encrypt])).toEqual([
      [['a@p.example', 'b@p.example'], 'smime', 'smime'],
      [['c@g.example'], 'smime', 'pgp'],
    ]);
    expect(p.deliveries[0]!.key).not.toBe(p.deliveries[1]!.key);
    // Deterministic: the same facts, the same keys (the outputs' names derive from them).
    expect(planMessage(facts({ recipients: rs, policy: rs.map((r) => plan(r.address, [{ kind: 'sign', method: 'auto' }, encrypt()])) })).deliveries.map((d) => d.key)).toEqual(p.deliveries.map((d) => d.key));
  });

  it('fails closed: required encryption without a key stops the recipient with the reason, never "in clear"', () => {
    const rs = [party('x@plain.example'), party('y@plain.example')];
    const p = planMessage(facts({ recipients: rs, policy: [plan(rs[0]!.address, [encrypt(true, 'bounce')]), plan(rs[1]!.address, [encrypt(true, 'hold')])] }));
    expect(p.deliveries).toEqual([]);
    expect(p.stopped).toEqual([
      { kind: 'reject', reason: 'encryption required, but there is no S/MIME certificate or OpenPGP key for x@plain.example', outcome: 'bounced_encryption', recipients: ['x@plain.example'] },
      { kind: 'hold', reason: 'encryption required, but there is no S/MIME certificate or OpenPGP key for y@plain.example', outcome: 'held_encryption', recipients: ['y@plain.example'] },
    ]);
    expect(describePlan(p)).toEqual(['bounce <x@plain.example>: encryption required, but there is no S/MIME certificate or OpenPGP key for x@plain.example', 'hold <y@plain.example>: encryption required, but there is no S/MIME certificate or OpenPGP key for y@plain.example']);
  });

  it("names each stop by the outcome catalogue: a rule's hold, bounce and delete are the policy's, not encryption's", () => {
    const rs = [party('h@p.example'), party('b@p.example'), party('d@p.example')];
    const p = planMessage(
      facts({
        recipients: rs,
        policy: [plan(rs[0]!.address, [{ kind: 'hold', reason: 'review' }]), plan(rs[1]!.address, [{ kind: 'bounce', reason: 'no' }]), plan(rs[2]!.address, [{ kind: 'delete', reason: 'spam' }])],
      }),
    );
    expect(p.stopped.map((s) => [s.recipients[0], s.kind, s.outcome])).toEqual([
      ['h@p.example', 'hold', 'held_policy'],
      ['b@p.example', 'reject', 'bounced_policy'],
      ['d@p.example', 'delete', 'dropped_policy'],
    ]);
  });

  it('a worker without its keys holds what must be encrypted, and passes what may go in clear unchanged', () => {
    const rs = [party('a@p.example', { smime: true }), party('b@p.example', { smime: true })];
    const p = planMessage(facts({ keysLoaded: false, recipients: rs, policy: [plan(rs[0]!.address, [encrypt(true, 'hold')], ['strict']), plan(rs[1]!.address, [encrypt(false)])] }));
    expect(p.stopped).toEqual([{ kind: 'hold', reason: 'encryption required for a@p.example, but the keys are not loaded (rule "strict")', outcome: 'held_encryption', recipients: ['a@p.example'] }]);
    expect(p.deliveries).toEqual([expect.objectContaining({ recipients: ['b@p.example'], treatment: { open: null, sign: null, encrypt: null, sendKeys: null } })]);
  });

  it("the sender's client encrypted the whole body already: no key needed, it passes as it is", () => {
    const rs = [party('x@plain.example')];
    const p = planMessage(facts({ body: { inside: 'smime', sealed: true, pgpFiles: false }, recipients: rs, policy: [plan(rs[0]!.address, [encrypt(true, 'bounce')])] }));
    expect(p.stopped).toEqual([]);
    expect(p.deliveries).toHaveLength(1);
  });

  it('auto signs inside OpenPGP encryption when the sender has an OpenPGP key; generate_keys counts the certificate to come', () => {
    const rs = [party('c@g.example', { pgp: true })];
    const both = planMessage(facts({ sender: party('ceo@example.com', { smime: true, pgp: true }, true), recipients: rs, policy: [plan(rs[0]!.address, [{ kind: 'sign', method: 'auto' }, encrypt()])] }));
    expect(both.deliveries[0]!.treatment).toMatchObject({ sign: 'pgp', encrypt: 'pgp' });
    const fresh = planMessage(facts({ sender: party('new@example.com', {}, true), recipients: rs, policy: [plan(rs[0]!.address, [{ kind: 'generate_keys', smime: true, pgp: false }, { kind: 'sign', method: 'smime' }])] }));
    expect(fresh.generate).toEqual({ smime: true, pgp: false });
    expect(fresh.deliveries[0]!.treatment.sign).toBe('smime');
    // An outsider's claim to be an internal sender: no keys generated for it.
    const outside = planMessage(facts({ sender: party('new@else.example'), recipients: rs, policy: [plan(rs[0]!.address, [{ kind: 'generate_keys', smime: true, pgp: true }])] }));
    expect(outside.generate).toBeNull();
  });

  it('a body past a structure limit: held for the recipients whose plan opens it, passed as it came to the others', () => {
    const rs = [party('in@example.com', {}, true), party('out@p.example')];
    const p = planMessage(facts({ body: { inside: null, sealed: false, pgpFiles: false, limit: 'MIME parts nested deeper than 50 levels' }, recipients: rs, policy: [plan(rs[0]!.address, [{ kind: 'decrypt' }, { kind: 'verify' }]), plan(rs[1]!.address, [])] }));
    expect(p.stopped).toEqual([{ kind: 'hold', reason: 'MIME parts nested deeper than 50 levels', outcome: 'held_limit', recipients: ['in@example.com'] }]);
    expect(p.deliveries.map((d) => d.recipients)).toEqual([['out@p.example']]);
  });

  it('copies, reports and alerts are planned once per address, with the rules that asked', () => {
    const rs = [party('a@p.example'), party('b@p.example')];
    const p = planMessage(facts({ recipients: rs, policy: rs.map((r, i) => plan(r.address, [{ kind: 'copy', to: ['arch@example.com'] }, { kind: 'notify_sender' }, { kind: 'alert', to: ['sec@example.com'] }], [`rule${i}`])) }));
    expect(p.copies).toEqual(['arch@example.com']);
    expect(p.notifySender).toEqual(['a@p.example', 'b@p.example']);
    expect(p.alerts).toEqual([{ to: ['sec@example.com'], rules: ['rule0', 'rule1'], recipients: ['a@p.example', 'b@p.example'] }]);
  });

  it('PDF mail: one delivery per recipient (a password each), key holders keep their method, nothing signed into a PDF', () => {
    const methods: Action = { kind: 'encrypt', methods: ['smime', 'pgp', 'pdf'], require: true, otherwise: 'hold', pdf: { cipher: 'aes-128' } };
    const rs = [party('a@p.example', { smime: true, pdf: true }), party('x@plain.example', { pdf: true }), party('y@plain.example', { pdf: true })];
    const p = planMessage(facts({ recipients: rs, policy: rs.map((r) => plan(r.address, [{ kind: 'sign', method: 'auto' }, methods])) }));
    expect(p.stopped).toEqual([]);
    expect(p.deliveries.map((d) => [d.recipients, d.treatment.sign, d.treatment.encrypt, d.treatment.pdfOptions ?? null])).toEqual([
      [['a@p.example'], 'smime', 'smime', null],
      [['x@plain.example'], null, 'pdf', { cipher: 'aes-128' }],
      [['y@plain.example'], null, 'pdf', { cipher: 'aes-128' }],
    ]);
    expect(new Set(p.deliveries.map((d) => d.key)).size).toBe(3);
    expect(describePlan(p)).toContain('deliver to <x@plain.example>: encrypt with PDF mail (aes-128)');
    // Header protection is S/MIME's and OpenPGP's: a PDF copy is not given the rule's mode.
    const hp = planMessage(facts({ recipients: [rs[1]!], policy: [plan('x@plain.example', [{ ...methods, header_protection: 'obscure' } as Action])] }));
    expect(hp.deliveries[0]!.treatment.headerProtection).toBeUndefined();
    // Keys not loaded (the worker could not open the KEK): no PDF either — held, never in clear.
    const noKeys = planMessage(facts({ keysLoaded: false, recipients: [rs[1]!], policy: [plan('x@plain.example', [methods], ['partners'])] }));
    expect(noKeys.stopped).toEqual([{ kind: 'hold', reason: 'encryption required for x@plain.example, but the keys are not loaded (rule "partners")', outcome: 'held_encryption', recipients: ['x@plain.example'] }]);
  });
});
