/**
 * A private, real Postfix for tests: a next hop that accepts mail for any domain and keeps it in a
 * maildir, or a front MTA that relays everything into Postern (`relayTo`), the independent peer
 * that shows what Postern really did on the wire.
 *
 * Each instance has its own config directory, queue and log under one temporary directory and
 * runs `master -d` (foreground) as our child on a free 127.0.0.1 port, so several run at once and
 * none touches /etc/postfix or a system Postfix. Tests run as root; Postfix drops to mail_owner
 * `postfix` itself. Nothing is chrooted (the chroot would need copies of /etc files).
 *
 * The log is a plain file (maillog_file through the postlog service: no syslog needed); with
 * `debugPeers` the SMTP conversation with 127.0.0.1 is in it (debug_peer_list), both as server
 * (lines "< localhost[127.0.0.1]: RCPT TO:<…> NOTIFY=…") and as client ("> …", "< …").
 *
 * Instances left running by a test file whose afterAll never ran are killed when the process
 * exits, as scripts/postgres-server.js does for PostgreSQL.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'node:net';
import { freePort } from './gateway.js';
import { waitUntil } from './send.js';

const exec = promisify(execFile);

export interface PostfixOptions {
  /** Relay every message to this host:port (`relayhost = [host]:port`), e.g. into Postern. */
  relayTo?: { host: string; port: number };
  /** Without relayTo: keep mail in the maildir (default) or discard it (the log still says so). */
  deliver?: 'maildir' | 'discard';
  /** smtpd_tls_* with this certificate and key (PEM file paths): STARTTLS offered (level may). */
  tls?: { cert: string; key: string; chain?: string; securityLevel?: 'may' | 'encrypt' };
  /** smtputf8_enable (default yes, as Postfix's own default): SMTPUTF8 announced in EHLO. */
  smtputf8?: boolean;
  /** debug_peer_list = 127.0.0.1: the SMTP conversations with loopback peers are logged. */
  debugPeers?: boolean;
  /** myhostname (default a unique postfix-N.test: not Postern's, or Postfix sees a loop). */
  hostname?: string;
  /** Extra main.cf lines ("name = value"); they come last, so they override the defaults. */
  mainCf?: string[];
  /** Extra master.cf lines (a service each). */
  masterCf?: string[];
}

export interface PostfixMessage {
  /** The maildir file. */
  path: string;
  /** From Postfix's Delivered-To and Return-Path headers. */
  recipient: string;
  sender: string;
  raw: Buffer;
}

export interface PostfixInstance {
  host: string;
  port: number;
  hostname: string;
  /** The temporary directory holding etc/, queue/, data/, maildir/ and maillog. */
  dir: string;
  /** The log so far. */
  log(): string;
  /** Resolves with the first log line matching re (throws after timeoutMs). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Messages delivered to the maildir, oldest first. */
  messages(): PostfixMessage[];
  waitForMessages(count: number, timeoutMs?: number): Promise<PostfixMessage[]>;
  /** Run a Postfix command (postconf, postqueue, postcat, postsuper …) against this instance. */
  run(command: string, args?: string[]): Promise<string>;
  stop(): Promise<void>;
}

const live = new Map<string, ChildProcess>();
let exitHook = false;
function stopAllAtExit(): void {
  for (const [dir, child] of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // the next run's tmp cleanup
    }
  }
  live.clear();
}

const asRoot = process.getuid?.() === 0;
let serial = 0;

/** The queue directories Postfix's post-install would make, with their owners and modes. */
const QUEUE_DIRS: [string, 'postfix' | 'postdrop', number][] = [
  ['active', 'postfix', 0o700],
  ['bounce', 'postfix', 0o700],
  ['corrupt', 'postfix', 0o700],
  ['defer', 'postfix', 0o700],
  ['deferred', 'postfix', 0o700],
  ['flush', 'postfix', 0o700],
  ['hold', 'postfix', 0o700],
  ['incoming', 'postfix', 0o700],
  ['private', 'postfix', 0o700],
  ['saved', 'postfix', 0o700],
  ['trace', 'postfix', 0o700],
  ['maildrop', 'postdrop', 0o730],
  ['public', 'postdrop', 0o710],
];

/** Account ids from /etc/passwd and /etc/group (read, not `id`: each process spawn costs ~100 ms here). */
function ids(): { postfix: number; postfixGid: number; postdrop: number; nobody: number } {
  const field = (file: string, name: string, index: number) => {
    const line = readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line) throw new Error(`postfix-instance: no ${name} in ${file} (Debian package postfix installs it)`);
    return Number(line.split(':')[index]);
  };
  return { postfix: field('/etc/passwd', 'postfix', 2), postfixGid: field('/etc/passwd', 'postfix', 3), postdrop: field('/etc/group', 'postdrop', 2), nobody: field('/etc/passwd', 'nobody', 2) };
}

function masterCf(port: number, extra: string[]): string {
  // Columns: service type private unpriv chroot wakeup maxproc command (never chrooted here).
  const svc = (name: string, type: string, priv: string, wakeup: string, limit: string, cmd: string, unpriv = '-') =>
    `${name} ${type} ${priv} ${unpriv} n ${wakeup} ${limit} ${cmd}`;
  return [
    svc(`127.0.0.1:${port}`, 'inet', 'n', '-', '-', 'smtpd'),
    svc('pickup', 'unix', 'n', '60', '1', 'pickup'),
    svc('cleanup', 'unix', 'n', '-', '0', 'cleanup'),
    svc('qmgr', 'unix', 'n', '300', '1', 'qmgr'),
    svc('tlsmgr', 'unix', '-', '1000?', '1', 'tlsmgr'),
    svc('rewrite', 'unix', '-', '-', '-', 'trivial-rewrite'),
    svc('bounce', 'unix', '-', '-', '0', 'bounce'),
    svc('defer', 'unix', '-', '-', '0', 'bounce'),
    svc('trace', 'unix', '-', '-', '0', 'bounce'),
    svc('verify', 'unix', '-', '-', '1', 'verify'),
    svc('flush', 'unix', 'n', '1000?', '0', 'flush'),
    svc('proxymap', 'unix', '-', '-', '-', 'proxymap'),
    svc('smtp', 'unix', '-', '-', '-', 'smtp'),
    svc('relay', 'unix', '-', '-', '-', 'smtp'),
    svc('showq', 'unix', 'n', '-', '-', 'showq'),
    svc('error', 'unix', '-', '-', '-', 'error'),
    svc('retry', 'unix', '-', '-', '-', 'error'),
    svc('discard', 'unix', '-', '-', '-', 'discard'),
    svc('virtual', 'unix', '-', '-', '-', 'virtual', 'n'),
    svc('anvil', 'unix', '-', '-', '1', 'anvil'),
    svc('scache', 'unix', '-', '-', '1', 'scache'),
    svc('postlog', 'unix-dgram', 'n', '-', '1', 'postlogd'),
    ...extra,
    '',
  ].join('\n');
}

function mainCf(dir: string, hostname: string, opts: PostfixOptions, nobody: number): string {
  const lines = [
    'compatibility_level = 3.6',
    `config_directory = ${join(dir, 'etc')}`,
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${hostname}`,
    'mydomain = test',
    'myorigin = $myhostname',
    'mydestination =',
    'local_recipient_maps =',
    'inet_interfaces = 127.0.0.1',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination',
    `maillog_file = ${join(dir, 'maillog')}`,
    `maillog_file_prefixes = ${dir}`,
    // No DNS anywhere: loopback peers by address, and no reverse lookups of the client.
    'smtp_host_lookup = native',
    'lmtp_host_lookup = native',
    'smtpd_peername_lookup = no',
    'biff = no',
    'append_dot_mydomain = no',
    'smtpd_banner = $myhostname ESMTP',
    `smtputf8_enable = ${opts.smtputf8 === false ? 'no' : 'yes'}`,
    // Tests send a message and look at once: no waiting in queue manager or client backoffs.
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'smtpd_error_sleep_time = 0',
    'in_flow_delay = 0',
    'message_size_limit = 0',
  ];
  if (opts.relayTo) {
    lines.push(`relayhost = [${opts.relayTo.host}]:${opts.relayTo.port}`, 'smtp_tls_security_level = may');
  } else if (opts.deliver === 'discard') {
    lines.push('relay_domains = static:ALL', 'relay_transport = discard:', 'default_transport = discard:');
  } else {
    // virtual(8) for every domain, every recipient into one maildir (Delivered-To says whose).
    lines.push(
      'virtual_mailbox_domains = static:ALL',
      `virtual_mailbox_base = ${join(dir, 'maildir')}`,
      'virtual_mailbox_maps = static:mail/',
      `virtual_uid_maps = static:${nobody}`,
      `virtual_gid_maps = static:${nobody}`,
      'virtual_minimum_uid = 1',
      'virtual_mailbox_limit = 0',
    );
  }
  if (opts.tls) {
    lines.push(
      `smtpd_tls_security_level = ${opts.tls.securityLevel ?? 'may'}`,
      `smtpd_tls_chain_files = ${opts.tls.key}, ${opts.tls.chain ?? opts.tls.cert}`,
      'smtpd_tls_loglevel = 1',
      'smtpd_tls_received_header = yes',
    );
  }
  if (opts.debugPeers) lines.push('debug_peer_list = 127.0.0.1', 'debug_peer_level = 1');
  lines.push(...(opts.mainCf ?? []), '');
  return lines.join('\n');
}

function parseMaildirFile(path: string): PostfixMessage {
  const raw = readFileSync(path);
  const head = raw.subarray(0, Math.max(0, raw.indexOf('\n\n'))).toString('utf8');
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
  return { path, raw, recipient: header('Delivered-To'), sender: header('Return-Path').replace(/^<|>$/g, '') };
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixInstance> {
  if (!asRoot) throw new Error('postfix-instance: tests run as root here (master must start as root)');
  if (!exitHook) {
    exitHook = true;
    process.on('exit', stopAllAtExit);
  }
  const dir = await mkdtemp(join(tmpdir(), 'postern-postfix-'));
  await chmod(dir, 0o755);
  const hostname = opts.hostname ?? `postfix-${process.pid}-${++serial}.test`;
  const port = await freePort();
  const u = ids();
  const etc = join(dir, 'etc');
  const queue = join(dir, 'queue');
  await mkdir(etc);
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  await chown(join(dir, 'data'), u.postfix, u.postfixGid);
  await mkdir(queue, { mode: 0o755 });
  await mkdir(join(queue, 'pid'), { mode: 0o755 });
  for (const [name, group, mode] of QUEUE_DIRS) {
    const p = join(queue, name);
    await mkdir(p);
    await chown(p, u.postfix, group === 'postdrop' ? u.postdrop : u.postfixGid);
    await chmod(p, mode);
  }
  const maildir = join(dir, 'maildir');
  await mkdir(maildir);
  await chown(maildir, u.nobody, u.nobody);
  await writeFile(join(etc, 'main.cf'), mainCf(dir, hostname, opts, u.nobody));
  await writeFile(join(etc, 'master.cf'), masterCf(port, opts.masterCf ?? []));
  await writeFile(join(dir, 'maillog'), '');
  // Postfix waits (300 ms steps) until a table file is a second old, lest it read one being
  // edited; ours is complete, so it is dated back and master starts at once.
  const past = new Date(Date.now() - 60_000);
  for (const f of ['main.cf', 'master.cf']) await utimes(join(etc, f), past, past);

  const child = spawn('/usr/lib/postfix/sbin/master', ['-d', '-c', etc], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  live.set(dir, child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) =>
    child.once('exit', (code) => {
      exitCode = code;
      r();
    }),
  );
  const log = (): string => {
    try {
      return readFileSync(join(dir, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async (): Promise<void> => {
    if (!live.has(dir)) return;
    live.delete(dir);
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(
      async () => {
        if (exitCode !== undefined) throw new Error(`postfix master exited (${exitCode}): ${output}${log()}`);
        return new Promise<boolean>((res) => {
          const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), res(true)));
          s.on('error', () => res(false));
        });
      },
      10_000,
      `postfix smtpd on 127.0.0.1:${port}`,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  const messages = (): PostfixMessage[] => {
    const out: PostfixMessage[] = [];
    const newDir = join(maildir, 'mail', 'new');
    if (!existsSync(newDir)) return out;
    // Maildir names begin with the delivery time in seconds, then a sequence: sorted, oldest first.
    const names = readdirSync(newDir).sort((a, b) => Number(a.split('.')[0]) - Number(b.split('.')[0]) || a.localeCompare(b));
    for (const n of names) out.push(parseMaildirFile(join(newDir, n)));
    return out;
  };

  return {
    host: '127.0.0.1',
    port,
    hostname,
    dir,
    log,
    async waitForLog(re, timeoutMs = 10_000) {
      let found = '';
      await waitUntil(
        async () => {
          found = log().split('\n').find((l) => re.test(l)) ?? '';
          return found !== '';
        },
        timeoutMs,
        `postfix log line ${re}; log:\n${log()}`,
      );
      return found;
    },
    messages,
    async waitForMessages(count, timeoutMs = 10_000) {
      await waitUntil(async () => messages().length >= count, timeoutMs, `${count} message(s) in postfix maildir; log:\n${log()}`);
      return messages();
    },
    async run(command, args = []) {
      return (await exec(`/usr/sbin/${command}`, ['-c', etc, ...args], { encoding: 'utf8' })).stdout;
    },
    stop,
  };
}

/** The Postfix queue id of the message a log line names (e.g. "postfix/smtpd[1]: 4Abc12: client=…"). */
export function queueIdOf(line: string): string | undefined {
  return /postfix\/\w+\[\d+\]: ([0-9A-Za-z]+): /.exec(line)?.[1];
}

