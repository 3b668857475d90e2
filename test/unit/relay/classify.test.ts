/**
 * The reply-classification table against reply lines real servers send. The transport's verdict
 * comes from the first digit (5xx failed, 4xx deferred), as classifyError gives it for a reply to
 * MAIL, RCPT or DATA; the table corrects the replies whose code misleads.
 */
import { describe, expect, it } from 'vitest';
import { ReplyClassifier } from '../../../src/relay/classify.js';
import type { RecipientOutcome } from '../../../src/relay/outcome.js';

const transportVerdict = (reply: string): RecipientOutcome['status'] => (reply.startsWith('5') ? 'failed' : 'deferred');
const classify = (reply: string, c = new ReplyClassifier()) =>
  c.classify({ recipient: 'b@example.net', status: transportVerdict(reply), reply });

describe('reply classification', () => {
  it.each([
    // Size refusals (RFC 1870 552, RFC 3463 X.3.4 / X.2.3): permanent, whatever else they say.
    ['Postfix, MAIL FROM with SIZE=', '552 5.3.4 Message size exceeds fixed limit', 'failed'],
    ['Postfix, end of DATA', '552 5.3.4 Error: message file too big', 'failed'],
    ['Exim', '552 Message size exceeds maximum permitted', 'failed'],
    ['Exchange', '552 5.3.4 Message size exceeds fixed maximum message size', 'failed'],
    ['Gmail', "552-5.2.3 Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?answer=8770 to review our size guidelines.", 'failed'],
    ['sendmail', '552 5.2.3 Message size exceeds maximum value', 'failed'],
    ['qmail', '552 sorry, that message size exceeds my databytes limit (#5.3.4)', 'failed'],
    ['smtp-server (Node)', '552 Error: message exceeds fixed maximum message size', 'failed'],
    ['a size text without enhanced code', '552 message size 5242880 larger than allowed 1048576', 'failed'],
    ['a size refusal that also says "try again later"', '552 5.3.4 Message too big, try again later with a smaller message', 'failed'],
    // Too many recipients: RFC 5321 4.5.3.1.10 says a 552 for that is temporary.
    ['RFC 5321 552 for too many recipients', '552 5.5.3 Too many recipients', 'deferred'],
    ['552 for too many recipients, no enhanced code', '552 Too many recipients', 'deferred'],
    ['Postfix, too many recipients', '452 4.5.3 Error: too many recipients', 'deferred'],
    // Storage that is short now: temporary, even when it talks about the message size.
    ['Postfix, insufficient storage', '452 4.3.1 Insufficient system storage', 'deferred'],
    ['insufficient storage for this size', '452 4.3.1 Message size exceeds available storage', 'deferred'],
    ['a 5xx with a 4.x.x enhanced code', '552 4.3.1 Insufficient system storage', 'deferred'],
    // Temporary trouble worded as a 5xx, and plain answers that stay as they are.
    ['Gmail rate limit', '450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.', 'deferred'],
    ['a 5xx that says try again later', '550 5.7.1 Rate limit exceeded, try again later', 'deferred'],
    ['Gmail, no such user', '550-5.1.1 The email account that you tried to reach does not exist.', 'failed'],
    ['Postfix, relay denied', '554 5.7.1 <b@example.net>: Relay access denied', 'failed'],
    ['a full mailbox', '552 5.2.2 Mailbox full', 'failed'],
  ] as const)('%s: "%s" is %s', (_who, reply, want) => {
    expect(classify(reply).status).toBe(want);
  });

  it('says why it changed a verdict, and leaves a delivery alone', () => {
    expect(classify('552 5.5.3 Too many recipients').note).toMatch(/RFC 5321/);
    expect(classify('550 greylisted, try again later').note).toMatch(/temporary/);
    expect(classify('552 5.3.4 Message size exceeds fixed limit').note).toBeUndefined(); // already failed
    const ok: RecipientOutcome = { recipient: 'b@example.net', status: 'delivered', reply: '250 2.0.0 Ok: queued, message size 10' };
    expect(new ReplyClassifier().classify(ok)).toBe(ok);
  });

  it("the admin's rules come first", () => {
    const c = new ReplyClassifier([{ match: '^552 5\\.3\\.4 .*fixed limit', action: 'defer', reason: 'this partner raises its limit at night' }]);
    expect(classify('552 5.3.4 Message size exceeds fixed limit', c)).toMatchObject({ status: 'deferred', note: 'this partner raises its limit at night' });
    expect(classify('552 5.3.4 Error: message file too big', c).status).toBe('failed');
  });

  it('names the outcome a rule gives; a transport\'s own, more precise one stays', () => {
    expect(classify('552 5.3.4 Message size exceeds fixed limit').kind).toBe('bounced_size');
    expect(classify('550 greylisted, try again later').kind).toBe('deferred_remote');
    expect(classify('550 5.1.1 no such user').kind).toBeUndefined(); // no rule: the status's usual one
    const c = new ReplyClassifier([{ match: '^450 4\\.1\\.1', action: 'bounce' }]);
    expect(classify('450 4.1.1 unknown user', c)).toMatchObject({ status: 'failed', kind: 'bounced_remote' });
    const own: RecipientOutcome = { recipient: 'b@example.net', status: 'failed', reply: '552 5.3.4 message too big', kind: 'bounced_size' };
    expect(new ReplyClassifier().classify(own)).toBe(own);
  });
});
