/**
 * dsn/: notices are checked by an independent reader, Python's email package (policy.default),
 * not by our own parser: what it sees in the report is what a mail client would see.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Envelope, Recipient } from '../../../src/core/index.js';
import { buildDsn, decodeOrcpt, decodeXtext, enhancedStatus, headerBlock, wantsNotice, type DsnInput, type DsnMessage, type DsnRecipient } from '../../../src/dsn/index.js';

const PY = String.raw`
import sys, json, re, email
from email import policy
msg = email.message_from_binary_file(sys.stdin.buffer, policy=policy.default)
def u(s):
    # 8-bit octets come back as surrogate escapes; read them as the UTF-8 they are.
    return s.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')
def fields(m):
    return {k.lower(): u(str(v)) for k, v in m.items()}
def names(m):
    return [k.lower() for k in m.keys()]
out = {'names': names(msg), 'headers': fields(msg), 'contentType': msg.get_content_type(),
       'reportType': msg.get_param('report-type'), 'parts': [], 'ctes': [], 'defects': [str(d) for d in msg.defects]}
for i, p in enumerate(msg.get_payload()):
    ct = p.get_content_type()
    out['parts'].append(ct)
    out['ctes'].append(p.get('Content-Transfer-Encoding'))
    out['defects'] += [str(d) for d in p.defects]
    if i == 0:
        out['text'] = p.get_content()
    elif i == 1:
        if ct == 'message/delivery-status':
            blocks = p.get_payload()
        else:
            # Python reads message/global-delivery-status as one message: the per-message
            # fields become its header, the recipient groups its body.
            inner = p.get_payload()[0]
            rest = [b for b in re.split(r'\r?\n\r?\n', inner.get_payload(decode=True).decode('utf-8')) if b.strip()]
            blocks = [inner] + [email.message_from_string(b, policy=policy.default) for b in rest]
        out['perMessage'] = fields(blocks[0])
        out['recipients'] = [fields(b) for b in blocks[1:]]
        out['recipientNames'] = [names(b) for b in blocks]
    elif i == 2:
        r = {'type': ct, 'cte': p.get('Content-Transfer-Encoding')}
        if ct in ('message/rfc822', 'message/global', 'message/global-headers'):
            inner = p.get_payload()[0]
            r['headers'] = fields(inner)
            body = inner.get_payload(decode=True)
            r['body'] = body.decode('utf-8', 'replace') if body else None
        else:
            raw = p.get_payload(decode=True)
            r['raw'] = raw.decode('utf-8', 'replace')
            r['headers'] = fields(email.message_from_bytes(raw, policy=policy.default))
            r['body'] = None
        out['returned'] = r
print(json.dumps(out))
`;
import { python3 } from '../../helpers/python.js';

interface Parsed {
  names: string[];
  headers: Record<string, string>;
  contentType: string;
  reportType: string;
  parts: string[];
  ctes: (string | null)[];
  defects: string[];
  text: string;
  perMessage: Record<string, string>;
  recipients: Record<string, string>[];
  recipientNames: string[][];
  returned: { type: string; cte: string | null; headers: Record<string, string>; body: string | null; raw?: string };
}

function parse(dsn: DsnMessage): Parsed {
  checkLines(dsn.body);
  const r = spawnSync(python3(), ['-c', PY], { input: dsn.body, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString()) as Parsed;
}

/** Python hands back text with \n line ends, and the text part is word-wrapped. */
const lf = (s: string) => s.replace(/\r\n/g, '\n');
const flat = (s: string) => s.replace(/\s+/g, ' ');

/** CRLF only, ends with CRLF, no line over 998 octets. */
function checkLines(body: Buffer): void {
  const s = body.toString('latin1');
  expect(s).not.toMatch(/[^\r]\n/);
  expect(s).not.toMatch(/\r(?!\n)/);
  expect(s.endsWith('\r\n')).toBe(true);
  for (const line of s.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
}

const ORIGINAL = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Quarterly numbers\r\nMessage-ID: <m1@example.org>\r\n\r\n' +
    'The secret body line.\r\nSecond line.\r\n',
);

function envelope(over: Partial<Envelope> = {}): Envelope {
  return {
    sender: 'alice@example.org',
    recipients: [{ address: 'bob@example.net' }],
    client: { address: '192.0.2.1', port: 40000, helo: 'client.example.org', hostname: 'client.example.org', protocol: 'ESMTP', trusted: true },
    receivedAt: '2024-03-12T09:00:00.000Z',
    ...over,
  };
}

const NOW = new Date('2024-03-12T10:00:00Z');

function failed(over: Partial<DsnRecipient> = {}): DsnRecipient {
  return {
    address: 'bob@example.net',
    action: 'failed',
    status: '5.1.1',
    diagnostic: { type: 'smtp', text: '550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown' },
    remoteMta: 'mx.example.net',
    lastAttempt: new Date('2024-03-12T09:59:00Z'),
    ...over,
  };
}

function input(over: Partial<DsnInput> = {}): DsnInput {
  return { kind: 'failure', reportingMta: 'gw.example.com', queueId: '0000000000BCDFGHJKLMN', envelope: envelope(), recipients: [failed()], message: ORIGINAL, now: NOW, ...over };
}

describe('failure notice', () => {
  it('is a multipart/report a mail reader understands, returning the whole message by default', () => {
    const dsn = buildDsn(input({ envelope: envelope({ envid: 'QQ+2B123+3Dx' }), recipients: [failed({ orcpt: 'rfc822;a+2Bb@x.example' })] }));
    expect(dsn).toMatchObject({ sender: '', recipient: 'alice@example.org', eightBit: false, smtputf8: false, returned: 'message' });
    const p = parse(dsn);
    expect(p.defects).toEqual([]);
    expect(p.contentType).toBe('multipart/report');
    expect(p.reportType).toBe('delivery-status');
    expect(p.parts).toEqual(['text/plain', 'message/delivery-status', 'message/rfc822']);
    expect(p.headers.from).toBe('Mail Delivery System <MAILER-DAEMON@gw.example.com>');
    expect(p.headers.to).toBe('alice@example.org');
    expect(p.headers.subject).toBe('Undelivered Mail Returned to Sender');
    expect(p.headers['auto-submitted']).toBe('auto-replied');
    expect(p.headers['mime-version']).toBe('1.0');
    expect(p.headers.date).toBe('Tue, 12 Mar 2024 10:00:00 +0000');
    expect(p.headers['message-id']).toMatch(/^<[^<>@\s]*0000000000BCDFGHJKLMN[^<>@\s]*failure[^<>@\s]*@gw\.example\.com>$/);
    expect(p.perMessage).toMatchObject({
      'reporting-mta': 'dns; gw.example.com',
      'x-postern-queue-id': '0000000000BCDFGHJKLMN',
      'original-envelope-id': 'QQ+123=x',
      'arrival-date': 'Tue, 12 Mar 2024 09:00:00 +0000',
    });
    expect(p.recipients).toEqual([
      {
        'original-recipient': 'rfc822;a+b@x.example',
        'final-recipient': 'rfc822; bob@example.net',
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; mx.example.net',
        'diagnostic-code': 'smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
        'last-attempt-date': 'Tue, 12 Mar 2024 09:59:00 +0000',
      },
    ]);
    expect(p.returned.type).toBe('message/rfc822');
    expect(p.returned.headers.subject).toBe('Quarterly numbers');
    expect(p.returned.body).toBe('The secret body line.\nSecond line.\n'); // Python reads lines as \\n
    expect(p.text).toContain('This is the mail system at host gw.example.com.');
    expect(p.text).toContain('could not');
    expect(flat(p.text)).toContain('<bob@example.net>: host mx.example.net said: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown');
    expect(p.text).not.toContain('secret body');
  });

  it('reports several recipients, each with its own diagnostic', () => {
    const dsn = buildDsn(
      input({
        recipients: [
          failed(),
          failed({ address: 'carol@example.net', status: '5.7.1', diagnostic: { type: 'x-postern', text: 'no certificate for carol@example.net; policy requires encryption' }, remoteMta: undefined }),
        ],
      }),
    );
    const p = parse(dsn);
    expect(p.recipients.map((r) => [r['final-recipient'], r.status, r['diagnostic-code']])).toEqual([
      ['rfc822; bob@example.net', '5.1.1', 'smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown'],
      ['rfc822; carol@example.net', '5.7.1', 'X-Postern; no certificate for carol@example.net; policy requires encryption'],
    ]);
    expect(p.recipients[1]).not.toHaveProperty('remote-mta');
    expect(p.recipients[1]).not.toHaveProperty('original-recipient');
    expect(p.perMessage).not.toHaveProperty('original-envelope-id');
    expect(flat(p.text)).toContain('<carol@example.net>: no certificate for carol@example.net; policy requires encryption');
  });

  it('returns headers only for RET=HDRS, and the whole message for RET=FULL', () => {
    const hdrs = buildDsn(input({ envelope: envelope({ ret: 'HDRS' }) }));
    expect(hdrs.returned).toBe('headers');
    const p = parse(hdrs);
    expect(p.parts[2]).toBe('text/rfc822-headers');
    expect(p.returned.headers.subject).toBe('Quarterly numbers');
    expect(p.returned.raw).toBe(lf(headerBlock(ORIGINAL).toString()));
    expect(hdrs.body.toString()).not.toContain('secret body');
    expect(p.text).toContain('Its headers are attached below.');

    const full = parse(buildDsn(input({ envelope: envelope({ ret: 'FULL' }) })));
    expect(full.parts[2]).toBe('message/rfc822');
    expect(full.returned.body).toContain('The secret body line.');
  });

  it('returns headers only when the message is larger than the return limit', () => {
    const large = Buffer.concat([ORIGINAL, Buffer.from(('y'.repeat(78) + '\r\n').repeat(700))]); // ~56 kB > 50 000
    const d1 = buildDsn(input({ message: large }));
    expect(d1.returned).toBe('headers');
    expect(parse(d1).parts[2]).toBe('text/rfc822-headers');
    expect(d1.body.length).toBeLessThan(10_000);
    expect(buildDsn(input({ message: large, returnLimit: 100_000 })).returned).toBe('message');
    expect(buildDsn(input({ returnLimit: 10 })).returned).toBe('headers');
  });

  it('marks an 8-bit original 8bit and says so, never encoding message/rfc822', () => {
    const original = Buffer.from('Subject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße\r\n', 'utf8');
    const dsn = buildDsn(input({ message: original, envelope: envelope({ body: '8BITMIME' }) }));
    expect(dsn.eightBit).toBe(true);
    expect(dsn.smtputf8).toBe(false);
    const p = parse(dsn);
    expect(p.parts[2]).toBe('message/rfc822');
    expect(p.returned.cte).toBe('8bit');
    expect(p.headers['content-transfer-encoding']).toBe('8bit');
    expect(p.returned.body).toBe('Schöne Grüße\n');
    expect(dsn.body.includes(original)).toBe(true);

    const ascii = buildDsn(input());
    expect(ascii.eightBit).toBe(false);
    expect(parse(ascii).ctes).toEqual(['7bit', '7bit', '7bit']);
  });

  it('does not let a remote reply, host name, ORCPT or ENVID add a header line', () => {
    const dsn = buildDsn(
      input({
        envelope: envelope({ envid: 'x+0D+0ABcc:+20y@evil.example' }),
        recipients: [
          failed({
            orcpt: 'rfc822;b+0D+0ABcc:+20z@evil.example',
            remoteMta: 'mx.example.net\r\nBcc: w@evil.example',
            diagnostic: { type: 'smtp', text: '550 5.1.1 bad\r\nBcc: x@evil.example' },
          }),
        ],
      }),
    );
    const s = dsn.body.toString();
    expect(s).not.toMatch(/^Bcc:/im);
    const p = parse(dsn);
    expect(p.names).not.toContain('bcc');
    for (const n of p.recipientNames) expect(n).not.toContain('bcc');
    expect(p.recipients[0]!['diagnostic-code']).toBe('smtp; 550 5.1.1 bad Bcc: x@evil.example');
    expect(p.recipients[0]!.status).toBe('5.1.1');
    expect(p.recipients[0]!['original-recipient']).toBe('rfc822;b Bcc: z@evil.example');
    expect(p.perMessage['original-envelope-id']).toBe('x Bcc: y@evil.example');
    expect(p.recipients[0]!['remote-mta']).not.toMatch(/\s.*\s/);
  });

  it('folds a very long reply under 998 octets per line', () => {
    const text = '550 5.7.1 ' + 'blocked '.repeat(300) + 'Z'.repeat(1500);
    const dsn = buildDsn(input({ recipients: [failed({ diagnostic: { type: 'smtp', text } })] }));
    const p = parse(dsn); // parse() checks the line lengths
    expect(p.recipients[0]!['diagnostic-code']).toMatch(/^smtp; 550 5\.7\.1 blocked blocked /);
    expect(p.recipients[0]!.status).toBe('5.1.1');
  });

  it('falls back to headers when the original is not SMTP-safe, encoding them if need be', () => {
    const longLine = Buffer.from(`Subject: x\r\n\r\n${'a'.repeat(1200)}\r\n`);
    const d1 = buildDsn(input({ message: longLine }));
    expect(d1.returned).toBe('headers');
    expect(parse(d1).returned.raw).toBe('Subject: x\n');

    const bareLf = Buffer.from('Subject: x\nX-Odd: y\r\nX-Long: ' + 'b'.repeat(1100) + '\r\n\r\nbody\r\n');
    const d2 = buildDsn(input({ message: bareLf }));
    const p2 = parse(d2);
    expect(p2.parts[2]).toBe('text/rfc822-headers');
    expect(p2.returned.cte).toBe('quoted-printable');
    expect(p2.returned.raw).toBe(lf(headerBlock(bareLf).toString()));
  });

  it('is never addressed to the null sender', () => {
    expect(() => buildDsn(input({ envelope: envelope({ sender: '' }) }))).toThrow(/null sender/);
    expect(() => buildDsn(input({ recipients: [] }))).toThrow();
  });

  it('gives each notice its own Message-ID and boundary', () => {
    const a = parse(buildDsn(input()));
    const b = parse(buildDsn(input()));
    expect(a.headers['message-id']).not.toBe(b.headers['message-id']);
    expect(a.headers['content-type']).not.toBe(b.headers['content-type']);
  });
});

describe('delay and success notices', () => {
  it('delay: Action delayed, Will-Retry-Until, headers only even with RET=FULL', () => {
    const until = new Date('2024-03-17T09:00:00Z');
    const dsn = buildDsn(
      input({
        kind: 'delay',
        envelope: envelope({ ret: 'FULL' }),
        recipients: [{ address: 'bob@example.net', action: 'delayed', status: '4.4.1', diagnostic: { type: 'x-postern', text: 'connect to mx.example.net[192.0.2.25]:25: Connection timed out' }, lastAttempt: NOW, willRetryUntil: until }],
      }),
    );
    expect(dsn.returned).toBe('headers');
    const p = parse(dsn);
    expect(p.headers.subject).toBe('Delayed Mail (still being retried)');
    expect(p.parts).toEqual(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    expect(p.recipients[0]).toMatchObject({ action: 'delayed', status: '4.4.1', 'will-retry-until': 'Sun, 17 Mar 2024 09:00:00 +0000', 'diagnostic-code': 'X-Postern; connect to mx.example.net[192.0.2.25]:25: Connection timed out' });
    expect(p.text).toContain('THIS IS A WARNING ONLY');
    expect(flat(p.text)).toContain('until Sun, 17 Mar 2024 09:00:00 +0000');
    expect(dsn.body.toString()).not.toContain('secret body');
  });

  it('success: Action relayed or delivered, 2.x.x, headers only, no Will-Retry-Until', () => {
    const dsn = buildDsn(
      input({
        kind: 'success',
        recipients: [
          { address: 'bob@example.net', action: 'relayed', status: '2.0.0', diagnostic: { type: 'smtp', text: '250 2.0.0 Ok: queued as 4Xyz' }, remoteMta: 'mx.example.net', willRetryUntil: NOW },
          { address: 'dave@example.com', action: 'delivered', status: 'bogus' },
        ],
      }),
    );
    const p = parse(dsn);
    expect(p.headers.subject).toBe('Successful Mail Delivery Report');
    expect(p.parts[2]).toBe('text/rfc822-headers');
    expect(p.recipients[0]).toMatchObject({ action: 'relayed', status: '2.0.0', 'diagnostic-code': 'smtp; 250 2.0.0 Ok: queued as 4Xyz' });
    expect(p.recipients[0]).not.toHaveProperty('will-retry-until');
    expect(p.recipients[1]).toMatchObject({ action: 'delivered', status: '2.0.0' }); // malformed status replaced
    expect(p.text).toContain('successfully delivered');
    expect(flat(p.text)).toContain('<bob@example.net>: delivery via mx.example.net: 250 2.0.0 Ok: queued as 4Xyz');
  });

  it('keeps Status consistent with Action', () => {
    const st = (action: DsnRecipient['action'], status: string) =>
      parse(buildDsn(input({ kind: action === 'failed' ? 'failure' : action === 'delayed' ? 'delay' : 'success', recipients: [{ address: 'bob@example.net', action, status }] }))).recipients[0]!.status;
    expect(st('delayed', '5.2.2')).toBe('4.2.2');
    expect(st('delayed', 'x')).toBe('4.0.0');
    expect(st('failed', '4.4.7')).toBe('4.4.7'); // expired in the queue, as Postfix reports it
    expect(st('failed', '2.0.0')).toBe('5.0.0');
    expect(st('relayed', '5.0.0')).toBe('2.0.0');
  });
});

describe('SMTPUTF8 (RFC 6533)', () => {
  it('uses the global types when an address is not ASCII', () => {
    const dsn = buildDsn(
      input({
        envelope: envelope({ sender: 'jürgen@example.org', smtputf8: true }),
        recipients: [failed({ address: '用户@example.net', orcpt: 'utf-8;' + [...Buffer.from('用户@example.net')].map((b) => (b > 0x7e ? '+' + b.toString(16).toUpperCase() : String.fromCharCode(b))).join(''), diagnostic: { type: 'smtp', text: '550 5.1.1 用户不存在' } })],
      }),
    );
    expect(dsn.smtputf8).toBe(true);
    expect(dsn.eightBit).toBe(true);
    const p = parse(dsn);
    expect(p.reportType).toBe('global-delivery-status');
    expect(p.parts).toEqual(['text/plain', 'message/global-delivery-status', 'message/global']);
    expect(p.recipients[0]).toMatchObject({ 'final-recipient': 'utf-8; 用户@example.net', 'original-recipient': 'utf-8;用户@example.net', 'diagnostic-code': 'smtp; 550 5.1.1 用户不存在' });
    expect(flat(p.text)).toContain('<用户@example.net>: host mx.example.net said: 550 5.1.1 用户不存在');
  });

  it('keeps the classic types and ASCII-only fields otherwise', () => {
    const dsn = buildDsn(input({ recipients: [failed({ diagnostic: { type: 'smtp', text: '550 5.1.1 用户不存在' } })] }));
    expect(dsn.smtputf8).toBe(false);
    const p = parse(dsn);
    expect(p.parts[1]).toBe('message/delivery-status');
    expect(p.recipients[0]!['diagnostic-code']).toBe('smtp; 550 5.1.1 ?????');
    expect(buildDsn(input({ envelope: envelope({ smtputf8: true }) })).smtputf8).toBe(true);
  });
});

describe('wantsNotice', () => {
  const env = envelope();
  const rc = (notify?: Recipient['notify']): Recipient => ({ address: 'bob@example.net', ...(notify ? { notify } : {}) });
  const kinds = ['failure', 'delay', 'success'] as const;
  const row = (r: Recipient, e = env, opts?: { delayByDefault?: boolean }) => kinds.map((k) => wantsNotice(e, r, k, opts));

  it('follows NOTIFY', () => {
    expect(row(rc())).toEqual([true, false, false]);
    expect(row(rc(), env, { delayByDefault: true })).toEqual([true, true, false]);
    expect(row(rc(['NEVER']))).toEqual([false, false, false]);
    expect(row(rc(['NEVER']), env, { delayByDefault: true })).toEqual([false, false, false]);
    expect(row(rc(['SUCCESS']))).toEqual([false, false, true]);
    expect(row(rc(['FAILURE', 'DELAY']))).toEqual([true, true, false]);
    expect(row(rc(['SUCCESS', 'FAILURE', 'DELAY']))).toEqual([true, true, true]);
    expect(row(rc(['SUCCESS']), env, { delayByDefault: true })).toEqual([false, false, true]);
  });

  it('never for the null sender', () => {
    const nul = envelope({ sender: '' });
    for (const r of [rc(), rc(['SUCCESS', 'FAILURE', 'DELAY'])]) expect(row(r, nul, { delayByDefault: true })).toEqual([false, false, false]);
  });
});

describe('enhancedStatus', () => {
  it.each([
    ['550 5.1.1 no such user', undefined, '5.1.1'],
    ['550-5.1.1 first line\r\n550 5.1.1 second', undefined, '5.1.1'],
    ['550 no', undefined, '5.0.0'],
    ['421 closing', undefined, '4.0.0'],
    ['421 4.7.0 try later', undefined, '4.7.0'],
    ['550 4.2.2 mailbox full', undefined, '5.2.2'],
    ['452 5.2.2 full', undefined, '4.2.2'],
    ['250 2.0.0 Ok', undefined, '2.0.0'],
    ['550 5.1.10 null mx', undefined, '5.1.10'],
    ['5.7.1 our own reason', undefined, '5.7.1'],
    ['connection refused', '4.4.1', '4.4.1'],
    ['connection refused', undefined, '5.0.0'],
    ['', '4.0.0', '4.0.0'],
    ['5501 odd', '4.0.0', '4.0.0'],
    ['550 5.1.1x not a code', undefined, '5.0.0'],
  ])('%j → %s', (reply, fallback, want) => {
    expect(enhancedStatus(reply, fallback)).toBe(want);
  });
});

describe('xtext', () => {
  it('decodes', () => {
    expect(decodeXtext('a+2Bb@x.example')).toBe('a+b@x.example');
    expect(decodeXtext('+3D+20+2b')).toBe('= +');
    expect(decodeXtext('a+zz')).toBe('a+zz');
    expect(decodeXtext('+C3+BC')).toBe('ü');
    expect(decodeOrcpt('RFC822;a+2Bb@x.example')).toEqual({ type: 'rfc822', address: 'a+b@x.example' });
    expect(decodeOrcpt('utf-8;j\\x{FC}rgen@x.example')).toEqual({ type: 'utf-8', address: 'jürgen@x.example' });
  });

  it('finds the header block', () => {
    expect(headerBlock(Buffer.from('A: b\r\n\r\nbody\r\n')).toString()).toBe('A: b\r\n');
    expect(headerBlock(Buffer.from('A: b\r\nC: d')).toString()).toBe('A: b\r\nC: d\r\n');
    expect(headerBlock(Buffer.from('\r\nbody\r\n')).length).toBe(0);
  });
});
