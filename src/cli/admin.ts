/**
 * `postern admin …`: the accounts of the admin console and API (issue 18). The first
 * Administrator is made here; so is every later change when the console is out of reach.
 *
 * - add NAME --role R [--role R …]: a new account (password from $POSTERN_ADMIN_PASSWORD or a pipe)
 * - list [--json]: every account, its roles and state (never a hash or a TOTP secret)
 * - passwd NAME: a new password (as for add); roles NAME --role R …: replace the roles
 * - disable NAME / enable NAME: refuse or allow its log-ins
 * - totp NAME on|off: a new TOTP secret, printed once (URI and base32), or none
 *
 * Each change is audited in postern.db (actor cli:<login>, via cli). Secrets: the password is
 * never an argument (`ps`, shell history) and never printed; the TOTP secret is printed once.
 */
import { ADMIN_ROLES } from '../core/admin-roles.js';
import { adminAccountJson, checkAdminName, type KeyStore } from '../keystore/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor, passwordInput, withStore } from './keys-common.js';

export const ADMIN_PASSWORD_ENV = 'POSTERN_ADMIN_PASSWORD';

const USAGE =
  `admin add NAME --role R [--role R …] | admin list [--json] | admin passwd NAME | admin roles NAME --role R [--role R …] | ` +
  `admin disable NAME | admin enable NAME | admin totp NAME on|off  (passwords from $${ADMIN_PASSWORD_ENV} or stdin; roles: ${ADMIN_ROLES.join(', ')})`;

export async function adminCommand(argv: string[], io: CliIo, stdin: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<number> {
  const { values, positionals } = parse(argv, { role: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  const [sub, target, ...extra] = positionals;
  const roles = (values.role ?? []).flatMap((r) => r.split(',')).map((r) => r.trim());
  const takes = (what: { roles?: boolean; json?: boolean; args?: number }) => {
    if (extra.length > (what.args ?? 0)) throw new UsageError(`too many arguments (a password is never one: $${ADMIN_PASSWORD_ENV} or stdin); usage: postern ${USAGE}`);
    if (!what.roles && values.role !== undefined) throw new UsageError(`admin ${sub} takes no --role`);
    if (!what.json && values.json !== undefined) throw new UsageError(`admin ${sub} takes no --json`);
  };
  if (sub === 'list') {
    takes({ json: true });
    if (target !== undefined) throw new UsageError('admin list takes no name');
    return withStore(values.config, (store) => list(store, io, values.json === true));
  }
  const known = ['add', 'passwd', 'roles', 'disable', 'enable', 'totp'];
  if (!known.includes(sub ?? '')) throw new UsageError(`unknown admin command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  if (target === undefined) throw new UsageError(`admin ${sub} needs the account's name; usage: postern ${USAGE}`);
  // Checked before a password is read or the store opened.
  const name = checkAdminName(target);
  const actor = cliActor();
  switch (sub) {
    case 'add': {
      takes({ roles: true });
      if (!roles.length) throw new UsageError(`admin add needs at least one --role: ${ADMIN_ROLES.join(', ')}`);
      const password = await passwordInput(stdin, ADMIN_PASSWORD_ENV, 'admin add');
      return withStore(values.config, async (store) => {
        const a = await store.addAdminAccount({ name, password, roles, actor });
        io.out(`added admin account ${a.name} (${a.roles.join(', ')})`);
        return 0;
      });
    }
    case 'passwd': {
      takes({});
      const password = await passwordInput(stdin, ADMIN_PASSWORD_ENV, 'admin passwd');
      return withStore(values.config, async (store) => {
        await store.setAdminPassword(name, password, actor);
        io.out(`new password set for admin account ${name}`);
        return 0;
      });
    }
    case 'roles':
      takes({ roles: true });
      if (!roles.length) throw new UsageError(`admin roles needs at least one --role: ${ADMIN_ROLES.join(', ')}`);
      return withStore(values.config, async (store) => {
        const a = await store.setAdminRoles(name, roles, actor);
        io.out(`admin account ${a.name} now has the roles ${a.roles.join(', ')}`);
        return 0;
      });
    case 'disable':
    case 'enable':
      takes({});
      return withStore(values.config, async (store) => {
        const a = await store.setAdminDisabled(name, sub === 'disable', actor);
        io.out(`admin account ${a.name} is ${a.disabled ? 'disabled: it cannot sign in' : 'enabled'}`);
        return 0;
      });
    default: {
      takes({ args: 1 });
      const [state] = extra;
      if (state !== 'on' && state !== 'off') throw new UsageError(`admin totp NAME takes on or off; usage: postern ${USAGE}`);
      return withStore(values.config, async (store) => {
        if (state === 'off') {
          await store.disableAdminTotp(name, actor);
          io.out(`admin account ${name} signs in without a TOTP code`);
          return 0;
        }
        const { secret, uri } = await store.enableAdminTotp(name, actor);
        // The secret on stdout alone (for scripts and QR code tools); what it is, on stderr.
        io.err(`admin account ${name} needs a TOTP code from its next log-in on; add this to an authenticator app (shown this once):`);
        io.out(uri);
        io.out(secret);
        return 0;
      });
    }
  }
}

const when = (d: Date | null) => (d ? d.toISOString().replace(/\.\d+Z$/, 'Z') : '-');

async function list(store: KeyStore, io: CliIo, json: boolean): Promise<number> {
  const accounts = await store.adminAccounts();
  if (json) {
    for (const a of accounts) io.out(JSON.stringify(adminAccountJson(a)));
    return 0;
  }
  io.out(['NAME', 'ROLES', 'STATE', 'TOTP', 'CREATED', 'PASSWORD CHANGED', 'LAST LOGIN'].join('\t'));
  for (const a of accounts) {
    io.out([a.name, a.roles.join(','), a.disabled ? 'disabled' : 'enabled', a.totp ? 'on' : 'off', when(a.created), when(a.passwordChanged), when(a.lastLogin)].join('\t'));
  }
  io.out(`-- ${accounts.length} account${accounts.length === 1 ? '' : 's'}`);
  return 0;
}
