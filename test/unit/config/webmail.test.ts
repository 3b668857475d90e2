/**
 * postern.yaml's webmail section: defaults that read like a letter, and every mistake named with
 * its file, line and key — a notice without the link, a From: that is no address, sizes and
 * durations that are no such thing, a retention that would empty mailboxes within the hour.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NOTICE_SUBJECT, DEFAULT_NOTICE_TEXT } from '../../../src/config/webmail.js';
import { formatConfigProblem } from '../../../src/core/index.js';
import { yamlConfigChecker } from '../../helpers/config.js';

const yc = yamlConfigChecker();

async function problems(yaml: string): Promise<string[]> {
  const r = await yc.check(yaml);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems.map(formatConfigProblem);
}

describe('config: webmail', () => {
  it('defaults: 90 days, the notice from postmaster at the host, no size limits of its own', async () => {
    const r = await yc.check('hostname: mail.example.org\n');
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.webmail).toEqual({ retention: 90 * 86_400_000, notice_subject: DEFAULT_NOTICE_SUBJECT, notice_text: DEFAULT_NOTICE_TEXT, notice_from: 'postmaster@mail.example.org' });
    // The default text names the link, the sender and the organisation, and says the password comes another way.
    for (const p of ['{url}', '{sender}', '{organisation}', 'never sent by e-mail']) expect(DEFAULT_NOTICE_TEXT).toContain(p);
  });

  it('takes the admin\'s texts, sizes and address (canonical)', async () => {
    const r = await yc.check(
      'hostname: mail.example.org\nwebmail:\n  retention: 30d\n  max_message_size: 20MB\n  max_mailbox: 1GB\n  notice_from: NoReply@Bücher.Example\n  notice_subject: "Post von {sender}"\n  notice_text: "Bitte hier lesen: {url}"\n',
    );
    if (!r.ok) throw new Error(r.problems.map(formatConfigProblem).join('\n'));
    expect(r.config.webmail).toEqual({
      retention: 30 * 86_400_000,
      max_message_size: 20 * 1024 * 1024,
      max_mailbox: 1024 ** 3,
      notice_from: 'NoReply@xn--bcher-kva.example',
      notice_subject: 'Post von {sender}',
      notice_text: 'Bitte hier lesen: {url}',
    });
  });

  it('names each mistake with file, line and key', async () => {
    const file = join(yc.dir(), 'postern.yaml');
    const p = await problems('webmail:\n  retention: 10m\n  max_mailbox: lots\n  notice_text: "Read it on our site"\n  notice_from: "not an address"\n  colour: blue\n');
    expect(p).toEqual([
      `${file}:2:14: webmail.retention: expected a duration of at least 1h`,
      `${file}:3:16: webmail.max_mailbox: "lots" — expected a size like 50MB`,
      `${file}:6:3: webmail.colour: unknown key (known keys: retention, notice_subject, notice_text, notice_from, max_message_size, max_mailbox)`,
    ]);
    // The checks after the schema (templates, address) run once the schema is satisfied.
    const q = await problems('webmail:\n  notice_text: "Read it on our site"\n  notice_from: "not an address"\n');
    expect(q).toEqual([
      `${file}:2:16: webmail.notice_text: the notice must hold the mailbox link: put {url} into it`,
      `${file}:3:16: webmail.notice_from: "not an address" — expected a mail address like noreply@example.org`,
    ]);
  });
});
