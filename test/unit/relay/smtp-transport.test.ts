import { describe, expect, it } from 'vitest';
import { classifyReply } from '../../../src/relay/index.js';

const r = (code: number) => ({ code });

describe('classifyReply', () => {
  it('treats a 5xx to MAIL, RCPT, DATA or the end of data as permanent', () => {
    expect(classifyReply(r(550), 'mail')).toBe('failed');
    expect(classifyReply(r(553), 'rcpt')).toBe('failed');
    expect(classifyReply(r(554), 'data')).toBe('failed');
    expect(classifyReply(r(552), 'dot')).toBe('failed');
  });

  it('treats 4xx and 503 as temporary, and 2xx as delivered', () => {
    expect(classifyReply(r(450), 'rcpt')).toBe('deferred');
    expect(classifyReply(r(451), 'dot')).toBe('deferred');
    expect(classifyReply(r(503), 'rcpt')).toBe('deferred');
    expect(classifyReply(r(421), 'mail')).toBe('deferred');
    expect(classifyReply(r(250), 'dot')).toBe('delivered');
  });

  it('never bounces for connection-level 5xx: greeting, HELO, refused STARTTLS', () => {
    expect(classifyReply(r(554), 'greeting')).toBe('deferred');
    expect(classifyReply(r(502), 'starttls')).toBe('deferred');
    expect(classifyReply(r(521), 'helo')).toBe('deferred');
  });
});
