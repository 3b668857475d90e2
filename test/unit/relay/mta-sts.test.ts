/**
 * MTA-STS texts from a recipient domain's DNS and web server (RFC 8461 §3.1, §3.2, §4.1): what
 * counts as a record and a policy, and which MX hosts a pattern allows, against hostile input.
 */
import { describe, expect, it } from 'vitest';
import { MAX_POLICY_BYTES, mxAllowed, parseStsPolicy, parseStsRecord } from '../../../src/relay/mta-sts.js';

describe('_mta-sts TXT record', () => {
  it('takes the id of the one STSv1 record, its strings joined', () => {
    expect(parseStsRecord([['v=STSv1; id=20160831085700Z;']])).toEqual({ id: '20160831085700Z' });
    expect(parseStsRecord([['v=STSv1; ', 'id=abc123']])).toEqual({ id: 'abc123' });
    expect(parseStsRecord([['v=spf1 -all'], ['v=STSv1;id=x1;ext=whatever']])).toEqual({ id: 'x1' });
  });
  it('no record, several records, a bad or missing id: no policy', () => {
    expect(parseStsRecord([])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; id=a;'], ['v=STSv1; id=b;']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1;']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; id=has-dash;']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; id=' + 'a'.repeat(33)]])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; id=a; id=b']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; garbage']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv10; id=a']])).toBeUndefined();
    expect(parseStsRecord([['v=STSv1; id=a;' + ' x=y;'.repeat(1000)]])).toBeUndefined();
  });
});

describe('policy file', () => {
  const policy = (...lines: string[]) => lines.join('\r\n') + '\r\n';

  it('reads version, mode, mx and max_age; LF alone and unknown keys are fine', () => {
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: mail.example.com', 'mx: *.Example.NET', 'max_age: 604800'))).toEqual({
      mode: 'enforce', mx: ['mail.example.com', '*.example.net'], maxAge: 604800,
    });
    expect(parseStsPolicy('version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\nfuture_key: 1\n')).toMatchObject({ mode: 'testing' });
    expect(parseStsPolicy(policy('version: STSv1', 'mode: none', 'max_age: 0'))).toEqual({ mode: 'none', mx: [], maxAge: 0 });
  });

  it('refuses what is not a policy, saying why', () => {
    expect(parseStsPolicy('<html>not found</html>')).toBe('a line is not "key: value"');
    expect(parseStsPolicy(policy('version: STSv2', 'mode: enforce', 'mx: a.example', 'max_age: 1'))).toBe('version is not STSv1');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: strict', 'mx: a.example', 'max_age: 1'))).toBe('mode is not enforce, testing or none');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'max_age: 1'))).toBe('no mx');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: a.example'))).toBe('no max_age');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: a.example', 'max_age: 31557601'))).toBe('max_age is not a number of seconds up to 31557600');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: a.example', 'max_age: -5'))).toBe('max_age is not a number of seconds up to 31557600');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mode: none', 'mx: a.example', 'max_age: 5'))).toBe('mode given twice');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: *', 'max_age: 5'))).toBe('an mx line is not a host name or *.domain');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: *.com', 'max_age: 5'))).toBe('an mx line is not a host name or *.domain');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: a.*.example', 'max_age: 5'))).toBe('an mx line is not a host name or *.domain');
    expect(parseStsPolicy(policy('version: STSv1', 'mode: enforce', 'mx: mx.example\u0000.com', 'max_age: 5'))).toBe('an mx line is not a host name or *.domain');
  });

  it('huge or endless input is refused, not parsed', () => {
    expect(parseStsPolicy('version: STSv1\n' + 'x'.repeat(MAX_POLICY_BYTES))).toBe('policy too large');
    const many = ['version: STSv1', 'mode: enforce', 'max_age: 5', ...Array.from({ length: 101 }, (_, i) => `mx: m${i}.example.com`)];
    expect(parseStsPolicy(many.join('\n'))).toBe('too many mx lines');
  });
});

describe('MX host against the policy (RFC 8461 §4.1)', () => {
  it('a wildcard is exactly one label deep; exact names match exactly', () => {
    const mx = ['*.example.com', 'mail.example.net'];
    expect(mxAllowed('mx1.example.com', mx)).toBe(true);
    expect(mxAllowed('MX1.Example.COM.', mx)).toBe(true);
    expect(mxAllowed('mail.example.net', mx)).toBe(true);
    expect(mxAllowed('example.com', mx)).toBe(false);
    expect(mxAllowed('a.b.example.com', mx)).toBe(false);
    expect(mxAllowed('badexample.com', mx)).toBe(false);
    expect(mxAllowed('xexample.com', mx)).toBe(false);
    expect(mxAllowed('mx1.example.com.evil.test', mx)).toBe(false);
    expect(mxAllowed('sub.mail.example.net', mx)).toBe(false);
  });
});
