/**
 * The header protection settings (RFC 9788): postern.yaml's `header_protection` (its default, the
 * short and the long form, a bad value named with file, line and key) and an encrypt rule's own
 * `header_protection` in policy.yaml (compiled, described, refused with its position).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkConfig } from '../../../src/config/index.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { compilePolicy, describePlan, evaluate } from '../../../src/policy/index.js';
import { tempDir, yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();
const check = yc.check;

describe('postern.yaml header_protection', () => {
  it('defaults to obscure without a legacy display (RFC 9788: "when configured"); takes the short form and the long one', async () => {
    const none = await check('hostname: gw.example.com\n');
    expect(none.ok && none.config.header_protection).toEqual({ mode: 'obscure', legacy_display: false });
    const short = await check('hostname: gw.example.com\nheader_protection: copy\n');
    expect(short.ok && short.config.header_protection).toEqual({ mode: 'copy', legacy_display: false });
    const long = await check('hostname: gw.example.com\nheader_protection:\n  mode: off\n  legacy_display: false\n');
    expect(long.ok && long.config.header_protection).toEqual({ mode: 'off', legacy_display: false });
  });

  it('a bad value, an unknown key and a wrong type, each with file, line and key', async () => {
    const r = await check('hostname: gw.example.com\nheader_protection: hide\n');
    expect(r.ok).toBe(false);
    const text = r.ok ? '' : r.problems.map(formatConfigProblem).join('\n');
    expect(text).toContain(`${join(yc.dir(), 'postern.yaml')}:2:20: header_protection.mode: "hide" — expected one of: obscure, copy, off`);
    const r2 = await check('hostname: gw.example.com\nheader_protection:\n  mode: copy\n  legacy: true\n  legacy_display: maybe\n');
    const text2 = r2.ok ? '' : r2.problems.map(formatConfigProblem).join('\n');
    expect(text2).toMatch(/postern\.yaml:4:3: header_protection\.legacy: unknown key/);
    expect(text2).toMatch(/postern\.yaml:5:19: header_protection\.legacy_display: "maybe" — expected true or false/);
  });
});

describe('policy.yaml encrypt: { header_protection }', () => {
  const FILE = '/etc/postern/policy.yaml';
  it('is taken per rule and shown by policy explain', () => {
    const r = compilePolicy('rules:\n  - name: partners read only plain headers\n    do: [{ encrypt: { methods: [smime], header_protection: copy } }]\n', FILE);
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.policy.rules[0]!.actions[0]).toEqual({ kind: 'encrypt', methods: ['smime'], require: false, otherwise: 'hold', header_protection: 'copy' });
    const party = (address: string) => ({ address, internal: address.endsWith('@example.com'), groups: [], attributes: {}, keys: { smime: true, pgp: false } });
    const [plan] = evaluate(r.policy, {
      message: { size: 1, headers: new Map(), subject: 's', attachments: [], priority: 'normal', sensitivity: 'normal', encrypted: null, signed: null },
      sender: party('alice@example.com'),
      recipients: [party('bob@partner.example')],
      clientTrusted: true,
      commands: [],
    });
    expect(describePlan(plan!)).toContain('header protection copy');
  });

  it('a bad value is refused with its line and the rule', () => {
    const r = compilePolicy('rules:\n  - name: bank\n    do: [{ encrypt: { header_protection: secret } }]\n', FILE);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.problems.map(formatConfigProblem).join('\n')).toMatch(/policy\.yaml:3:.*rule "bank".*header_protection: "secret" — expected obscure, copy or off/);
  });
});
