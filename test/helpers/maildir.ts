/** Finding what the gateway delivered into its test maildir, by recipient and a token of the message. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitUntil } from './send.js';

export interface Maildir {
  /** The path of the delivered file for `rcpt` whose text contains `token`, if any yet. */
  delivered(rcpt: string, token: string): Promise<string | undefined>;
  /** Wait for it (default 20 s) and return its path. */
  waitDelivered(rcpt: string, token: string, ms?: number): Promise<string>;
}

export function maildirOf(dir: () => string): Maildir {
  const delivered = async (rcpt: string, token: string) => {
    const nd = join(dir(), 'maildir', 'new');
    for (const n of await readdir(nd).catch(() => [] as string[])) {
      const f = await readFile(join(nd, n), 'latin1');
      if (f.includes(`\r\nDelivered-To: ${rcpt}\r\n`) && f.includes(token)) return join(nd, n);
    }
    return undefined;
  };
  return {
    delivered,
    async waitDelivered(rcpt, token, ms = 20_000) {
      let file: string | undefined;
      await waitUntil(async () => (file = await delivered(rcpt, token)) !== undefined, ms, `delivery of ${token} to ${rcpt}`);
      return file!;
    },
  };
}
