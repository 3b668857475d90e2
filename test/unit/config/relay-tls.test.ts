/**
 * relay.tls, the routes' tls: levels and relay.tls_ca_file as postern.yaml gives them: the levels
 * and their old names, what each kind of route takes, and a CA bundle checked line by line.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCaBundle } from '../../../src/config/relay-tls.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { yamlConfigChecker } from '../../helpers/config.js';
import { opensslCa } from '../../helpers/pki-openssl.js';

const yc = yamlConfigChecker();

async function routes(yaml: string) {
  const r = await yc.check(yaml);
  if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
  return r.config.relay;
}

async function problems(yaml: string): Promise<string[]> {
  const r = await yc.check(yaml);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems.map(formatConfigProblem);
}

describe('relay TLS levels in postern.yaml', () => {
  it('relay.tls is the level of every route that names none; may by default', async () => {
    expect((await routes('relay: {}\n')).tls).toBe('may');
    const r = await routes('relay:\n  tls: verify\n  routes:\n    a.example: mx\n    b.example: smtp://hub.example:25\n    c.example: { via: mx, tls: dane }\n    d.example: smtps://hub.example\n    "*": { via: mx, tls: none }\n');
    expect(r.tls).toBe('verify');
    expect(r.routes.map((x) => x.target)).toEqual([
      { kind: 'mx', tls: 'verify' },
      { kind: 'smtp', host: 'hub.example', port: 25, tls: 'verify' },
      { kind: 'mx', tls: 'dane' },
      { kind: 'smtps', host: 'hub.example', port: 465, tls: 'verify' },
      { kind: 'mx', tls: 'none' },
    ]);
  });

  it('the old names load as Postfix\'s: opportunistic is may, required is encrypt', async () => {
    const r = await routes('relay:\n  tls: required\n  routes:\n    a.example: { via: mx, tls: opportunistic }\n    b.example: { via: "smtp://hub.example:2525", tls: required }\n    c.example: { via: "smtps://hub.example", tls: required }\n');
    expect(r.tls).toBe('encrypt');
    expect(r.routes.map((x) => x.target)).toEqual([
      { kind: 'mx', tls: 'may' },
      { kind: 'smtp', host: 'hub.example', port: 2525, tls: 'encrypt' },
      { kind: 'smtps', host: 'hub.example', port: 465 },
    ]);
  });

  it('a fixed next hop inherits dane or sts as may (they are policies of MX hosts), and refuses them named', async () => {
    expect((await routes('relay:\n  tls: sts\n  routes:\n    "*": smtp://hub.example\n')).routes[0]!.target).toEqual({ kind: 'smtp', host: 'hub.example', port: 25, tls: 'may' });
    const file = join(yc.dir(), 'postern.yaml');
    expect(await problems('relay:\n  routes:\n    "*": { via: "smtp://hub.example", tls: dane }\n')).toEqual([
      `${file}:3:10: relay.routes.*: tls: dane applies to mx routes (it is the recipient domain's policy for its MX hosts); a fixed next hop takes none, may, encrypt or verify`,
    ]);
    expect(await problems('relay:\n  routes:\n    "*": { via: "smtps://hub.example", tls: may }\n')).toEqual([
      `${file}:3:10: relay.routes.*: tls: smtps:// is always TLS — expected encrypt or verify, not may`,
    ]);
  });

  it('an unknown level names the levels there are', async () => {
    const [p] = await problems('relay:\n  tls: secure\n');
    expect(p).toContain('relay.tls: "secure" — expected a TLS level: none, may, encrypt, verify, dane or sts (opportunistic and required are the old names of may and encrypt)');
    expect(p).toMatch(/postern\.yaml:2:8: /);
  });

  it('relay.tls_ca_file: resolved, read, and every problem at the key\'s line with the bundle\'s line', async () => {
    const dir = yc.dir();
    const ca = await opensslCa(dir, 'Config CA');
    const pem = await readFile(ca.cert, 'utf8');
    await writeFile(join(dir, 'bundle.pem'), `# our CAs\n${pem}${pem}`);
    expect((await routes('relay:\n  tls_ca_file: bundle.pem\n')).tls_ca_file).toBe(join(dir, 'bundle.pem'));

    const file = join(dir, 'postern.yaml');
    expect(await problems('relay:\n  tls: verify\n  tls_ca_file: missing.pem\n')).toEqual([`${file}:3:16: relay.tls_ca_file: ${join(dir, 'missing.pem')}: no such file`]);
    const lines = pem.trimEnd().split('\n');
    lines[3] = lines[3]!.replace(/[A-Za-z]/g, '!');
    await writeFile(join(dir, 'broken.pem'), `${pem}\n${lines.join('\n')}\n`);
    const [p] = await problems('relay:\n  tls_ca_file: broken.pem\n');
    expect(p).toBe(`${file}:2:16: relay.tls_ca_file: ${join(dir, 'broken.pem')}: line ${pem.split('\n').length + 1}: not a valid PEM certificate`);
    await writeFile(join(dir, 'key.pem'), await readFile(ca.key));
    expect((await problems('relay:\n  tls_ca_file: key.pem\n'))[0]).toMatch(/key\.pem: line 1: a PRIVATE KEY block — expected only CERTIFICATE blocks \(no keys\)$/);
  });
});

describe('parseCaBundle against broken input', () => {
  it('says which line is wrong', () => {
    expect(parseCaBundle('')).toBe('no PEM certificate in the file (expected -----BEGIN CERTIFICATE----- blocks)');
    expect(parseCaBundle('-----BEGIN CERTIFICATE-----\nAAAA\n')).toBe('line 1: the certificate is not terminated (no END CERTIFICATE)');
    expect(parseCaBundle('x\n-----END CERTIFICATE-----\n')).toBe('line 2: END CERTIFICATE without BEGIN');
    expect(parseCaBundle('-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n')).toBe('line 2: a certificate begins before the one at line 1 ends');
    expect(parseCaBundle('-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')).toBe('line 1: not a valid PEM certificate');
  });
  it('a huge file of garbage is refused quickly, not parsed as certificates', () => {
    expect(parseCaBundle('A'.repeat(5_000_000))).toBe('no PEM certificate in the file (expected -----BEGIN CERTIFICATE----- blocks)');
  });
});
