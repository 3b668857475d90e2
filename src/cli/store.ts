/**
 * `postern store migrate --from URL --to URL [--yes]`: a gateway's whole store copied between
 * backends — `sqlite:/var/lib/postern/postern.db` to `postgres://postern@db.example/postern` to
 * form a cluster, or back to leave one. Without --yes it checks both ends and counts what it would
 * copy, writing nothing.
 *
 * The portal's tables come along: from portal.db beside a SQLite keystore, or the schema `portal`
 * of the same PostgreSQL database (--from-portal / --to-portal name another place).
 *
 * Secrets: PostgreSQL passwords from an environment variable or a file (--password-env,
 * --password-file, or per side --from-… / --to-…), never the command line. The KEK is not needed:
 * sealed secrets move sealed, and the target's gateways need the same KEK as the source's.
 */
import { dirname, join, resolve } from 'node:path';
import { describeLocation, migrateStore, parseStoreLocation, postgresPassword, StoreLocationError, StoreMigrateError, type StoreLocation } from '../keystore/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor } from './keys-common.js';

const USAGE = 'store migrate --from URL --to URL [--yes] (postern help: the options)';

type Values = Record<string, string | boolean | undefined>;

export async function storeCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    from: { type: 'string' },
    to: { type: 'string' },
    'from-portal': { type: 'string' },
    'to-portal': { type: 'string' },
    'password-env': { type: 'string' },
    'password-file': { type: 'string' },
    'from-password-env': { type: 'string' },
    'from-password-file': { type: 'string' },
    'to-password-env': { type: 'string' },
    'to-password-file': { type: 'string' },
    yes: { type: 'boolean' },
  });
  const [sub, ...extra] = positionals;
  if (sub !== 'migrate' || extra.length) throw new UsageError(`usage: postern ${USAGE}`);
  if (!values.from || !values.to) throw new UsageError('store migrate needs --from URL and --to URL (sqlite:PATH or postgres://user@host/database)');
  let ends;
  try {
    ends = {
      from: side('from', values.from, values['from-portal'], values),
      to: side('to', values.to, values['to-portal'], values),
    };
  } catch (err) {
    if (err instanceof StoreLocationError) throw new UsageError(err.message);
    throw err;
  }
  try {
    const r = await migrateStore({ from: ends.from, to: ends.to, write: values.yes === true, actor: cliActor() });
    const width = Math.max(...r.tables.map((t) => t.part.length + t.table.length + 1), 10);
    for (const t of r.tables) io.out(`${`${t.part}.${t.table}`.padEnd(width)}  ${t.rows}`);
    const rows = r.tables.reduce((n, t) => n + t.rows, 0);
    const portal = r.portal ? '' : ' (the source has no portal tables)';
    if (r.written) io.out(`copied ${rows} rows in ${r.tables.length} tables from ${r.from} to ${r.to}${portal}; recorded in the target's audit trail`);
    else io.out(`checked: ${r.to} can take the ${rows} rows of ${r.from}${portal}; nothing written — run again with --yes to copy`);
    return 0;
  } catch (err) {
    if (err instanceof StoreMigrateError) {
      io.err(`postern: store migrate refused: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** One end: the keystore's location and the portal's (given, or beside it). */
function side(which: 'from' | 'to', url: string, portalUrl: string | undefined, v: Values): { keystore: StoreLocation; portal: StoreLocation } {
  const password = url.startsWith('sqlite:') && (!portalUrl || portalUrl.startsWith('sqlite:')) ? undefined : passwordOf(which, v);
  const keystore = parseStoreLocation(absolute(url), password);
  const portal = portalUrl
    ? parseStoreLocation(absolute(portalUrl), password)
    : keystore.kind === 'sqlite'
      ? { kind: 'sqlite' as const, path: join(dirname(keystore.path), 'portal.db') }
      : keystore;
  if (describeLocation(keystore, 'keystore') === describeLocation(portal, 'keystore') && keystore.kind === 'sqlite') {
    throw new UsageError(`--${which}-portal names the keystore's own file`);
  }
  return { keystore, portal };
}

const absolute = (url: string) => (url.startsWith('sqlite:') ? `sqlite:${resolve(url.slice('sqlite:'.length))}` : url);

/** The side's password: its own flags first, then the shared ones; none is fine (trust, certificates). */
function passwordOf(which: 'from' | 'to', v: Values): string | undefined {
  const env = (v[`${which}-password-env`] ?? v['password-env']) as string | undefined;
  const file = (v[`${which}-password-file`] ?? v['password-file']) as string | undefined;
  if (env && file) throw new UsageError(`the ${which} side has both a password variable and a password file: give one`);
  try {
    return postgresPassword({ url: '', ...(env ? { password_env: env } : {}), ...(file ? { password_file: resolve(file) } : {}) });
  } catch (err) {
    throw new UsageError(`--${which}-password: ${(err as Error).message.replace(/^keystore\.postgres: /, '')}`);
  }
}
