/**
 * flushDeferred with an ETRN pattern (RFC 1985 §5.3): "example.com" is that domain, "@example.com"
 * it and its subdomains; both spelled as the admin or the client likes (U-label or A-label, any
 * case, a trailing dot), compared in the A-label form. Look-alikes are other domains.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { domainMatcher, flushDeferred, Spool } from '../../../src/spool/index.js';
import { tempDir } from '../../helpers/config.js';
import { envelope, queueMessage } from '../../helpers/relay.js';

describe('domainMatcher', () => {
  it('names one domain, or with @ the domain and its subdomains', () => {
    const exact = domainMatcher('example.com');
    expect(['example.com', 'EXAMPLE.COM'].map(exact)).toEqual([true, true]);
    expect(['mx.example.com', 'notexample.com', 'example.com.evil.test', 'example.co'].map(exact)).toEqual([false, false, false, false]);
    const sub = domainMatcher('@example.com');
    expect(['example.com', 'mx.example.com', 'a.b.example.com'].map(sub)).toEqual([true, true, true]);
    // A suffix is not a subdomain: the label boundary counts.
    expect(['notexample.com', 'xexample.com', 'example.com.evil.test', 'com'].map(sub)).toEqual([false, false, false, false]);
  });

  it('takes U-labels and A-labels alike and ignores case and a trailing dot', () => {
    for (const p of ['bücher.example', 'BÜCHER.example.', 'xn--bcher-kva.example', 'XN--BCHER-KVA.EXAMPLE']) {
      expect(domainMatcher(p)('xn--bcher-kva.example'), p).toBe(true);
    }
    expect(domainMatcher('@bücher.example')('shop.xn--bcher-kva.example')).toBe(true);
  });

  it('does not match a look-alike: Cyrillic letters, a different umlaut, digits for letters', () => {
    const m = domainMatcher('@example.com');
    // "exаmple.com" with a Cyrillic а (U+0430) is xn--exmple-4nf.com: another domain.
    expect(m('xn--exmple-4nf.com')).toBe(false);
    expect(domainMatcher('bücher.example')('xn--bcher-eva.example')).toBe(false); // bûcher
    expect(m('examp1e.com')).toBe(false);
  });
});

describe('flushDeferred(spool, "ALL", pattern)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let spool: Spool;
  const body = Buffer.from('Subject: etrn\r\n\r\nx\r\n');

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-flush-domain-'));
    spool = await Spool.open(dir);
  });
  afterEach(() => cleanup());

  /** A deferred entry for these recipients; its outgoing name. */
  async function deferred(...rcpts: string[]): Promise<string> {
    const name = await queueMessage(spool, envelope('alice@example.org', rcpts), body);
    await spool.move('outgoing', 'deferred', name);
    return name;
  }

  it('moves back to outgoing/ exactly the entries with a recipient in the pattern', async () => {
    const top = await deferred('a@example.com');
    const below = await deferred('b@mx.example.com');
    const mixed = await deferred('c@other.test', 'd@EXAMPLE.com');
    const lookalike = await deferred('e@notexample.com', 'f@example.com.evil.test');
    const cyrillic = await deferred('g@xn--exmple-4nf.com');

    expect((await flushDeferred(spool, 'ALL', 'example.com')).done.sort()).toEqual([`deferred/${top}`, `deferred/${mixed}`].sort());
    expect((await spool.list('deferred')).sort()).toEqual([below, lookalike, cyrillic].sort());
    expect((await flushDeferred(spool, 'ALL', '@example.com')).done).toEqual([`deferred/${below}`]);
    expect((await spool.list('deferred')).sort()).toEqual([lookalike, cyrillic].sort());
    expect((await spool.list('outgoing')).sort()).toEqual([top, below, mixed].sort());
  });

  it('finds a recipient written with a U-label by the A-label pattern, and the other way round', async () => {
    const utf8 = await deferred('kunde@bücher.example');
    const ascii = await deferred('kasse@shop.xn--bcher-kva.example');
    expect((await flushDeferred(spool, 'ALL', 'xn--bcher-kva.example')).done).toEqual([`deferred/${utf8}`]);
    expect((await flushDeferred(spool, 'ALL', '@bücher.example')).done).toEqual([`deferred/${ascii}`]);
    expect(await spool.list('deferred')).toEqual([]);
  });

  it('leaves everything in place when nothing matches', async () => {
    const name = await deferred('a@example.net');
    expect(await flushDeferred(spool, 'ALL', '@example.com')).toEqual({ done: [], busy: [] });
    expect(await spool.list('deferred')).toEqual([name]);
  });
});
