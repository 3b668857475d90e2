/**
 * The list of log event codes (src/log/events.ts) against the source: every code a log call can
 * write is listed, every listed code is written somewhere, and a call with a literal level uses a
 * level the list gives. Admins' alert rules and the admin API depend on the list being complete.
 */
import { describe, expect, it } from 'vitest';
import { EVENTS, eventLevels, isEventCode, type EventCode, type EventLevel } from '../../../src/log/events.js';
import { EVENT_CODE, scanEvents } from './event-scan.js';

const uses = scanEvents('src');

describe('log event codes', () => {
  it('finds the log calls (the scan itself works)', () => {
    // A scan that silently found nothing would pass every check below.
    expect(uses.length).toBeGreaterThan(100);
    const relay = uses.find((u) => u.file === 'relay/group.ts' && u.codes.includes('relay.delivered'));
    expect(relay?.level).toBe('info');
    // Templates expand: roles/run.ts writes one code per role.
    expect(uses.flatMap((u) => u.codes)).toContain('portal.stopping');
  });

  it('every event: expression yields at least one code', () => {
    const empty = uses.filter((u) => u.codes.length === 0).map((u) => `src/${u.file}:${u.line}: ${u.source}`);
    expect(empty).toEqual([]);
  });

  it('every code used in src/ is listed in log/events.ts', () => {
    const unlisted = uses.flatMap((u) => u.codes.filter((c) => !isEventCode(c)).map((c) => `src/${u.file}:${u.line}: ${c}`));
    expect(unlisted).toEqual([]);
  });

  it('every listed code is used in src/', () => {
    const used = new Set(uses.flatMap((u) => u.codes));
    expect(Object.keys(EVENTS).filter((c) => !used.has(c))).toEqual([]);
  });

  it('a log call with a literal level uses a listed level', () => {
    const wrong = uses.flatMap((u) =>
      u.level
        ? u.codes
            .filter(isEventCode)
            .filter((c) => !eventLevels(c).includes(u.level as EventLevel))
            .map((c) => `src/${u.file}:${u.line}: ${c} at ${u.level}, listed ${eventLevels(c).join('|')}`)
        : [],
    );
    expect(wrong).toEqual([]);
  });

  it('codes are well-formed and every entry has a meaning', () => {
    for (const [code, info] of Object.entries(EVENTS)) {
      expect(code).toMatch(EVENT_CODE);
      expect(info.meaning.length, code).toBeGreaterThan(10);
      expect(eventLevels(code as EventCode).length, code).toBeGreaterThan(0);
    }
  });
});
