/**
 * Issue 14: a rule is met by every spelling of the address it names (no plaintext by spelling),
 * and the policy never signs for a client outside trusted_networks, whatever the rules say.
 */
import { describe, expect, it } from 'vitest';
import { formatConfigProblem } from '../../../src/core/index.js';
import { compilePolicy, describePlan, evaluate, type CompiledPolicy, type PartyFacts } from '../../../src/policy/index.js';

function compile(yaml: string): CompiledPolicy {
  const r = compilePolicy(yaml, '/etc/postern/policy.yaml');
  if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
  return r.policy;
}

const party = (address: string, internal = false, keys = { smime: false, pgp: false }): PartyFacts => ({ address, internal, groups: [], attributes: {}, keys });
const message = { size: 1, headers: new Map(), subject: '', attachments: [], priority: 'normal' as const, sensitivity: 'normal' as const, encrypted: null, signed: null };

function plan(policy: CompiledPolicy, to: string, clientTrusted = true) {
  return evaluate(policy, { message, sender: party('alice@example.com', true, { smime: true, pgp: true }), recipients: [party(to)], clientTrusted, commands: [] })[0]!;
}

const REQUIRED = `
rules:
  - name: partner needs encryption
    when: { recipient: { domain: partner.example } }
    do: [{ encrypt: { methods: [smime], require: true } }]
  - name: carol needs encryption
    when: { recipient: carol@other.example }
    do: [{ encrypt: { methods: [smime], require: true } }]
  - name: books need encryption (rule in Unicode)
    when: { recipient: { domain: "bücher.example" } }
    do: [{ encrypt: { methods: [smime], require: true } }]
  - name: shops need encryption (rule in A-labels, with a glob)
    when: { recipient: "*@*.xn--lden-loa.example" }
    do: [{ encrypt: { methods: [smime], require: true } }]
`;

describe('policy: every spelling meets the rule that names the address', () => {
  const p = compile(REQUIRED);
  // The worker sees canonical addresses from smtpd; old spool entries or other callers may not
  // have them, so both the canonical and the raw spellings are tried.
  const cases: [string, string][] = [
    ['bob@partner.example', 'partner needs encryption'],
    ['BOB@PARTNER.EXAMPLE', 'partner needs encryption'],
    ['bob@ｐａｒｔｎｅｒ.example', 'partner needs encryption'],
    ['bob@partner.example.', 'partner needs encryption'],
    ['carol@other.example', 'carol needs encryption'],
    ['"carol"@other.example', 'carol needs encryption'],
    ['Carol@Other.Example', 'carol needs encryption'],
    ['ｃａｒｏｌ@other.example', 'carol needs encryption'],
    ['x@bücher.example', 'books need encryption (rule in Unicode)'],
    ['x@xn--bcher-kva.example', 'books need encryption (rule in Unicode)'],
    ['x@BÜCHER.example', 'books need encryption (rule in Unicode)'],
    ['x@shop.läden.example', 'shops need encryption (rule in A-labels, with a glob)'],
    ['x@shop.xn--lden-loa.example', 'shops need encryption (rule in A-labels, with a glob)'],
  ];
  it.each(cases)('%s → %s, never in clear', (to, rule) => {
    const r = plan(p, to);
    expect(r.rules).toEqual([rule]);
    expect(r.actions.find((a) => a.kind === 'encrypt')).toMatchObject({ require: true });
  });

  it('does not match what is really another address', () => {
    expect(plan(p, 'bob@partner.example.org').rules).toEqual(['(default policy)']);
    expect(plan(p, 'carol2@other.example').rules).toEqual(['(default policy)']);
    expect(plan(p, 'x@bucher.example').rules).toEqual(['(default policy)']);
  });

  it('names an invalid address or domain pattern with its line', () => {
    const r = compilePolicy('rules:\n  - name: bad\n    when: { recipient: { domain: "part\\u00adner.example" } }\n    do: [none]\n', '/p.yaml');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map(formatConfigProblem).join('\n')).toMatch(/p\.yaml:3:.*not a valid domain pattern/);
  });

  it('canonicalises copy/redirect/alert targets', () => {
    const q = compile('rules:\n  - name: archive\n    do: [{ copy: "Archive@ＥＸＡＭＰＬＥ.com" }]\n');
    expect(q.rules[0]!.actions[0]).toEqual({ kind: 'copy', to: ['Archive@example.com'] });
  });
});

describe('policy: signing only for trusted clients', () => {
  const p = compile(`
rules:
  - name: always sign
    do: [{ sign: { method: smime } }, generate_keys]
`);
  it('signs for a trusted client', () => {
    const r = plan(p, 'victim@partner.example', true);
    expect(r.actions.map((a) => a.kind)).toEqual(['sign', 'generate_keys']);
    expect(r.skipped).toBeUndefined();
  });

  it('skips sign and generate_keys for an untrusted client, with the reason in the plan', () => {
    const r = plan(p, 'victim@partner.example', false);
    expect(r.actions.map((a) => a.kind)).toEqual(['none']);
    expect(r.skipped?.map((s) => s.action)).toEqual(['sign', 'generate_keys']);
    expect(describePlan(r)).toMatch(/sign skipped: the client is not in trusted_networks/);
  });

  it('skips the default policy\'s signature for an untrusted client too', () => {
    const d = compile('rules: []\n');
    const r = plan(d, 'victim@partner.example', false);
    expect(r.direction).toBe('outbound');
    expect(r.actions.some((a) => a.kind === 'sign')).toBe(false);
    expect(r.skipped?.[0]?.action).toBe('sign');
  });
});
