/**
 * Maildir delivery on a file system that fills up (issue 14, fault 3): a short write is continued,
 * a write that cannot finish defers the recipient and leaves no partial file — never a
 * "delivered" for a truncated message.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { deliverMaildir } from '../../../src/relay/index.js';
import { tempDir } from '../../helpers/config.js';
import { fillingDisk, type FillingDisk } from '../../helpers/filling-disk.js';

const body = Buffer.from('Subject: t\r\n\r\n' + 'line of the body\r\n'.repeat(5000), 'latin1');
const msg = (recipients: string[]) => ({ queueId: 'Q', sender: 'alice@example.org', recipients, body, eightBit: false });

describe('maildir delivery on a filling disk', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let disk: FillingDisk;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('postern-maildir-full-'));
    disk = await fillingDisk(dir);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await cleanup();
  });

  it('writes the whole message through short writes', async () => {
    disk.chunk = 4000;
    const md = join(dir, 'md');
    const out = await deliverMaildir(md, msg(['bob@example.com']));
    expect(out.map((o) => o.status)).toEqual(['delivered']);
    const [name] = await readdir(join(md, 'new'));
    const data = await readFile(join(md, 'new', name!));
    expect(data.subarray(data.length - body.length).equals(body)).toBe(true);
    expect(disk.calls).toBeGreaterThan(body.length / 4000);
  });

  it('defers what does not fit, with the reason, and leaves no partial file', async () => {
    const md = join(dir, 'md');
    disk.budget = body.length + 500; // one copy fits, the second does not
    const out = await deliverMaildir(md, msg(['a@example.com', 'b@example.com']));
    expect(out.map((o) => o.status)).toEqual(['delivered', 'deferred']);
    expect(out[1]!.reply).toMatch(/^451 4\.3\.0 maildir write failed: ENOSPC /);
    expect(await readdir(join(md, 'new'))).toHaveLength(1);
    expect(await readdir(join(md, 'tmp'))).toEqual([]);
  });
});
