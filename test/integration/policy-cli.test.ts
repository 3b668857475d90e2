/**
 * `postern policy explain` and `postern check` through the real binary: per-recipient plans from
 * the facts in the keystore and the groups file, subject commands, and problems with line numbers.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/config.js';
import { runPostern } from '../helpers/gateway.js';

describe('postern policy explain / check', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  const postern = (...args: string[]) => runPostern(config, args);

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-policy-cli-'));
    config = join(dir, 'postern.yaml');
    await writeFile(config, 'hostname: gw.test.example\ndata_dir: .\ninternal_domains: [example.com]\npolicy: policy.yaml\n');
    await writeFile(join(dir, 'groups.yaml'), 'groups:\n  Board: [ceo@example.com]\n');
    await writeFile(
      join(dir, 'policy.yaml'),
      `groups: groups.yaml
rules:
  - name: archive
    do: [{ copy: archive@example.com }]
    continue: true
  - name: board encrypts
    when: { direction: outbound, sender: { group: Board } }
    do: [sign, { encrypt: { require: true, otherwise: bounce } }]
  - name: inbound
    when: { direction: inbound }
    do: [decrypt, verify]
`,
    );
    for (const args of [['ca', 'init'], ['ca', 'issue', 'ceo@example.com'], ['ca', 'issue', 'partner@partner.example'], ['pgp', 'generate', 'friend@pgp.example']]) {
      const r = await postern(...args);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 60_000);
  afterAll(() => cleanup());

  it('explains per recipient: the rules, the facts and the plan, with the method each recipient gets', async () => {
    const r = await postern('policy', 'explain', '--from', 'ceo@example.com', '--to', 'partner@partner.example', '--to', 'friend@pgp.example', '--to', 'nobody@plain.example', '--subject', 'Minutes {SIGN}');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('from <ceo@example.com> (internal; keys: S/MIME; groups: Board); client trusted');
    expect(r.stdout).toContain('commands: sign');
    const blocks = r.stdout.split('\n\n').slice(1);
    expect(blocks[0]).toMatch(/^<partner@partner\.example>  outbound  \(external; keys: S\/MIME\)\n  rules: "archive" \(line 3\) → "board encrypts" \(line 6\)\n  1\. copy to archive@example\.com\n  2\. sign\n  3\. encrypt .* → S\/MIME$/);
    expect(blocks[1]).toMatch(/→ OpenPGP$/);
    expect(blocks[2]).toMatch(/→ bounced: no key for this recipient\n?$/);
    // The worker's own plan of the message, from the same facts: one line per delivery group.
    expect(blocks[3]).toContain('what the worker does with this message:');
    expect(blocks[3]).toContain('deliver to <partner@partner.example>: sign with S/MIME, then encrypt with S/MIME');
    expect(blocks[3]).toContain('deliver to <friend@pgp.example>: sign with S/MIME, then encrypt with OpenPGP');
    expect(blocks[3]).toMatch(/bounce <nobody@plain\.example>: encryption required, but there is no S\/MIME certificate or OpenPGP key for nobody@plain\.example/);
    expect(blocks[3]).toContain('copy the message as it arrived to <archive@example.com>');
  });

  it('uses the default policy when no rule decides, and a message file as the facts', async () => {
    const eml = join(dir, 'in.eml');
    await writeFile(eml, 'From: x@partner.example\r\nSubject: report\r\nImportance: high\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=r.pdf\r\n\r\nJVBERi0=\r\n--b--\r\n');
    const r = await postern('policy', 'explain', '--from', 'bob@example.com', '--to', 'nobody@plain.example', eml, '--json');
    const doc = JSON.parse(r.stdout);
    expect(doc.plans[0]).toMatchObject({ recipient: 'nobody@plain.example', direction: 'outbound', rules: ['archive', '(default policy)'] });
    expect(doc.plans[0].actions.map((a: { kind: string }) => a.kind)).toEqual(['copy', 'encrypt']);
    const text = await postern('policy', 'explain', '--from', 'x@partner.example', '--to', 'ceo@example.com', eml);
    expect(text.stdout).toContain('1 attachment, priority high');
    expect(text.stdout).toMatch(/rules: "archive" \(line 3\) → "inbound" \(line 9\)/);
  });

  it('check names the file, line and rule of each policy problem', async () => {
    await writeFile(join(dir, 'policy.yaml'), 'rules:\n  - name: broken\n    when: { recipient: { has_key: maybe } }\n    do: [{ encrypt: { otherwise: shrug } }]\n');
    const r = await postern('check');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/policy\.yaml:3:\d+: rule "broken": rules\.0\.when\.recipient\.has_key: "maybe" — expected smime, pgp, any, none/);
    expect(r.stderr).toMatch(/policy\.yaml:4:\d+: rule "broken": rules\.0\.do\.0\.encrypt\.otherwise: "shrug" — expected hold or bounce/);
    expect(r.stderr).toMatch(/2 problems/);
  });

  it('activate makes a file the policy (checked, kept, audited) and versions lists what was kept', async () => {
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, 'rules: []\n');
    const draft = join(dir, 'draft.yaml');
    await writeFile(draft, 'rules:\n  - name: typo\n    when: { direction: sideways }\n    do: [sign]\n');
    const bad = await postern('policy', 'activate', draft);
    expect(bad.code).toBe(1);
    // Named as given, with the line of the typo; the policy is untouched.
    expect(bad.stderr).toMatch(/draft\.yaml:3:\d+: rule "typo": rules\.0\.when\.direction: "sideways"/);
    expect(await readFile(policy, 'utf8')).toBe('rules: []\n');
    const good = 'rules:\n  - name: sign all\n    do: [sign]\n';
    await writeFile(draft, good);
    const stale = await postern('policy', 'activate', draft, '--hash', createHash('sha256').update('rules: [x]\n').digest('hex'));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/changed since the version --hash names/);
    const r = await postern('policy', 'activate', draft, '--hash', createHash('sha256').update('rules: []\n').digest('hex'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^activated .*draft\.yaml as .*policy\.yaml \(version \d{8}T\d{9}Z-[0-9a-f]{12}, 1 rule\)/);
    expect(await readFile(policy, 'utf8')).toBe(good);
    const versions = await postern('policy', 'versions', '--json');
    expect(JSON.parse(versions.stdout).map((v: { by: string | null }) => v.by)).toEqual([expect.stringMatching(/^cli:/), null]);
    const trail = await postern('audit', 'export', '--object', 'policy');
    expect(trail.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ action: 'policy.activate', via: 'cli', before: 'rules: []\n', after: good })]);
  });
});
