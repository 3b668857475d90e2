/**
 * The outcome catalogue: every entry complete and consistent (RFC 3463 codes whose class agrees
 * with the reply code and the DSN action, listed log events, well-formed metric names), and its
 * texts rendering with their details — the wording the relay and notices already used.
 */
import { describe, expect, it } from 'vitest';
import {
  defaultOutcome,
  isOutcomeKind,
  NOTICE_OUTCOME,
  OUTCOME_KINDS,
  OUTCOMES,
  outcomeDiagnostic,
  outcomeLine,
  outcomeReply,
  outcomeText,
  parseMetric,
  type OutcomeSpec,
} from '../../../src/core/index.js';
import { isEventCode } from '../../../src/log/events.js';
import { statusFor } from '../../../src/dsn/status.js';

const entries = Object.entries(OUTCOMES) as [string, OutcomeSpec][];
/** RFC 3463 2: class.subject.detail, subject and detail 0–999 without leading zeros. */
const ENHANCED = /^([245])\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

describe('outcome catalogue', () => {
  it('covers every class the issue names', () => {
    const classes = new Set(entries.map(([, s]) => s.class));
    expect([...classes].sort()).toEqual(['bounced', 'deferred', 'delivered', 'dropped', 'held']);
    for (const k of ['delivered', 'relayed', 'deferred_remote', 'held_policy', 'held_encryption', 'held_poison', 'held_after_errors', 'bounced_policy', 'bounced_encryption', 'bounced_size', 'bounced_expired', 'dropped_policy', 'deferred_no_space']) {
      expect(isOutcomeKind(k), k).toBe(true);
    }
    expect(isOutcomeKind('toString')).toBe(false);
  });

  it.each(entries)('%s has every field, well-formed', (kind, s) => {
    expect(kind).toMatch(/^[a-z]+(_[a-z0-9]+)*$/);
    // Names start with their class (relayed/delivered are the delivered class).
    expect(kind.startsWith(s.class === 'delivered' ? '' : s.class)).toBe(true);
    expect(s.code).toBeGreaterThanOrEqual(200);
    expect(s.code).toBeLessThan(600);
    const m = ENHANCED.exec(s.status);
    expect(m, s.status).not.toBeNull();
    // The enhanced code's class is the reply code's class (RFC 3463 3).
    expect(m![1]).toBe(String(s.code)[0]);
    expect(s.text.length).toBeGreaterThan(0);
    expect(s.meaning.length).toBeGreaterThan(10);
    expect(['delivered', 'relayed', 'delayed', 'failed']).toContain(s.action);
    expect([null, 'failure', 'delay', 'success']).toContain(s.notice);
    expect(s.events.length).toBeGreaterThan(0);
    for (const e of s.events) expect(isEventCode(e), e).toBe(true);
  });

  it.each(entries)('%s: class, action, notice and codes agree', (_kind, s) => {
    const expected = { delivered: ['2', ['delivered', 'relayed']], dropped: ['2', ['delivered']], deferred: ['4', ['delayed']], held: ['4', ['delayed']], bounced: ['45', ['failed']] } as const;
    const [digits, actions] = expected[s.class];
    expect(digits).toContain(s.status[0]);
    expect(actions).toContain(s.action);
    // The status written in a notice is the catalogue's own (dsn/ would correct an inconsistent one).
    expect(statusFor(s.status, s.action)).toBe(s.status);
    if (s.notice === 'failure') expect(s.class).toBe('bounced');
    if (s.notice === 'success') expect(s.class).toBe('delivered');
    if (s.notice === 'delay') expect(s.class).toBe('deferred');
    // Nobody is told about a drop; a held message waits for an admin, not for a notice.
    if (s.class === 'dropped' || s.class === 'held') expect(s.notice).toBeNull();
  });

  it.each(entries)('%s has a Prometheus metric name for its class', (_kind, s) => {
    const { name, labels } = parseMetric(s.metric);
    expect(name).toBe(`postern_messages_${s.class}_total`);
    expect(Object.keys(labels).length).toBe(1);
  });

  it('gives each outcome its own metric series, except where two texts are one reason', () => {
    const byMetric = new Map<string, string[]>();
    for (const [k, s] of entries) byMetric.set(s.metric, [...(byMetric.get(s.metric) ?? []), k]);
    const shared = [...byMetric.values()].filter((ks) => ks.length > 1).map((ks) => ks.sort().join(' '));
    expect(shared.sort()).toEqual([
      'bounced_bad_domain bounced_bad_recipient bounced_bad_sender bounced_no_domain bounced_null_mx',
      'deferred_mx_no_address deferred_no_mx_host',
      'deferred_tls_not_offered deferred_tls_refused',
    ]);
  });

  it('renders the wording the relay and notices have always used', () => {
    expect(outcomeLine('bounced_policy', { reason: 'no mail to competitors' })).toBe('550 5.7.1 no mail to competitors');
    expect(outcomeLine('bounced_policy', { reason: 'two\r\nlines' })).toBe('550 5.7.1 two  lines');
    expect(outcomeLine('delivered', { file: '1700000000.M1P2.gw' })).toBe('250 2.0.0 delivered to maildir as 1700000000.M1P2.gw');
    expect(outcomeLine('bounced_bad_sender', {})).toBe('550 5.1.7 sender address contains line breaks');
    expect(outcomeText('bounced_expired', { reply: '451 4.7.1 greylisted' })).toBe('message expired in queue; last reply: 451 4.7.1 greylisted');
    expect(outcomeDiagnostic('deferred_connect', { peer: 'mx.example.net[192.0.2.1]', port: 25, error: 'Connection refused' })).toEqual({
      text: 'connect to mx.example.net[192.0.2.1]:25: Connection refused',
      dsn: '4.4.1',
    });
    expect(outcomeReply('held_encryption', { reason: 'no certificate for bob@partner.example' })).toEqual({ code: 451, status: '4.7.5', text: 'no certificate for bob@partner.example' });
    // A policy's reason may be UTF-8; the DSN writer decides how to show it.
    expect(outcomeText('bounced_policy', { reason: 'Zustellung verweigert: ä' })).toBe('Zustellung verweigert: ä');
  });

  it('every template slot is filled by the details its type asks for', () => {
    for (const kind of OUTCOME_KINDS) {
      const slots = [...OUTCOMES[kind].text.matchAll(/\{([a-z]+)\}/g)].map((m) => m[1]!);
      const details = Object.fromEntries(slots.map((s) => [s, `<${s}>`]));
      // The details type is derived from the template; here every slot gets one.
      const text = outcomeText(kind, details as never);
      expect(text, kind).not.toMatch(/\{[a-z]+\}/);
      for (const s of slots) expect(text).toContain(`<${s}>`);
    }
  });

  it('keeps an unfilled slot visible rather than dropping words', () => {
    expect(outcomeText('deferred_connect', { peer: 'x[1]', error: 'e' } as never)).toBe('connect to x[1]:{port}: e');
  });

  it('maps statuses and notices to their usual outcomes', () => {
    expect(defaultOutcome('delivered')).toBe('relayed');
    expect(defaultOutcome('delivered', false)).toBe('delivered');
    expect(defaultOutcome('deferred')).toBe('deferred_remote');
    expect(defaultOutcome('failed')).toBe('bounced_remote');
    expect(OUTCOMES[NOTICE_OUTCOME.failure].action).toBe('failed');
    expect(OUTCOMES[NOTICE_OUTCOME.delay].action).toBe('delayed');
    expect(OUTCOMES[NOTICE_OUTCOME.success].action).toBe('delivered');
  });

  it('rejects malformed metric names', () => {
    expect(() => parseMetric('Postern-Bad')).toThrow();
    expect(() => parseMetric('postern_x_total{reason=policy}')).toThrow();
    expect(parseMetric('postern_x_total')).toEqual({ name: 'postern_x_total', labels: {} });
  });
});

describe('README outcome table', () => {
  it('lists every outcome with its class, reply and events', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync('README.md', 'utf8');
    for (const [kind, s] of entries) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${kind}\` |`));
      expect(row, `README.md has no row for ${kind}`).toBeDefined();
      expect(row).toContain(`| ${s.class} | \`${s.code} ${s.status}\``);
      for (const e of s.events) expect(row).toContain(`\`${e}\``);
    }
  });
});
