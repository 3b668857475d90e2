import type { NodemailerError } from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { classifyError } from '../../../src/relay/index.js';

const err = (code: string, responseCode?: number): NodemailerError => Object.assign(new Error('x'), { code, responseCode }) as NodemailerError;

describe('classifyError', () => {
  it('treats a 5xx to MAIL, RCPT or DATA as permanent', () => {
    expect(classifyError(err('EENVELOPE', 550))).toBe('failed');
    expect(classifyError(err('EENVELOPE', 553))).toBe('failed');
    expect(classifyError(err('EMESSAGE', 554))).toBe('failed');
  });

  it('treats 4xx, 503 and anything without a reply code as temporary', () => {
    expect(classifyError(err('EENVELOPE', 450))).toBe('deferred');
    expect(classifyError(err('EMESSAGE', 451))).toBe('deferred');
    expect(classifyError(err('EENVELOPE', 503))).toBe('deferred');
    expect(classifyError(err('ECONNECTION'))).toBe('deferred');
    expect(classifyError(err('ETIMEDOUT'))).toBe('deferred');
    expect(classifyError(err('ESOCKET'))).toBe('deferred');
  });

  it('never bounces for connection-level 5xx: greeting, refused STARTTLS', () => {
    expect(classifyError(err('EPROTOCOL', 554))).toBe('deferred');
    expect(classifyError(err('ETLS', 502))).toBe('deferred');
    expect(classifyError(err('ECONNECTION', 521))).toBe('deferred');
  });
});
