import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkConfig, loadConfig, parseDuration, parseSize } from '../../../src/config/index.js';
import { ConfigError, formatConfigProblem } from '../../../src/core/index.js';
import { tempDir, yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();
const check = yc.check;

async function problems(yaml: string): Promise<string[]> {
  const r = await check(yaml);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems.map(formatConfigProblem);
}

describe('units', () => {
  it('parses sizes in binary multiples', () => {
    expect(parseSize('50MB')).toBe(50 * 1024 * 1024);
    expect(parseSize('512k')).toBe(512 * 1024);
    expect(parseSize('1.5 GB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize(1000)).toBe(1000);
    expect(parseSize('fifty')).toBeNull();
    expect(parseSize('10 parsecs')).toBeNull();
    expect(parseSize(-1)).toBeNull();
  });
  it('parses durations, compound ones too', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('4h')).toBe(4 * 3_600_000);
    expect(parseDuration('5d')).toBe(5 * 86_400_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration('soon')).toBeNull();
    expect(parseDuration('5')).toBeNull(); // a unit-less string is ambiguous: seconds? minutes?
  });
});

describe('loading', () => {
  it('fills every default from a minimal file', async () => {
    const r = await check('internal_domains: [Example.COM]\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const c = r.config;
    expect(c.internal_domains).toEqual(['example.com']);
    expect(c.data_dir).toBe(resolve(yc.dir(), '../var'));
    expect(c.smtp.listen).toEqual([{ host: '127.0.0.1', port: 2525 }]);
    expect(c.smtp.max_message_size).toBe(50 * 1024 * 1024);
    expect(c.smtp.idle_timeout).toBe(300_000);
    expect(c.smtp.bare_newline).toBe('reject');
    expect(c.smtp.reverse_dns).toBe(false);
    expect(c.smtp.tls).toBeUndefined();
    expect(c.relay.routes).toEqual([{ pattern: '*', target: { kind: 'mx', tls: 'may' } }]);
    expect(c.relay.retry[0]).toBe(60_000);
    expect(c.workers).toBeGreaterThanOrEqual(1);
    expect(c.policy.file).toBe(join(yc.dir(), 'policy.yaml'));
    expect(c.policy.document).toEqual({ rules: [] });
    expect(c.kek).toEqual({ file: resolve(yc.dir(), '../var/kek.key') });
    expect(Object.isFrozen(c.smtp.listen[0])).toBe(true);
  });

  it('resolves routes in file order, with their defaults', async () => {
    const r = await check(`data_dir: data
relay:
  routes:
    partner.example: { via: "smtp://[2001:db8::1]:2526", tls: required }
    "*.Example.org": smtps://relay.example.org
    archive.example: maildir:mail/archive
    "*": smtp://smarthost.example
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.relay.routes).toEqual([
      { pattern: 'partner.example', target: { kind: 'smtp', host: '2001:db8::1', port: 2526, tls: 'encrypt' } },
      { pattern: '*.example.org', target: { kind: 'smtps', host: 'relay.example.org', port: 465 } },
      { pattern: 'archive.example', target: { kind: 'maildir', path: join(yc.dir(), 'mail/archive') } },
      { pattern: '*', target: { kind: 'smtp', host: 'smarthost.example', port: 25, tls: 'may' } },
    ]);
    expect(r.config.keystore.sqlite).toBe(join(yc.dir(), 'data/postern.db'));
  });

  it('loads the shipped config/postern.yaml and policy.yaml', async () => {
    const c = await loadConfig(resolve(import.meta.dirname, '../../../config/postern.yaml'));
    expect(c.smtp.listen).toEqual([{ host: '127.0.0.1', port: 2525 }]);
    expect(c.relay.routes[0]?.target.kind).toBe('maildir');
  });
});

describe('problems name file, line, column and key', () => {
  it('a bad size', async () => {
    const p = await problems('internal_domains: [example.com]\nsmtp:\n  max_message_size: fifty\n');
    expect(p).toEqual([`${join(yc.dir(), 'postern.yaml')}:3:21: smtp.max_message_size: "fifty" — expected a size like 50MB`]);
  });

  it('connection and time limits: defaults, and refusals with their line', async () => {
    const r = await check('internal_domains: [example.com]\n');
    expect(r.ok && [r.config.smtp.max_connections_per_client, r.config.smtp.data_timeout, r.config.smtp.session_timeout]).toEqual([10, 600_000, 1_800_000]);
    const p = await problems('smtp:\n  max_connections_per_client: 0\n  data_timeout: 0s\n  session_timeout: forever\n');
    expect(p).toEqual([
      `${join(yc.dir(), 'postern.yaml')}:2:31: smtp.max_connections_per_client: expected a number of at least 1`,
      `${join(yc.dir(), 'postern.yaml')}:3:17: smtp.data_timeout: expected a duration of at least 1s`,
      `${join(yc.dir(), 'postern.yaml')}:4:20: smtp.session_timeout: "forever" — expected a duration like 30s, 5m, 4h or 5d`,
    ]);
  });

  it('every problem at once, not just the first', async () => {
    const p = await problems(`hostname: "not a host!"
trusted_networks: [10.0.0.0/8, 300.1.1.1]
smtp:
  listen: ["localhost"]
  idle_timeout: soon
  bare_newline: sometimes
relay:
  retry: [1m, never]
`);
    const text = p.join('\n');
    expect(text).toContain(':1:11: hostname: "not a host!" — expected a domain name');
    expect(text).toContain(':2:32: trusted_networks.1: "300.1.1.1" — expected an IP address or a network');
    expect(text).toContain(':4:12: smtp.listen.0: "localhost" — expected host:port');
    expect(text).toContain(':5:17: smtp.idle_timeout: "soon" — expected a duration');
    expect(text).toContain(':6:17: smtp.bare_newline: "sometimes" — expected one of: reject, normalize_trusted');
    expect(text).toContain(':8:15: relay.retry.1: "never" — expected a duration');
    expect(p).toHaveLength(6);
  });

  it('an unknown key, with a suggestion', async () => {
    const p = await problems('smtp:\n  max_mesage_size: 10MB\n');
    expect(p).toEqual([`${join(yc.dir(), 'postern.yaml')}:2:3: smtp.max_mesage_size: unknown key — did you mean "max_message_size"?`]);
  });

  it('wrong types', async () => {
    const p = await problems('internal_domains: example.com\nsmtp: { max_recipients: 0, reverse_dns: "yes" }\n');
    expect(p.join('\n')).toContain(':1:19: internal_domains: "example.com" — expected a list');
    expect(p.join('\n')).toContain('smtp.max_recipients: expected a number of at least 1');
    expect(p.join('\n')).toContain('smtp.reverse_dns: "yes" — expected true or false');
  });

  it('a bad route target', async () => {
    const p = await problems('relay:\n  routes:\n    example.com: ftp://x\n');
    expect(p).toEqual([
      `${join(yc.dir(), 'postern.yaml')}:3:18: relay.routes.example.com: "ftp://x" — expected mx, smtp://host:port, smtps://host:port or maildir:PATH`,
    ]);
  });

  it('a reply rule that is not a regular expression, or has no action', async () => {
    const p = await problems('relay:\n  reply_rules:\n    - { match: "^450 (", action: bounce }\n    - { match: "x" }\n');
    expect(p).toEqual([
      expect.stringMatching(/postern\.yaml:3:16: relay\.reply_rules\.0\.match: "\^450 \(" — expected a regular expression$/),
      expect.stringMatching(/postern\.yaml:4:7: relay\.reply_rules\.1\.action: /),
    ]);
  });

  it('relay defaults and the tls level of an mx route', async () => {
    const r = await check('relay:\n  routes:\n    "*": { via: mx, tls: required }\n  reply_rules: [{ match: "^550 .*later", action: defer }]\n');
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.relay.routes).toEqual([{ pattern: '*', target: { kind: 'mx', tls: 'encrypt' } }]);
    expect(r.config.relay).toMatchObject({ delay_warning: 4 * 3_600_000, bounce_size_limit: 50 * 1024, reply_rules: [{ match: '^550 .*later', action: 'defer' }] });
  });

  it('YAML syntax errors with their position', async () => {
    const p = await problems('smtp:\n  listen: ["127.0.0.1:25"\nrelay: {}\n');
    expect(p[0]).toMatch(new RegExp(`^${join(yc.dir(), 'postern.yaml')}:\\d+:\\d+: YAML: `));
    const dup = await problems('hostname: a.example\nhostname: b.example\n');
    expect(dup[0]).toMatch(/:2:1: YAML: .*[Uu]nique/);
  });

  it('missing TLS files', async () => {
    const p = await problems('smtp:\n  tls: { cert: nope.crt, key: nope.key }\n');
    expect(p).toEqual([
      `${join(yc.dir(), 'postern.yaml')}:2:16: smtp.tls.cert: ${join(yc.dir(), 'nope.crt')}: no such file`,
      `${join(yc.dir(), 'postern.yaml')}:2:31: smtp.tls.key: ${join(yc.dir(), 'nope.key')}: no such file`,
    ]);
  });

  it('PDF mail: defaults that read like a letter, files checked at load, the portal URL without its slash', async () => {
    const r = await check('hostname: mail.example.org\nportal: { url: "https://mail.example.org/" }\n');
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.portal.url).toBe('https://mail.example.org');
    expect(r.config.pdf).toMatchObject({ cipher: 'aes-256', password_scope: 'pair', reply_validity: 90 * 86_400_000, organisation: 'example.org', reply_label: 'Reply', max_attachments: 1000 });
    // The texts that speak of the Reply button are chosen per PDF (with or without a link).
    expect(r.config.pdf.message_text).toBeUndefined();
    expect(r.config.pdf.instructions).toBeUndefined();
    await writeFile(join(yc.dir(), 'logo.gif'), 'GIF89a');
    const p = await problems('pdf:\n  logo: nope.png\n  fonts: [none.ttf]\n  cipher: rc4\nportal: { url: "ftp://x" }\n');
    const file = join(yc.dir(), 'postern.yaml');
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${file}:4:11: pdf\\.cipher: `)),
        expect.stringMatching(/portal\.url: "ftp:\/\/x" — expected an http\(s\) URL/),
      ]),
    );
    const files = await problems('pdf:\n  logo: logo.gif\n  fonts: [none.ttf]\n');
    expect(files).toEqual([`${file}:2:9: pdf.logo: ${join(yc.dir(), 'logo.gif')}: expected a PNG or JPEG file (.png, .jpg, .jpeg)`, `${file}:3:11: pdf.fonts.0: ${join(yc.dir(), 'none.ttf')}: no such file`]);
  });

  it('the portal: plain HTTP only on loopback, its look from pdf: unless its own, limits with defaults', async () => {
    const file = join(yc.dir(), 'postern.yaml');
    const open = await problems('portal:\n  listen: ["127.0.0.1:8080", "0.0.0.0:8080", "[::]:8443"]\n');
    expect(open).toEqual([
      `${file}:2:30: portal.listen.1: 0.0.0.0:8080 is not a loopback address: the portal takes passwords, so it needs portal.tls (or listen on 127.0.0.1 behind a TLS proxy)`,
      `${file}:2:46: portal.listen.2: [::]:8443 is not a loopback address: the portal takes passwords, so it needs portal.tls (or listen on 127.0.0.1 behind a TLS proxy)`,
    ]);
    const r = await check('hostname: mail.example.org\npdf: { organisation: Example Bank }\nportal: { listen: ["127.0.0.1:8080", "[::1]:8080"], lockout: { account: 3 } }\n');
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.portal).toMatchObject({ organisation: 'Example Bank', max_upload: 25 * 1024 * 1024, max_uploads: 10, session_idle: 900_000, session_max: 28_800_000 });
    expect(r.config.portal.lockout).toEqual({ account: 3, client: 20, backoff: 60_000, max_backoff: 3_600_000 });
    expect(r.config.portal.logo).toBeUndefined();
    await writeFile(join(yc.dir(), 'logo.bmp'), 'BM');
    expect(await problems('portal: { logo: logo.bmp, organisation: Us }\n')).toEqual([`${file}:1:17: portal.logo: ${join(yc.dir(), 'logo.bmp')}: expected a PNG, JPEG or SVG file (.png, .jpg, .jpeg, .svg)`]);
  });

  it('a broken or missing policy file is named with its own position', async () => {
    await writeFile(join(yc.dir(), 'policy.yaml'), 'rules:\n  - name: a\n   bad indent: [\n');
    const p = await problems('hostname: gw.example\n');
    expect(p[0]).toMatch(new RegExp(`^${join(yc.dir(), 'policy.yaml')}:\\d+:\\d+: YAML: `));
    await writeFile(join(yc.dir(), 'policy.yaml'), 'rules: yes\n');
    expect(await problems('hostname: gw.example\n')).toEqual([`${join(yc.dir(), 'policy.yaml')}:1:8: rules: expected a list of rules`]);
    const missing = await problems('policy: elsewhere/policy.yaml\n');
    expect(missing[0]).toBe(`${join(yc.dir(), 'elsewhere/policy.yaml')}: cannot read: ENOENT`);
    expect(missing[1]).toContain(':1:9: policy: cannot use');
  });

  it('a missing config file', async () => {
    const r = await checkConfig(join(yc.dir(), 'absent.yaml'));
    expect(r.ok).toBe(false);
    await expect(loadConfig(join(yc.dir(), 'absent.yaml'))).rejects.toBeInstanceOf(ConfigError);
  });

  it('an empty file is all defaults', async () => {
    const r = await check('');
    expect(r.ok).toBe(true);
  });
});

describe('smtp.min_free_space', () => {
  const MB = 1024 * 1024;
  async function minFree(yaml: string): Promise<number> {
    const r = await check(`internal_domains: [example.com]\n${yaml}`);
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    return r.config.smtp.min_free_space;
  }

  it('defaults to 100MB, or twice max_message_size when that is larger', async () => {
    expect(await minFree('')).toBe(100 * MB);
    expect(await minFree('smtp:\n  max_message_size: 10MB\n')).toBe(100 * MB);
    expect(await minFree('smtp:\n  max_message_size: 80MB\n')).toBe(160 * MB);
  });

  it('takes an explicit size, 0 included (no threshold)', async () => {
    expect(await minFree('smtp:\n  min_free_space: 2GB\n')).toBe(2 * 1024 * MB);
    expect(await minFree('smtp:\n  max_message_size: 80MB\n  min_free_space: 1MB\n')).toBe(MB);
    expect(await minFree('smtp:\n  min_free_space: 0\n')).toBe(0);
  });

  it('names file, line and key of a value that is not a size', async () => {
    expect(await problems('internal_domains: [example.com]\nsmtp:\n  min_free_space: plenty\n')).toEqual([
      `${join(yc.dir(), 'postern.yaml')}:3:19: smtp.min_free_space: "plenty" — expected a size like 50MB`,
    ]);
  });
});

describe('relay.connection_cache_time (Postfix smtp_connection_cache_time_limit)', () => {
  it('is 2s unless set, as Postfix has it; takes a duration, and 0 (no connection kept)', async () => {
    for (const [yaml, ms] of [
      ['hostname: gw.example.com\n', 2_000],
      ['relay:\n  connection_cache_time: 10s\n', 10_000],
      ['relay:\n  connection_cache_time: 0s\n', 0],
      ['relay:\n  connection_cache_time: 5m\n', 300_000],
    ] as const) {
      const r = await check(yaml);
      if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
      expect(r.config.relay.connection_cache_time, yaml).toBe(ms);
    }
  });

  it('refuses more than 5m and what is not a duration, naming file, line and key', async () => {
    const at = `${join(yc.dir(), 'postern.yaml')}:2:26: relay.connection_cache_time: `;
    expect(await problems('relay:\n  connection_cache_time: 1h\n')).toEqual([`${at}expected a duration of at most 5m (an idle connection holds one of the next hop's session slots)`]);
    expect(await problems('relay:\n  connection_cache_time: soon\n')).toEqual([`${at}"soon" — expected a duration like 30s, 5m, 4h or 5d`]);
  });
});
