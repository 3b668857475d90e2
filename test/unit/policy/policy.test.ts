/**
 * The policy language: every condition and action compiled and evaluated per recipient, the
 * problems an admin can make (with file, line and rule name), and the shipped config/policy.yaml.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigProblem } from '../../../src/core/index.js';
import { compilePolicy, DEFAULT_RULE, encryptionOutcome, evaluate, type Action, type CompiledPolicy, type MessageFacts, type PartyFacts, type PolicyInput } from '../../../src/policy/index.js';

const FILE = '/etc/postern/policy.yaml';

function compile(yaml: string): CompiledPolicy {
  const r = compilePolicy(yaml, FILE);
  if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
  return r.policy;
}

function problems(yaml: string): string[] {
  const r = compilePolicy(yaml, FILE);
  if (r.ok) throw new Error('expected problems, the policy compiled');
  return r.problems.map(formatConfigProblem);
}

const message = (over: Partial<MessageFacts> = {}): MessageFacts => ({
  size: 1000,
  headers: new Map(),
  subject: 'hello',
  attachments: [],
  priority: 'normal',
  sensitivity: 'normal',
  encrypted: null,
  signed: null,
  ...over,
});

const party = (address: string, over: Partial<PartyFacts> = {}): PartyFacts => ({
  address,
  internal: address.endsWith('@example.com'),
  groups: [],
  attributes: {},
  keys: { smime: false, pgp: false },
  ...over,
});

function decide(policy: CompiledPolicy, over: Partial<PolicyInput> & { to?: PartyFacts[] } = {}) {
  const { to, ...rest } = over;
  return evaluate(policy, {
    message: message(),
    sender: party('alice@example.com', { keys: { smime: true, pgp: false } }),
    recipients: to ?? [party('bob@partner.net')],
    clientTrusted: true,
    commands: [],
    ...rest,
  });
}

const kinds = (plans: ReturnType<typeof decide>) => plans.map((p) => p.actions.map((a) => a.kind));

describe('policy: conditions', () => {
  it('decides per recipient: direction, address globs, domains and keys', () => {
    const p = compile(`
rules:
  - name: pgp partner
    when: { recipient: { domain: "*.pgp.example", has_key: pgp } }
    do: [{ encrypt: { methods: [pgp], require: true } }]
  - name: smime partner
    when: { recipient: { address: "/^[a-z]+@smime\\\\.example$/", has_key: smime } }
    do: [{ encrypt: { methods: [smime] } }]
  - name: internal
    when: { direction: internal }
    do: [none]
`);
    const plans = decide(p, {
      to: [party('x@mail.pgp.example', { keys: { smime: false, pgp: true } }), party('y@smime.example', { keys: { smime: true, pgp: false } }), party('z@example.com'), party('w@plain.example')],
    });
    expect(plans.map((x) => [x.recipient, x.direction, x.rules])).toEqual([
      ['x@mail.pgp.example', 'outbound', ['pgp partner']],
      ['y@smime.example', 'outbound', ['smime partner']],
      ['z@example.com', 'internal', ['internal']],
      ['w@plain.example', 'outbound', [DEFAULT_RULE]],
    ]);
    expect(plans[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['pgp'], require: true, otherwise: 'hold' }]);
    expect(kinds(plans)[3]).toEqual(['sign', 'encrypt']);
  });

  it('combines all, any and not; tests size, attachments, priority, sensitivity, crypto state, headers and the client', () => {
    const p = compile(`
rules:
  - name: hit
    when:
      all:
        - size: "> 1KB"
        - attachments: { count: ">= 2", name: "*.pdf", type: application/pdf }
        - any: [{ priority: high }, { sensitivity: confidential }]
        - not: { encrypted: true }
        - signed: smime
        - header: { X-Class: "/^secret$/", X-Present: true }
        - client: trusted
    do: [{ hold: "matched everything" }]
`);
    const good = message({
      size: 5000,
      attachments: [
        { name: 'a.pdf', type: 'application/pdf' },
        { name: 'B.PDF', type: 'application/pdf' },
        { name: 'c.txt', type: 'text/plain' },
      ],
      sensitivity: 'confidential',
      signed: 'smime',
      headers: new Map([
        ['x-class', ['Secret']],
        ['x-present', ['']],
      ]),
    });
    expect(decide(p, { message: good })[0]!.rules).toEqual(['hit']);
    for (const bad of [
      { size: 900 },
      { attachments: [{ name: 'a.pdf', type: 'application/pdf' }] },
      { sensitivity: 'normal' as const },
      { encrypted: 'pgp' as const },
      { signed: 'pgp' as const },
      { headers: new Map([['x-class', ['public']], ['x-present', ['']]]) },
      { headers: new Map([['x-class', ['secret']]]) },
    ]) {
      expect(decide(p, { message: { ...good, ...bad } })[0]!.rules).toEqual([DEFAULT_RULE]);
    }
    expect(decide(p, { message: good, clientTrusted: false })[0]!.rules).toEqual([DEFAULT_RULE]);
  });

  it('tests the sender and recipient: groups, attributes, internal, has_key none', () => {
    const p = compile(`
rules:
  - name: board
    when: { sender: { group: Board, attribute: { department: ["/^fin/"] } } }
    do: [{ encrypt: { require: true, otherwise: bounce } }]
  - name: keyless outsiders
    when: { recipient: { internal: false, has_key: none } }
    do: [{ add_header: { X-Postern-Note: "sent in clear" } }]
`);
    const boardMember = party('ceo@example.com', { groups: ['board'], attributes: { department: ['Finance'] } });
    expect(decide(p, { sender: boardMember })[0]!.rules).toEqual(['board']);
    expect(decide(p, { sender: { ...boardMember, attributes: { department: ['Sales'] } } })[0]!.rules).toEqual(['keyless outsiders']);
    expect(decide(p, { to: [party('bob@partner.net', { keys: { smime: true, pgp: false } })] })[0]!.rules).toEqual([DEFAULT_RULE]);
  });
});

describe('policy: actions, continue and commands', () => {
  it('accumulates the actions of continuing rules and lets a deciding rule or the default finish', () => {
    const p = compile(`
rules:
  - name: archive
    do: [{ copy: archive@example.com }]
    continue: true
  - name: tag outbound
    when: { direction: outbound }
    do: [{ add_header: { X-Out: "1" } }, { remove_header: [X-Internal, X-Spam] }]
    continue: true
  - name: drop noreply
    when: { recipient: noreply@example.com }
    do: [{ delete: no-reply mailbox }]
`);
    const [out, noreply] = decide(p, { to: [party('bob@partner.net'), party('noreply@example.com')] });
    expect(out!.rules).toEqual(['archive', 'tag outbound', DEFAULT_RULE]);
    expect(out!.actions.map((a) => a.kind)).toEqual(['copy', 'add_header', 'remove_header', 'sign', 'encrypt']);
    expect(noreply!.rules).toEqual(['archive', 'drop noreply']);
    expect(noreply!.actions).toEqual([{ kind: 'copy', to: ['archive@example.com'] }, { kind: 'delete', reason: 'no-reply mailbox' }]);
  });

  it('compiles every action with its settings', () => {
    const p = compile(`
rules:
  - name: all actions
    do:
      - none
      - { sign: { method: smime } }
      - { encrypt: { methods: [pgp, smime], require: true, otherwise: bounce } }
      - decrypt
      - verify
      - { generate_keys: { pgp: true } }
      - { add_header: { X-A: b } }
      - { remove_header: X-B }
      - { copy: [a@example.com, b@example.com] }
      - { redirect: c@example.com }
      - notify_sender
      - { alert: admin@example.com }
      - hold
      - { bounce: "no" }
      - { delete: spam }
      - { send_keys: { pgp: false } }
`);
    expect(p.rules[0]!.actions).toEqual([
      { kind: 'none' },
      { kind: 'sign', method: 'smime' },
      { kind: 'encrypt', methods: ['pgp', 'smime'], require: true, otherwise: 'bounce' },
      { kind: 'decrypt' },
      { kind: 'verify' },
      { kind: 'generate_keys', smime: true, pgp: true },
      { kind: 'add_header', name: 'X-A', value: 'b' },
      { kind: 'remove_header', names: ['X-B'] },
      { kind: 'copy', to: ['a@example.com', 'b@example.com'] },
      { kind: 'redirect', to: ['c@example.com'] },
      { kind: 'notify_sender' },
      { kind: 'alert', to: ['admin@example.com'] },
      { kind: 'hold', reason: 'held by policy' },
      { kind: 'bounce', reason: 'no' },
      { kind: 'delete', reason: 'spam' },
      { kind: 'send_keys', smime: true, pgp: false },
    ]);
  });

  it('signs only when the sender has a key for it', () => {
    const p = compile('rules:\n  - name: s\n    do: [{ sign: { method: pgp } }, sign]\n');
    expect(kinds(decide(p, { sender: party('alice@example.com', { keys: { smime: true, pgp: false } }) }))).toEqual([['sign']]);
    expect(kinds(decide(p, { sender: party('alice@example.com') }))).toEqual([['none']]);
  });

  it('honours subject commands from trusted clients only, with the tokens and actions the policy defines', () => {
    const p = compile(`
commands: { encrypt: "[secure]", send_keys: false }
command_actions:
  sign: [{ sign: { method: smime } }]
rules:
  - name: optional encryption
    do: [{ encrypt: { require: false } }]
`);
    expect([...p.commands.keys()]).not.toContain('{send_keys}');
    expect(p.commands.get('[secure]')).toBe('encrypt');
    const forced = decide(p, { commands: ['encrypt', 'sign'] })[0]!;
    // The command's encrypt replaces the rule's in place; its sign goes before the encryption.
    expect(forced.actions).toEqual([
      { kind: 'sign', method: 'smime' },
      { kind: 'encrypt', methods: ['smime', 'pgp'], require: true, otherwise: 'hold' },
    ]);
    expect(decide(p, { commands: ['plain'] })[0]!.actions).toEqual([{ kind: 'none' }]);
    expect(decide(p, { commands: ['encrypt'], clientTrusted: false })[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['smime', 'pgp'], require: false, otherwise: 'hold' }]);
    // {plain} cannot undo encryption a rule requires.
    const strict = compile('rules:\n  - name: must\n    do: [{ encrypt: { require: true } }]\n');
    expect(kinds(decide(strict, { commands: ['plain'] }))).toEqual([['encrypt']]);
  });

  it('{send_keys} attaches the keys and signs (auto), {send_keys_smime} signs with S/MIME; {send_keys_pgp} only attaches', () => {
    const p = compile('rules: []\n');
    const enc = { kind: 'encrypt', methods: ['smime', 'pgp'], require: false, otherwise: 'hold' };
    // The command's sign replaces the default rule's in place, still before the encryption.
    expect(decide(p, { commands: ['send_keys'] })[0]!.actions).toEqual([{ kind: 'sign', method: 'auto' }, enc, { kind: 'send_keys', smime: true, pgp: true }]);
    expect(decide(p, { commands: ['send_keys_smime'] })[0]!.actions).toEqual([{ kind: 'sign', method: 'smime' }, enc, { kind: 'send_keys', smime: true, pgp: false }]);
    expect(decide(p, { commands: ['send_keys_pgp'] })[0]!.actions).toEqual([{ kind: 'sign', method: 'auto' }, enc, { kind: 'send_keys', smime: false, pgp: true }]);
    // Signing still needs a key: a sender with an OpenPGP key only gets no S/MIME signature from {send_keys_smime}.
    const pgpOnly = party('alice@example.com', { keys: { smime: false, pgp: true } });
    expect(kinds(decide(p, { commands: ['send_keys_smime'], sender: pgpOnly }))).toEqual([['encrypt', 'send_keys']]);
    expect(kinds(decide(p, { commands: ['send_keys'], sender: pgpOnly }))).toEqual([['sign', 'encrypt', 'send_keys']]);
  });

  it('takes per-rule S/MIME encryption options and names every bad one', () => {
    const p = compile('rules:\n  - name: bank\n    do: [{ encrypt: { methods: [smime], smime: { cipher: aes-256-gcm, rsa_padding: oaep } } }]\n');
    expect(p.rules[0]!.actions[0]).toEqual({ kind: 'encrypt', methods: ['smime'], require: false, otherwise: 'hold', smime: { cipher: 'aes-256-gcm', rsa_padding: 'oaep' } });
    const bad = problems('rules:\n  - name: bank\n    do: [{ encrypt: { smime: { cipher: des, rsa_padding: pss, mode: x } } }]\n');
    expect(bad.join('\n')).toMatch(/rule "bank".*cipher: "des" — expected one of capable, aes-256-cbc/);
    expect(bad.join('\n')).toMatch(/rsa_padding: "pss" — expected pkcs1 or oaep/);
    expect(bad.join('\n')).toMatch(/mode/);
  });

  it('takes the OpenPGP options of decrypt', () => {
    const p = compile('rules:\n  - name: in\n    do: [{ decrypt: { pgp_attachments: true, pgp_inline_html: true } }, decrypt]\n');
    expect(p.rules[0]!.actions).toEqual([{ kind: 'decrypt', pgp_attachments: true, pgp_inline_html: true }, { kind: 'decrypt' }]);
    expect(problems('rules:\n  - name: in\n    do: [{ decrypt: { pgp_attachment: true } }]\n').join('\n')).toMatch(/pgp_attachment/);
  });

  it('takes the OpenPGP inline option of encrypt', () => {
    const p = compile('rules:\n  - name: inline\n    do: [{ encrypt: { methods: [pgp], pgp: { inline: true } } }]\n');
    expect(p.rules[0]!.actions[0]).toMatchObject({ kind: 'encrypt', methods: ['pgp'], pgp: { inline: true } });
    expect(problems('rules:\n  - name: inline\n    do: [{ encrypt: { pgp: { inline: yes please } } }]\n').join('\n')).toMatch(/pgp\.inline: expected true or false/);
  });

  it('takes PDF mail as the last method of encrypt, with its rule options, and the {pdf} command', () => {
    const p = compile('rules:\n  - name: partners\n    do: [{ encrypt: { methods: [smime, pgp, pdf], require: true, pdf: { cipher: aes-128, reply: false } } }]\n');
    const enc = p.rules[0]!.actions[0]!;
    expect(enc).toEqual({ kind: 'encrypt', methods: ['smime', 'pgp', 'pdf'], require: true, otherwise: 'hold', pdf: { cipher: 'aes-128', reply: false } });
    // PDF for whoever has no key; a key holder gets the key's method.
    const keyless = party('bob@partner.net', { keys: { smime: false, pgp: false, pdf: true } });
    const holder = party('carol@partner.net', { keys: { smime: false, pgp: true, pdf: true } });
    expect(encryptionOutcome(enc as Extract<Action, { kind: 'encrypt' }>, keyless)).toBe('pdf');
    expect(encryptionOutcome(enc as Extract<Action, { kind: 'encrypt' }>, holder)).toBe('pgp');
    // Without methods: keys only — PDF changes what the recipient gets, so only when named.
    expect(compile('rules:\n  - name: r\n    do: [encrypt]\n').rules[0]!.actions[0]).toMatchObject({ methods: ['smime', 'pgp'] });
    // pdf can always be made: a method after it would never be used.
    expect(problems('rules:\n  - name: r\n    do: [{ encrypt: { methods: [pdf, smime] } }]\n').join('\n')).toMatch(/methods: pdf can always be made, so smime after it is never used: put pdf last/);
    const bad = problems('rules:\n  - name: r\n    do: [{ encrypt: { methods: [pdf], pdf: { cipher: rc4, reply: maybe, logo: x } } }]\n').join('\n');
    expect(bad).toMatch(/pdf\.cipher: "rc4" — expected aes-256 or aes-128/);
    expect(bad).toMatch(/pdf\.reply: expected true or false/);
    expect(bad).toMatch(/logo/);
    // {pdf} from a trusted client: PDF whatever keys the recipient has, held if it cannot be made.
    const d = compile('rules:\n  - name: r\n    do: [{ encrypt: { require: false } }]\n');
    expect(d.commands.get('{pdf}')).toBe('pdf');
    expect(decide(d, { commands: ['pdf'], to: [holder] })[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['pdf'], require: true, otherwise: 'hold' }]);
    expect(decide(d, { commands: ['pdf'], to: [holder], clientTrusted: false })[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['smime', 'pgp'], require: false, otherwise: 'hold' }]);
  });

  it('takes webmail like PDF mail: last in the list, alone or after keys, and the {webmail} command', () => {
    const p = compile('rules:\n  - name: partners\n    do: [{ encrypt: { methods: [smime, pgp, webmail], require: true } }]\n');
    const enc = p.rules[0]!.actions[0]! as Extract<Action, { kind: 'encrypt' }>;
    expect(enc).toEqual({ kind: 'encrypt', methods: ['smime', 'pgp', 'webmail'], require: true, otherwise: 'hold' });
    const keyless = party('bob@partner.net', { keys: { smime: false, pgp: false, pdf: true, webmail: true } });
    const holder = party('carol@partner.net', { keys: { smime: true, pgp: false, pdf: true, webmail: true } });
    expect(encryptionOutcome(enc, keyless)).toBe('webmail');
    expect(encryptionOutcome(enc, holder)).toBe('smime');
    // Both PDF and webmail can always be made: nothing after either is ever used, whichever comes first.
    expect(problems('rules:\n  - name: r\n    do: [{ encrypt: { methods: [webmail, pgp] } }]\n')).toEqual([
      expect.stringMatching(/^\/etc\/postern\/policy\.yaml:3:\d+: rule "r": rules\.0\.do\.0\.encrypt\.methods: webmail can always be made, so pgp after it is never used: put webmail last$/),
    ]);
    expect(problems('rules:\n  - name: r\n    do: [{ encrypt: { methods: [smime, pdf, webmail] } }]\n').join('\n')).toMatch(/methods: pdf can always be made, so webmail after it is never used: put pdf last/);
    expect(problems('rules:\n  - name: r\n    do: [{ encrypt: { methods: [webmail, pdf] } }]\n').join('\n')).toMatch(/methods: webmail can always be made, so pdf after it is never used: put webmail last/);
    // {webmail}: honoured from trusted clients only, whatever keys the recipient has.
    const d = compile('rules:\n  - name: r\n    do: [{ encrypt: { require: false } }]\n');
    expect(d.commands.get('{webmail}')).toBe('webmail');
    expect(decide(d, { commands: ['webmail'], to: [holder] })[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['webmail'], require: true, otherwise: 'hold' }]);
    expect(decide(d, { commands: ['webmail'], to: [holder], clientTrusted: false })[0]!.actions).toEqual([{ kind: 'encrypt', methods: ['smime', 'pgp'], require: false, otherwise: 'hold' }]);
    // The token can be renamed or switched off like the others.
    expect(compile('commands: { webmail: "[portal]" }\nrules: []\n').commands.get('[portal]')).toBe('webmail');
    expect([...compile('commands: { webmail: false }\nrules: []\n').commands.values()]).not.toContain('webmail');
  });

  it('uses the default policy when no rules are given: inbound decrypt and verify, outbound sign and encrypt', () => {
    const p = compile('rules: []\n');
    const plans = decide(p, { sender: party('x@partner.net'), to: [party('alice@example.com')] });
    expect(plans[0]).toMatchObject({ direction: 'inbound', rules: [DEFAULT_RULE], actions: [{ kind: 'decrypt' }, { kind: 'verify' }] });
  });
});

describe('policy: problems, with file, line and rule name', () => {
  it('names unknown conditions and actions, bad patterns and values', () => {
    const p = problems(`rules:
  - name: typo
    when: { sendr: x@example.com, size: "huge" }
    do: [encript, { encrypt: { methods: [smime, pdf, rot13] } }]
  - name: regex
    when: { recipient: "/([a-z/" }
    do: [{ copy: not-an-address }]
`);
    expect(p).toEqual([
      expect.stringMatching(/^\/etc\/postern\/policy\.yaml:3:13: rule "typo": rules\.0\.when\.sendr: unknown condition \(expected one of: all, any, not, direction, sender/),
      expect.stringMatching(/^\/etc\/postern\/policy\.yaml:3:41: rule "typo": rules\.0\.when\.size: "huge" — expected a comparison like "> 10MB"/),
      expect.stringMatching(/:4:10: rule "typo": rules\.0\.do\.0: unknown action "encript" \(expected one of: none, sign, encrypt/),
      expect.stringMatching(/:4:41: rule "typo": rules\.0\.do\.1\.encrypt\.methods: "rot13" — expected smime, pgp, pdf/),
      expect.stringMatching(/:6:24: rule "regex": rules\.1\.when\.recipient: \/\(\[a-z\/ — not a valid regular expression/),
      expect.stringMatching(/:7:18: rule "regex": rules\.1\.do\.0\.copy: "not-an-address" — expected an e-mail address/),
    ]);
  });

  it('wants names, unique ones, and a do list; finds rules after a catch-all', () => {
    const p = problems(`rules:
  - when: { direction: inbound }
    do: [decrypt]
  - name: catch all
    do: [none]
  - name: never reached
    when: { direction: outbound }
    do: [sign]
  - name: catch all
`);
    expect(p).toEqual([
      expect.stringMatching(/:2:5: rule 1: rules\.0\.name: every rule needs a name/),
      expect.stringMatching(/:9:11: rule "catch all": rules\.3\.name: another rule \(line 4\) has the same name/),
      expect.stringMatching(/:9:5: rule "catch all": rules\.3: a rule needs "do:"/),
      expect.stringMatching(/:6:5: rules\.2: rule "never reached" can never match: rule "catch all" \(line 4\) above it matches every message and does not continue/),
      expect.stringMatching(/:9:5: rules\.3: rule "catch all" can never match/),
    ]);
  });

  it('refuses unknown top-level keys and bad command tokens', () => {
    expect(problems('rulez: []\ncommands: { encrypt: "has space" }\n')).toEqual([
      expect.stringMatching(/:1:1: rulez: unknown key \(expected one of: rules, groups, commands, command_actions\)/),
      expect.stringMatching(/:2:22: commands\.encrypt: "has space" — expected a token without spaces/),
    ]);
  });

  it('compiles the shipped config/policy.yaml, which spells out the default policy', async () => {
    const file = resolve(import.meta.dirname, '../../../config/policy.yaml');
    const r = compilePolicy(await readFile(file, 'utf8'), file);
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    const plans = evaluate(r.policy, {
      message: message(),
      sender: party('alice@example.com', { keys: { smime: true, pgp: false } }),
      recipients: [party('bob@partner.net'), party('carol@example.com')],
      clientTrusted: true,
      commands: [],
    });
    expect(plans.map((x) => [x.rules, x.actions.map((a) => a.kind)])).toEqual([
      [['outbound mail is signed and encrypted where possible'], ['sign', 'encrypt']],
      [[DEFAULT_RULE], ['none']],
    ]);
  });
});
