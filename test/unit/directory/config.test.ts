/**
 * The discovery: and portal: sections of postern.yaml: off by default, the documented forms,
 * key server URLs normalised, and bad values reported at their line.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkConfig, loadConfig } from '../../../src/config/index.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { tempDir, yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();
const check = yc.check;
async function problems(yaml: string): Promise<string[]> {
  const r = await check(yaml);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems.map(formatConfigProblem);
}

describe('config: discovery and portal', () => {
  it('are off by default', async () => {
    const r = await check('hostname: gw.example\n');
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    // Look-ups are off by default; Autocrypt (which asks nobody: keys travel in headers) is on.
    expect(r.config.discovery).toEqual({ wkd: { domains: [], timeout: 5_000 }, hkp: { servers: [] }, cache_ttl: 3_600_000, negative_ttl: 600_000, max_key_size: 512 * 1024, autocrypt: true });
    expect(r.config.portal).toEqual({
      listen: [],
      wkd: true,
      index_ttl: 60_000,
      tls: undefined,
      organisation: 'gw.example',
      max_upload: 25 * 1024 * 1024,
      max_uploads: 10,
      session_idle: 900_000,
      session_max: 28_800_000,
      lockout: { account: 5, client: 20, backoff: 60_000, max_backoff: 3_600_000 },
    });
  });

  it('the shipped config/postern.yaml documents them and loads', async () => {
    const c = await loadConfig(resolve(import.meta.dirname, '../../../config/postern.yaml'));
    expect(c.discovery.wkd.domains).toEqual([]);
    expect(c.portal.listen).toEqual([]);
  });

  it('take "*", patterns, key servers in every documented form', async () => {
    const r = await check(
      [
        'discovery:',
        '  wkd: { domains: "*", timeout: 2s }',
        '  hkp:',
        '    servers:',
        '      - { url: hkps://keys.openpgp.org, patterns: ["*"] }',
        '      - { url: hkp://keys.partner.example, patterns: ["*@partner.example", "*.partner.example"], timeout: 1s }',
        '      - { url: "http://127.0.0.1:8080/", patterns: [sales-*@example.net] }',
        '  cache_ttl: 2h',
        '  negative_ttl: 1m',
        'portal:',
        '  listen: ["127.0.0.1:8443"]',
        '  index_ttl: 10s',
        '',
      ].join('\n'),
    );
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.discovery.wkd).toEqual({ domains: ['*'], timeout: 2_000 });
    expect(r.config.discovery.hkp.servers).toEqual([
      { url: 'https://keys.openpgp.org', patterns: ['*'], timeout: 5_000 },
      { url: 'http://keys.partner.example:11371', patterns: ['*@partner.example', '*.partner.example'], timeout: 1_000 },
      { url: 'http://127.0.0.1:8080', patterns: ['sales-*@example.net'], timeout: 5_000 },
    ]);
    expect(r.config.discovery.cache_ttl).toBe(7_200_000);
    expect(r.config.portal.listen).toEqual([{ host: '127.0.0.1', port: 8443 }]);
  });

  it('report bad values at their line', async () => {
    const p = await problems(
      [
        'discovery:',
        '  wkd: { domains: [partner.example, "bad domain"] }',
        '  hkp:',
        '    servers:',
        '      - { url: ldap://x, patterns: ["*"] }',
        '      - { url: hkps://k.example, patterns: [] }',
        '  cache_tl: 1h',
        'portal:',
        '  tls: { cert: nope.crt, key: nope.key }',
        '',
      ].join('\n'),
    );
    const f = join(yc.dir(), 'postern.yaml');
    expect(p).toContain(`${f}:2:37: discovery.wkd.domains.1: "bad domain" — expected a pattern like partner.example, *.example.org, *@partner.example or *`);
    expect(p).toContain(`${f}:5:16: discovery.hkp.servers.0.url: "ldap://x" — expected a key server URL like hkps://keys.openpgp.org or http://keys.partner.example:11371`);
    expect(p).toContain(`${f}:6:44: discovery.hkp.servers.1.patterns: expected at least one pattern (which addresses this server may hold)`);
    expect(p.some((x) => x.startsWith(`${f}:7:3: discovery.cache_tl: unknown key — did you mean "cache_ttl"?`))).toBe(true);
  });

  it('check the portal TLS files', async () => {
    const p = await problems('portal:\n  tls: { cert: nope.crt, key: nope.key }\n');
    expect(p).toEqual([`${join(yc.dir(), 'postern.yaml')}:2:16: portal.tls.cert: ${join(yc.dir(), 'nope.crt')}: no such file`, `${join(yc.dir(), 'postern.yaml')}:2:31: portal.tls.key: ${join(yc.dir(), 'nope.key')}: no such file`]);
  });
});
