/**
 * cli: the `postern` commands. Thin: parse arguments, call module APIs, print, return an exit
 * code (0 ok, 1 failure with a one-line reason, 2 usage). Untrusted input: command-line
 * arguments and the files they name. Secrets: read only from env variables named by flags.
 */
import { ADMIN_ROLES } from '../core/admin-roles.js';
import { ConfigError } from '../core/index.js';
import { stdio, UsageError, type CliIo } from './args.js';

// Each command's module is loaded when it is asked for: `postern pdf list` need not load OpenPGP,
// PKI and PDF code (a second per call, most of it module loading).

const USAGE = `usage: postern <command> [-c config/postern.yaml]
  start                 run the gateway (supervisor and roles) in the foreground
  check                 validate the config and policy files
  queue list [--json]   list the messages in the spool (mailq)
  queue show ID [--json]
                        envelope, each recipient's state and last reply
  queue hold ID|ALL     keep entries from delivery until released
  queue release ID|ALL  deliver held entries now
  queue flush [ID | --domain D]
                        retry deferred entries now (--domain: those with a recipient in D,
                        @D: in D or its subdomains, as ETRN)
  queue delete ID|ALL   remove entries for good (no bounce)
  cert import FILE… [--key FILE] [--password-env VAR] [--trust]
                        import certificates (PEM, DER, PKCS#7, PKCS#12) and private keys
  cert list [--address A] | export FP [--with-key --password-env VAR] | delete FP [--with-key]
  pgp import FILE… [--passphrase-env VAR] | list | export FP [--secret --passphrase-env VAR]
  pgp delete FP | generate ADDRESS [--name NAME] [--type ecc|rsa]
  ca init [--name NAME] | issue ADDRESS [--name NAME] | show
                        the internal CA for S/MIME certificates
  ca revoke ADDRESS|SERIAL [--reason R]
                        revoke certificates the internal CA issued (listed on its CRL)
  crl import FILE… | list
                        CRLs (PEM or DER) for offline revocation checks, verified against a stored CA
  kek rotate --to-file PATH | --to-passphrase-env VAR | --to-pkcs11-module LIB --to-token T
             --to-pin-env VAR --to-key-label L [--create-key]
                        re-wrap every private key under a new key-encryption key
  policy explain --from A --to B [--to C] [--subject S] [--header "N: v"] [MESSAGE]
                        what the policy does with such a message, per recipient, and why
  policy activate FILE [--hash HASH] | policy versions [--json]
                        FILE checked and made the policy (atomically; the one before kept in
                        data_dir/policy-versions; audited); --hash: only if the policy is still
                        that version
  policy push FILE [--hash HASH] [--comment TEXT]
                        a cluster (keystore.postgres): FILE checked and stored as the cluster's
                        newest policy version (prints its id); every node follows it
  pdf password show|reset|delete --from A --to B
                        a pair's PDF password (show is audited; reset makes a new one and
                        queues the sender's notice at once); --scope recipient instead of --from
                        for a recipient's one password for all senders
  pdf password set --from A --to B
                        an admin-chosen password, from $POSTERN_PDF_PASSWORD or stdin (the
                        sender is told it as after a reset)
  pdf list [--from A] [--to B] [--json]
                        the pairs with a PDF password: created, told to the sender, source
  webmail list [--json] the webmail mailboxes of outside recipients: messages, log-in, password
  webmail reset ADDRESS [--notify SENDER]
                        a new password (printed, or mailed to an internal SENDER); the mail in
                        the mailbox, sealed to the old key, is removed
  webmail delete ADDRESS
                        the mailbox and its mail
  admin add NAME --role R [--role R …]
                        an account of the admin console and API (password from
                        $POSTERN_ADMIN_PASSWORD or stdin); roles:
                        ${ADMIN_ROLES.join(', ')}
  admin list [--json] | passwd NAME | roles NAME --role R … | disable NAME | enable NAME
  admin totp NAME on|off
                        a second factor (RFC 6238): on prints the otpauth:// URI and secret once
  audit list [--limit N] | audit export
                        the audit trail (export: JSON lines); filters --since ISO --until ISO
                        --actor A --action X --object PREFIX
  backup FILE [--passphrase-env VAR]
                        the keystore, portal.db, the KEK file (or salt) and the config files
                        in one encrypted file, made while the gateway runs; passphrase from
                        $POSTERN_BACKUP_PASSPHRASE unless VAR names another
  restore FILE [--config-dir DIR] [--force] [--passphrase-env VAR]
                        onto a fresh data_dir: that of -c, or with --config-dir the backed-up
                        config goes to DIR and the data to the data_dir it names; --force
                        replaces an existing keystore (stop that gateway first)
  restore FILE --check  read the whole backup and authenticate it, list what is inside; writes nothing
  store migrate --from URL --to URL [--yes]
                        copy the whole store (keys, certificates, PDF passwords, accounts, audit
                        trail, the portal's tables) into an empty one; URL: sqlite:PATH or
                        postgres://user@host/database, passwords by --password-env VAR or
                        --password-file F (per side: --from-password-env …); --from-portal and
                        --to-portal URL when the portal's tables are not beside; without --yes
                        check and count only. No KEK needed: secrets move sealed (the target's
                        gateways need the source's KEK)
  cluster status [--json]
                        the nodes sharing this gateway's PostgreSQL store: version, policy, last
                        heartbeat, up | late | gone`;

export async function runCli(argv: string[], mainScript: string, io: CliIo = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await (await import('./start.js')).startCommand(rest, io);
      case 'check':
        return await (await import('./check.js')).checkCommand(rest, io);
      case 'queue':
        return await (await import('./queue.js')).queueCommand(rest, io);
      case 'cert':
        return await (await import('./cert.js')).certCommand(rest, io);
      case 'pgp':
        return await (await import('./pgp.js')).pgpCommand(rest, io);
      case 'ca':
        return await (await import('./ca.js')).caCommand(rest, io);
      case 'crl':
        return await (await import('./crl.js')).crlCommand(rest, io);
      case 'kek':
        return await (await import('./kek.js')).kekCommand(rest, io);
      case 'policy':
        return await (await import('./policy.js')).policyCommand(rest, io);
      case 'pdf':
        return await (await import('./pdf.js')).pdfCommand(rest, io);
      case 'webmail':
        return await (await import('./webmail.js')).webmailCommand(rest, io);
      case 'backup':
        return await (await import('./backup.js')).backupCommand(rest, io);
      case 'restore':
        return await (await import('./backup.js')).restoreCommand(rest, io);
      case 'admin':
        return await (await import('./admin.js')).adminCommand(rest, io);
      case 'audit':
        return await (await import('./audit.js')).auditCommand(rest, io);
      case 'store':
        return await (await import('./store.js')).storeCommand(rest, io);
      case 'cluster':
        return await (await import('./cluster.js')).clusterCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command ? 0 : 2;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`postern: ${err.message}`);
      io.err(USAGE);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err(err.message);
      return 1;
    }
    io.err(`postern: ${(err as Error).message ?? String(err)}`);
    return 1;
  }
}
