/**
 * The worker's budgets in postern.yaml (`worker:`): transform_timeout (60 s) and
 * max_decompressed_size (2 × smtp.max_message_size unless set), and their refusals with the line.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigProblem } from '../../../src/core/index.js';
import { yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();

describe('worker: limits in the config', () => {
  it('defaults: 60 s, and decompressed data up to twice the largest message', async () => {
    const r = await yc.check('internal_domains: [example.com]\nsmtp:\n  max_message_size: 20MB\n');
    expect(r.ok && r.config.worker).toEqual({ transform_timeout: 60_000, retry: 60_000, max_decompressed_size: 40 * 1024 * 1024 });
  });

  it('set explicitly', async () => {
    const r = await yc.check('worker:\n  transform_timeout: 2m\n  retry: 5m\n  max_decompressed_size: 300MB\n');
    expect(r.ok && r.config.worker).toEqual({ transform_timeout: 120_000, retry: 300_000, max_decompressed_size: 300 * 1024 * 1024 });
  });

  it('refusals name the line and the key', async () => {
    const r = await yc.check('worker:\n  transform_timeout: 0s\n  max_decompressed_size: 12\n  max_nesting: 3\n  retry: 0s\n');
    if (r.ok) throw new Error('accepted');
    const file = join(yc.dir(), 'postern.yaml');
    expect(r.problems.map(formatConfigProblem)).toEqual([
      `${file}:2:22: worker.transform_timeout: expected a duration of at least 1s`,
      `${file}:5:10: worker.retry: expected a duration of at least 1s`,
      `${file}:3:26: worker.max_decompressed_size: expected a size of at least 1KB`,
      `${file}:4:3: worker.max_nesting: unknown key (known keys: transform_timeout, retry, max_decompressed_size)`,
    ]);
  });
});
