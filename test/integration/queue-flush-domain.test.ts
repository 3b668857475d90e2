/**
 * `postern queue flush --domain D` (the real CLI), the admin's ETRN: entries with a recipient in
 * D (or, with @D, below it) leave deferred/ for outgoing/, where the relay takes them at once;
 * everything else keeps waiting. Bad usage is refused with exit 2 and nothing moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Spool } from '../../src/spool/index.js';
import { tempDir } from '../helpers/config.js';
import { freePort, runPostern, writeGatewayConfig } from '../helpers/gateway.js';
import { envelope, queueMessage } from '../helpers/relay.js';

describe('postern queue flush --domain', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let config: string;
  let spool: Spool;
  const names: Record<string, string> = {};

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('postern-flush-domain-cli-'));
    config = await writeGatewayConfig(dir, await freePort());
    spool = await Spool.open(dir);
    const rcpts: Record<string, string> = {
      top: 'a@partner.example',
      below: 'b@eu.partner.example',
      idn: 'c@bücher.example',
      lookalike: 'd@partner.example.evil.test',
    };
    for (const [k, rcpt] of Object.entries(rcpts)) {
      names[k] = await queueMessage(spool, envelope('alice@example.com', [rcpt]), Buffer.from('Subject: x\r\n\r\nx\r\n'));
      await spool.move('outgoing', 'deferred', names[k]!);
    }
  });
  afterAll(async () => {
    await cleanup();
  });

  it('refuses a bad domain, an id with --domain, and --domain on another command', async () => {
    for (const args of [
      ['queue', 'flush', '--domain', 'not a domain'],
      ['queue', 'flush', '--domain', '@'],
      ['queue', 'flush', names.top!, '--domain', 'partner.example'],
      ['queue', 'hold', 'ALL', '--domain', 'partner.example'],
    ]) {
      const r = await runPostern(config, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--domain|not a domain/);
    }
    expect((await spool.list('deferred')).length).toBe(4);
  });

  it('flushes the domain alone, then with @ its subdomains, by U-label or A-label', async () => {
    const exact = await runPostern(config, ['queue', 'flush', '--domain', 'PARTNER.example.']);
    expect(exact).toMatchObject({ code: 0, stdout: expect.stringContaining(`flushed: deferred/${names.top}`) });
    expect(exact.stdout).toContain('-- 1 entry flushed');

    const sub = await runPostern(config, ['queue', 'flush', '--domain', '@partner.example']);
    expect(sub).toMatchObject({ code: 0, stdout: expect.stringContaining(`flushed: deferred/${names.below}`) });
    expect(sub.stdout).toContain('-- 1 entry flushed');

    const idn = await runPostern(config, ['queue', 'flush', '--domain', 'xn--bcher-kva.example']);
    expect(idn).toMatchObject({ code: 0, stdout: expect.stringContaining(`flushed: deferred/${names.idn}`) });

    expect(await runPostern(config, ['queue', 'flush', '--domain', '@partner.example'])).toMatchObject({ code: 0, stdout: expect.stringContaining('nothing to do') });
    expect(await spool.list('deferred')).toEqual([names.lookalike]);
    expect((await spool.list('outgoing')).sort()).toEqual([names.top, names.below, names.idn].sort());
  });
});
