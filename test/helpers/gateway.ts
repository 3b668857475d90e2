/**
 * Runs the real gateway (`node dist/main.js start`) as the admin would, in its own process group,
 * with a YAML config written to a temp dir. Tests talk to it over SMTP and watch its JSON logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const MAIN = resolve(import.meta.dirname, '../../dist/main.js');

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export interface LogLine {
  event?: string;
  role?: string;
  level?: string;
  [k: string]: unknown;
}

export class Gateway {
  readonly logs: LogLine[] = [];
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly proc: ChildProcess) {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      let l: LogLine;
      try {
        l = JSON.parse(line) as LogLine;
      } catch {
        l = { raw: line };
      }
      this.logs.push(l);
      this.waiters = this.waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
    });
    proc.stderr!.on('data', (d: Buffer) => this.logs.push({ stderr: d.toString() }));
    this.exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  }

  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`timed out waiting for log line; last lines:\n${this.tail()}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          res(l);
        },
      });
    });
  }

  tail(n = 15): string {
    return this.logs
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  /** Pids of live role processes, from the supervisor's spawn log lines. */
  rolePids(role: string): number[] {
    return this.logs.filter((l) => l.event === 'supervisor.spawn' && l.role === role).map((l) => l.child as number);
  }

  /** SIGKILL the supervisor and every role at once (the process group): a crash of the whole host process tree. */
  killAll(): void {
    try {
      process.kill(-this.proc.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    return this.exited;
  }
}

/** `env`: the supervisor's environment (default this process's): a cluster node's database password. */
export async function startGateway(configFile: string, opts: { waitReady?: boolean; env?: NodeJS.ProcessEnv; readyTimeoutMs?: number } = {}): Promise<Gateway> {
  const proc = spawn(process.execPath, [MAIN, 'start', '-c', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: opts.env } : {}),
    detached: true, // own process group, so killAll() takes the roles too
  });
  const gw = new Gateway(proc);
  if (opts.waitReady !== false) {
    // A gateway that never got ready is not handed to the test, so nothing else would stop it: its
    // supervisor would go on restarting roles (in its own process group) after the suite ended.
    await gw.waitFor((l) => l.event === 'supervisor.ready', opts.readyTimeoutMs).catch((err: unknown) => {
      gw.killAll();
      throw err;
    });
  }
  return gw;
}

/**
 * The suites find delivered mail by a token in its Subject, which encrypted mail hides outside by
 * default (RFC 9788 obscure): they run with `copy` unless they set header_protection themselves
 * (header-protection-gateway.test.ts tests the default).
 */
const HEADER_PROTECTION = 'header_protection: copy\n';

/** Test gateways run without the admin console (on 8443 by default) unless a test configures it. */
const NO_ADMIN = 'admin: { listen: [] }\n';

/** Write a postern.yaml for a gateway whose data dir and maildir live in `dir`. */
export async function writeGatewayConfig(dir: string, port: number, extra = '', route = 'maildir:./maildir'): Promise<string> {
  const file = join(dir, 'postern.yaml');
  await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  await writeFile(
    file,
    `hostname: gw.test.example
data_dir: .
internal_domains: [example.com]
trusted_networks: [127.0.0.0/8]
workers: 2
log: { level: info }
smtp:
  listen: ["127.0.0.1:${port}"]
relay:
  routes:
    "*": ${route}
policy: policy.yaml
${/^admin:/m.test(extra) ? '' : NO_ADMIN}${/^header_protection:/m.test(extra) ? '' : HEADER_PROTECTION}${extra}`,
  );
  return file;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `postern ARGS -c CONFIG` (the built binary) with `input` piped to its stdin (not a terminal). */
export async function runPosternWithInput(config: string, args: string[], input: string, env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const { spawn } = await import('node:child_process');
  return new Promise((res) => {
    const p = spawn(process.execPath, [MAIN, ...args, '-c', config], { env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => res({ code: code ?? 1, stdout, stderr }));
    p.stdin.end(input);
  });
}

/** Run `postern ARGS -c CONFIG` (the built binary) and return its exit code and output. */
export async function runPostern(config: string, args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const { execFile } = await import('node:child_process');
  return new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args, '-c', config], { env: env ?? process.env }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
