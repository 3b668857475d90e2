/**
 * smtp.min_free_space at MAIL FROM (Postfix's queue_minfree): the decision table, the SIZE=
 * parameter, and what happens when the file system cannot be asked.
 */
import type { SMTPServerAddress } from 'smtp-server';
import { describe, expect, it } from 'vitest';
import { checkStorage, declaredSize, storageVerdict } from '../../../src/smtpd/storage.js';

const MB = 1024 * 1024;
const mail = (args: Record<string, string | boolean> | false = false): SMTPServerAddress => ({ address: 'a@example.org', args }) as SMTPServerAddress;
const line = (v: ReturnType<typeof storageVerdict>) => (v.ok ? 'ok' : v.error.smtpLine);

describe('free space at MAIL FROM', () => {
  it('refuses below min_free_space, and when the declared size would take it below', () => {
    const refused = '452 4.3.1 insufficient system storage';
    const table: [free: number, minFree: number, declared: number, expected: string][] = [
      [200 * MB, 100 * MB, 0, 'ok'],
      [100 * MB, 100 * MB, 0, 'ok'], // exactly at the threshold
      [100 * MB - 1, 100 * MB, 0, refused],
      [0, 100 * MB, 0, refused],
      [150 * MB, 100 * MB, 50 * MB, 'ok'],
      [150 * MB, 100 * MB, 50 * MB + 1, refused],
      [10 * MB, 0, 0, 'ok'], // 0 turns the threshold off…
      [10 * MB, 0, 11 * MB, refused], // …but a message that cannot fit at all is still refused
    ];
    for (const [free, minFree, declared, expected] of table) expect([free, minFree, declared, line(storageVerdict(free, minFree, declared))]).toEqual([free, minFree, declared, expected]);
    const v = storageVerdict(0, 1, 0);
    expect(!v.ok && v.reason).toBe('storage');
  });

  it('reads SIZE= as smtp-server passes it (a digit string), anything else as undeclared', () => {
    expect(declaredSize(mail({ SIZE: '12345' }))).toBe(12345);
    expect(declaredSize(mail({ SIZE: '0' }))).toBe(0);
    expect(declaredSize(mail({ BODY: '8BITMIME' }))).toBe(0);
    expect(declaredSize(mail())).toBe(0);
  });

  it('asks the file system only when there is something to check', async () => {
    let asked = 0;
    const free = async () => (asked++, 5 * MB);
    const noError = () => {
      throw new Error('unexpected');
    };
    expect(await checkStorage(free, 0, mail(), noError)).toEqual({ ok: true });
    expect(asked).toBe(0);
    expect(line(await checkStorage(free, 0, mail({ SIZE: String(6 * MB) }), noError))).toMatch(/^452 4\.3\.1 /);
    expect(line(await checkStorage(free, 10 * MB, mail(), noError))).toMatch(/^452 4\.3\.1 /);
    expect(await checkStorage(free, 1 * MB, mail({ SIZE: String(MB) }), noError)).toEqual({ ok: true });
    expect(asked).toBe(3);
  });

  it('lets mail in when statfs fails (the writes are checked), and reports the failure', async () => {
    const errors: unknown[] = [];
    const broken = async () => {
      throw Object.assign(new Error('ENOSYS: function not implemented, statfs'), { code: 'ENOSYS' });
    };
    expect(await checkStorage(broken, 100 * MB, mail(), (e) => errors.push(e))).toEqual({ ok: true });
    expect(errors).toHaveLength(1);
  });
});
