/**
 * `postern pdf password show|reset|set|delete --from A --to B` and `postern pdf list`: the PDF
 * passwords of sender–recipient pairs (issue 16). `--scope recipient` (without --from) names a
 * recipient's one password for all senders (`pdf.password_scope: recipient`).
 *
 * Secrets: `show` prints a password (audited in the store); `set` reads one from the environment
 * variable POSTERN_PDF_PASSWORD or from stdin, never from the command line (`ps`, shell history).
 * `reset` and `set` of a pair's password tell the sender at once: the notice is queued in the
 * spool's outgoing/ like a bounce the relay writes, and the running relay delivers it. A
 * recipient's password (scope recipient) has no one sender: whoever writes next is told.
 */
import { canonicalAddress } from '../core/address.js';
import { describePdfPair, openKeyStoreWithPortal, type KeyStore, type PdfPair, type PdfPasswordScope } from '../keystore/index.js';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { Spool } from '../spool/index.js';
import { describeTold, pdfPasswordRow, resetPdfPasswordAndTell, setPdfPasswordAndTell } from '../worker/pdf-password-admin.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { cliActor, passwordInput, withStore } from './keys-common.js';

export const PDF_PASSWORD_ENV = 'POSTERN_PDF_PASSWORD';

const USAGE =
  'pdf password show|reset|set|delete (--from A | --scope recipient) --to B  (set: the password from $POSTERN_PDF_PASSWORD or stdin) | pdf list [--from A | --scope recipient] [--to B] [--json]';

export async function pdfCommand(argv: string[], io: CliIo, stdin: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<number> {
  const { values, positionals } = parse(argv, {
    from: { type: 'string' },
    to: { type: 'string' },
    scope: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [sub, action, ...extra] = positionals;
  if (sub === 'list') {
    if (action !== undefined) throw new UsageError(`pdf list takes no arguments; usage: postern ${USAGE}`);
    if (values.scope !== undefined && values.scope !== 'recipient') throw new UsageError('pdf list --scope takes only recipient (the passwords all senders share)');
    if (values.scope && values.from !== undefined) throw new UsageError('--scope recipient is one password for all senders: leave out --from');
    const filter = {
      sender: values.scope ? '*' : values.from !== undefined ? address('--from', values.from) : undefined,
      recipient: values.to !== undefined ? address('--to', values.to) : undefined,
    };
    return withStore(values.config, (store) => list(store, io, filter, values.json === true));
  }
  if (sub !== 'password') throw new UsageError(`unknown pdf command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  // Arguments are not echoed: a password typed here by mistake would land in the scrollback too.
  if (!['show', 'reset', 'set', 'delete'].includes(action ?? '')) throw new UsageError(`pdf password takes show, reset, set or delete; usage: postern ${USAGE}`);
  if (extra.length) throw new UsageError(`pdf password ${action} takes no further arguments (a password is read from $${PDF_PASSWORD_ENV} or stdin, never from the command line)`);
  const { pair, scope } = pairOf(values);
  switch (action) {
    case 'show':
      return withStore(values.config, (store) => show(store, io, pair, scope));
    case 'reset':
      return withPortalStore(values.config, async (store, config) => {
        // The sender's notice is queued in the spool, for the running relay.
        const { record, told } = await resetPdfPasswordAndTell(store, await Spool.open(config.data_dir), config, pair, scope, cliActor());
        io.out(`new password made for ${describePdfPair(record)}; ${describeTold(told, pair.sender)}`);
        return 0;
      });
    case 'set': {
      const password = await passwordInput(stdin, PDF_PASSWORD_ENV, 'pdf password set');
      return withPortalStore(values.config, async (store, config) => {
        const { record, told } = await setPdfPasswordAndTell(store, await Spool.open(config.data_dir), config, pair, scope, password, cliActor());
        io.out(`password set for ${describePdfPair(record)}; ${describeTold(told, pair.sender)}`);
        return 0;
      });
    }
    case 'delete':
      return withPortalStore(values.config, async (store) => {
        if (!(await store.deletePdfPassword(pair, scope, cliActor()))) return noPassword(io, pair, scope);
        io.out(`deleted the PDF password for ${describePdfPair(shownPair(pair, scope))} (its reply links no longer open)`);
        return 0;
      });
    default:
      throw new UsageError(`usage: postern ${USAGE}`);
  }
}

/**
 * The store with portal.db attached: a new or deleted password takes the pair's reply links (in
 * portal.db) with it.
 */
async function withPortalStore<T>(configFile: string | undefined, fn: (store: KeyStore, config: Config) => Promise<T>): Promise<T> {
  const config = await loadConfig(configFile ?? DEFAULT_CONFIG);
  const { store, portal } = await openKeyStoreWithPortal(config);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
    await portal.close();
  }
}

function address(flag: string, value: string): string {
  const a = canonicalAddress(value);
  if (!a) throw new UsageError(`${flag} ${JSON.stringify(value.slice(0, 100))}: not a mail address`);
  return a;
}

function pairOf(values: { from?: string; to?: string; scope?: string }): { pair: PdfPair; scope: PdfPasswordScope } {
  const scope = values.scope ?? 'pair';
  if (scope !== 'pair' && scope !== 'recipient') throw new UsageError('--scope must be pair (one password per sender and recipient) or recipient (one for all senders)');
  if (values.to === undefined) throw new UsageError('pdf password needs --to B (the recipient)');
  const recipient = address('--to', values.to);
  if (scope === 'recipient') {
    if (values.from !== undefined) throw new UsageError('--scope recipient is one password for all senders: leave out --from');
    return { pair: { sender: '*', recipient }, scope };
  }
  if (values.from === undefined) throw new UsageError('pdf password needs --from A (the sender), or --scope recipient for the password all senders share');
  return { pair: { sender: address('--from', values.from), recipient }, scope };
}

const shownPair = (pair: PdfPair, scope: PdfPasswordScope) => ({ sender: scope === 'recipient' ? '*' : pair.sender, recipient: pair.recipient });

function noPassword(io: CliIo, pair: PdfPair, scope: PdfPasswordScope): number {
  io.err(`postern: no PDF password for ${describePdfPair(shownPair(pair, scope))}`);
  return 1;
}

async function show(store: KeyStore, io: CliIo, pair: PdfPair, scope: PdfPasswordScope): Promise<number> {
  const found = await store.showPdfPassword(pair, scope, cliActor());
  if (!found) return noPassword(io, pair, scope);
  // The password alone on stdout (for scripts); what it is, on stderr.
  io.err(`PDF password for ${describePdfPair(found.record)}, ${found.record.source} ${found.record.created.toISOString()}, ${found.record.notified ? `told to the sender ${found.record.notified.toISOString()}` : 'not yet told to the sender'}`);
  io.out(found.password);
  return 0;
}

async function list(store: KeyStore, io: CliIo, filter: { sender?: string; recipient?: string }, json: boolean): Promise<number> {
  const records = await store.listPdfPasswords({ ...(filter.sender ? { sender: filter.sender } : {}), ...(filter.recipient ? { recipient: filter.recipient } : {}) });
  if (json) {
    for (const r of records) io.out(JSON.stringify(pdfPasswordRow(r)));
    return 0;
  }
  const when = (d: Date | null) => (d ? d.toISOString().replace(/\.\d+Z$/, 'Z') : '-');
  io.out(['SENDER', 'RECIPIENT', 'CREATED', 'NOTIFIED', 'SOURCE'].join('\t'));
  for (const r of records) io.out([r.sender, r.recipient, when(r.created), when(r.notified), r.source].join('\t'));
  io.out(`-- ${records.length} password${records.length === 1 ? '' : 's'}`);
  return 0;
}
