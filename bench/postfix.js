/**
 * Baseline (d): Postfix relaying the same load with no crypto — a private instance with its own
 * main.cf/master.cf, queue and data directories in a temp dir (`postfix -c DIR start|stop`), its
 * smtpd on a free loopback port, everything relayed to the bench sink. Postfix fsyncs each queue
 * file before its 250, like Postern's spool, so the durability is the same. Defaults otherwise
 * (default_destination_concurrency_limit 20, in_flow_delay 1s, connection cache on demand).
 *
 * Needs root (Postfix's master starts as root and drops to mail_owner) and the postfix user and
 * postdrop group of the Debian package. start() throws an Error whose message says why it cannot
 * run; the bench reports that reason instead of a number.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';

export function postfixVersion() {
  const r = spawnSync(POSTCONF, ['-d', 'mail_version'], { encoding: 'utf8' });
  return r.error ? null : /=\s*(\S+)/.exec(r.stdout)?.[1] ?? null;
}

function ids(name, db) {
  const r = spawnSync('getent', [db, name], { encoding: 'utf8' });
  const f = r.stdout?.split(':');
  return f && f.length > 2 ? { uid: Number(f[2]), gid: Number(f[3] ?? f[2]) } : null;
}

export async function startPostfix(dir, { port, sinkPort }) {
  if (spawnSync(POSTFIX, ['-h'], { stdio: 'ignore' }).error) throw new Error(`${POSTFIX} not installed`);
  if (process.getuid?.() !== 0) throw new Error('a private Postfix instance needs root (its master starts as root)');
  const owner = ids('postfix', 'passwd');
  if (!owner) throw new Error('no postfix user (mail_owner)');
  if (!ids('postdrop', 'group')) throw new Error('no postdrop group (setgid_group)');
  const conf = join(dir, 'conf');
  const queue = join(dir, 'queue');
  const data = join(dir, 'data');
  await mkdir(conf, { recursive: true });
  await mkdir(queue, { recursive: true });
  await mkdir(data, { recursive: true });
  await chmod(dir, 0o755); // the daemons run as postfix below it
  await chown(data, owner.uid, owner.gid);
  const log = join(dir, 'maillog');
  await writeFile(
    join(conf, 'main.cf'),
    `compatibility_level = 3.6
queue_directory = ${queue}
data_directory = ${data}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.example
mydomain = bench.example
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the bench
alias_maps =
alias_database =
relayhost = [127.0.0.1]:${sinkPort}
mynetworks = 127.0.0.0/8
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
smtputf8_enable = no
message_size_limit = 209715200
biff = no
maillog_file_prefixes = ${dir}
maillog_file = ${log}
`,
  );
  await writeFile(
    join(conf, 'master.cf'),
    `127.0.0.1:${port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`,
  );
  const why = async (err) => {
    const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
    return new Error(`postfix would not start: ${String(err.stderr || err.message).trim().split('\n')[0]}${tail ? ` (maillog: ${tail})` : ''}`);
  };
  try {
    await exec(POSTFIX, ['-c', conf, 'check']); // creates the queue directories, fixes permissions
    await exec(POSTFIX, ['-c', conf, 'start']);
  } catch (err) {
    throw await why(err);
  }
  // The master forks its daemons; wait for smtpd's port to answer.
  const { connect } = await import('node:net');
  for (let i = 0; i < 50; i++) {
    const up = await new Promise((res) => {
      const s = connect({ port, host: '127.0.0.1' }, () => (s.destroy(), res(true)));
      s.on('error', () => res(false));
    });
    if (up) break;
    if (i === 49) throw await why(new Error(`nothing listens on 127.0.0.1:${port}`));
    await new Promise((r) => setTimeout(r, 100));
  }
  const masterPid = async () => Number((await readFile(join(queue, 'pid/master.pid'), 'utf8').catch(() => '')).trim()) || null;
  return {
    port,
    log,
    masterPid,
    async stop() {
      await exec(POSTFIX, ['-c', conf, 'stop']).catch(() => {});
      // `postfix stop` returns before the master is gone; wait so the next phase has the CPU.
      for (let i = 0; i < 50; i++) {
        const pid = await masterPid();
        if (!pid) break;
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** CPU seconds of every process of the instance (master and its children), by /proc. */
export async function postfixCpu(masterPid) {
  if (!masterPid) return null;
  const { readdirSync, readFileSync } = await import('node:fs');
  let total = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      // The master's own time, the time of its children it reaped (cutime, cstime), and the live ones.
      if (Number(p) === masterPid) total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
      else if (ppid === masterPid) total += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* gone */
    }
  }
  return total;
}
