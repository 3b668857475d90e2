/**
 * LDAP filter building: RFC 4515 escaping of untrusted values, template checks, group names from
 * DNs; and the ldap: config section (defaults, line-accurate problems, secrets by reference).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FilterParser } from 'ldapts';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkConfig } from '../../../src/config/index.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { escapeFilterValue, firstRdnValue, renderFilter, validateTemplate } from '../../../src/directory/ldap.js';
import { tempDir } from '../../helpers/config.js';

describe('escapeFilterValue (RFC 4515)', () => {
  it('escapes the specials, NUL and controls; keeps the rest', () => {
    expect(escapeFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeFilterValue('a\\b')).toBe('a\\5cb');
    expect(escapeFilterValue('x\u0000y\r\n\u007f')).toBe('x\\00y\\0d\\0a\\7f');
    expect(escapeFilterValue('alice+tag@example.com')).toBe('alice+tag@example.com');
    expect(escapeFilterValue('jörg@bücher.example')).toBe('jörg@bücher.example');
  });

  it('a rendered filter parses to exactly the value given (no filter syntax survives)', () => {
    for (const evil of ['*)(uid=*', '*', 'a)(|(objectClass=*)', '\\2a', 'x\u0000', 'jörg*(ö)@例え.jp', '😀)(']) {
      const f = FilterParser.parseString(renderFilter('(mail={address})', { address: evil }));
      expect(f.constructor.name).toBe('EqualityFilter');
      expect((f as unknown as { value: string }).value).toBe(evil);
    }
    const or = FilterParser.parseString(renderFilter('(|(mail={address})(uid={local}))', { address: '*)(uid=*', local: '*' }));
    expect(or.constructor.name).toBe('OrFilter');
    expect((or as unknown as { filters: unknown[] }).filters).toHaveLength(2);
  });
});

describe('validateTemplate', () => {
  const user = (t: string) => validateTemplate(t, ['address', 'local', 'domain'], ['address', 'local']);
  it('accepts the usual filters', () => {
    expect(user('(|(mail={address})(mailAlternateAddress={address}))')).toBeNull();
    expect(user('(&(objectClass=person)(uid={local}))')).toBeNull();
    expect(user('(mail=\\2a{local})')).toBeNull();
    expect(validateTemplate('(member={dn})', ['dn', 'address'], ['dn', 'address'])).toBeNull();
  });
  it('names what is wrong', () => {
    expect(user('(mail={adress})')).toMatch(/unknown placeholder \{adress\}/);
    expect(user('(objectClass=person)')).toMatch(/expected a placeholder/);
    expect(user('mail={address}')).toMatch(/parentheses/);
    expect(user('(mail={address})(uid={local})')).toMatch(/unbalanced|wrap/);
    expect(user('(&(mail={address})')).toMatch(/unbalanced/);
    expect(user('(mail={address}\\zz)')).toMatch(/escape/);
  });
});

describe('firstRdnValue', () => {
  it('reads group names out of DNs', () => {
    expect(firstRdnValue('cn=Board,ou=groups,dc=example,dc=com')).toBe('Board');
    expect(firstRdnValue('CN=Human Resources,OU=Groups,DC=corp')).toBe('Human Resources');
    expect(firstRdnValue('cn=Smith\\, John,ou=x')).toBe('Smith, John');
    expect(firstRdnValue('cn=Gesch\\C3\\A4ftsleitung,ou=x')).toBe('Geschäftsleitung');
    expect(firstRdnValue('cn=Geschäftsleitung 😀+ou=a,dc=x')).toBe('Geschäftsleitung 😀');
    expect(firstRdnValue('not a dn')).toBeNull();
    expect(firstRdnValue('cn=#04024869,dc=x')).toBeNull();
  });
});

describe('config: ldap section', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  });
  afterEach(() => cleanup());
  const check = async (yaml: string) => {
    const file = join(dir, 'postern.yaml');
    await writeFile(file, yaml);
    return checkConfig(file);
  };
  const problems = async (yaml: string) => {
    const r = await check(yaml);
    if (r.ok) throw new Error('expected problems');
    return r.problems.map(formatConfigProblem).join('\n');
  };

  it('is off by default', async () => {
    const r = await check('hostname: gw.example.com\n');
    expect(r.ok && r.config.ldap).toEqual({ servers: [], cache_ttl: 900_000, negative_ttl: 120_000, retry_after: 30_000, on_failure: 'defer' });
  });

  it('fills a server with sane defaults and resolves paths', async () => {
    await writeFile(join(dir, 'ldap.secret'), 'pw\n');
    const r = await check(`ldap:
  servers:
    - url: ldap://ldap.example.com:3389/
      starttls: true
      tls: { ca_file: ca.pem }
      bind_dn: cn=postern,dc=example,dc=com
      password_file: ldap.secret
      base_dn: ou=people,dc=example,dc=com
  on_failure: proceed
`);
    expect(r.ok).toBe(false); // ca.pem is missing
    await writeFile(join(dir, 'ca.pem'), '');
    const ok = await check(`ldap:
  servers:
    - url: ldap://ldap.example.com:3389/
      starttls: true
      tls: { ca_file: ca.pem }
      bind_dn: cn=postern,dc=example,dc=com
      password_file: ldap.secret
      base_dn: ou=people,dc=example,dc=com
      attributes: { member_of: null }
  on_failure: proceed
`);
    if (!ok.ok) throw new Error(ok.problems.map(formatConfigProblem).join('\n'));
    const s = ok.config.ldap.servers[0]!;
    expect(s).toMatchObject({
      url: 'ldap://ldap.example.com:3389',
      starttls: true,
      tls: { ca_file: join(dir, 'ca.pem'), reject_unauthorized: true },
      password_file: join(dir, 'ldap.secret'),
      scope: 'sub',
      timeout: 5_000,
      user_filter: '(|(mail={address})(mailAlternateAddress={address}))',
      attributes: { mail: 'mail', certificate: ['userCertificate;binary', 'userSMIMECertificate'], policy: ['departmentNumber', 'ou', 'title', 'employeeType'] },
    });
    expect(s.attributes.member_of).toBeUndefined();
    expect(ok.config.ldap.on_failure).toBe('proceed');
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('reports problems with file, line and key', async () => {
    const p = await problems(`ldap:
  servers:
    - url: http://ldap.example.com
      base_dn: dc=x
    - url: ldaps://ldap.example.com
      starttls: true
      base_dn: dc=x
      bind_dn: cn=a
    - url: ldap://h
      base_dn: dc=x
      password: secret
      user_filter: "(mail={adress})"
      group_search: { base: dc=x, filter: "(member=x)" }
  on_failure: ignore
`);
    expect(p).toMatch(/postern\.yaml:3:\d+: ldap\.servers\.0\.url: "http:\/\/ldap\.example\.com" — expected ldap:\/\/host\[:port\]/);
    expect(p).toMatch(/ldap\.servers\.1\.starttls: ldaps:\/\/ is TLS already/);
    expect(p).toMatch(/ldap\.servers\.1\.bind_dn: bind_dn needs password_env or password_file/);
    expect(p).toMatch(/:11:\d+: ldap\.servers\.2\.password: unknown key/);
    expect(p).toMatch(/ldap\.on_failure: "ignore" — expected one of: defer, proceed/);
  });

  it('checks filter templates and password files after parsing', async () => {
    const p = await problems(`ldap:
  servers:
    - url: ldap://h
      base_dn: dc=x
      bind_dn: cn=a
      password_file: missing.secret
      user_filter: "(mail={adress})"
      group_search: { base: dc=x, filter: "(member=x)" }
`);
    expect(p).toMatch(/:6:\d+: ldap\.servers\.0\.password_file: .*missing\.secret: no such file/);
    expect(p).toMatch(/:7:\d+: ldap\.servers\.0\.user_filter: unknown placeholder \{adress\}/);
    expect(p).toMatch(/ldap\.servers\.0\.group_search\.filter: expected a placeholder \{dn\} or \{address\}/);
  });
});
