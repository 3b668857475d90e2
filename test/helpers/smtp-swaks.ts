/**
 * Runs swaks (an independent SMTP client) asynchronously: smtpd runs in the test's own process,
 * so a synchronous child would block the server it talks to.
 */
import { spawn } from 'node:child_process';

export interface SwaksResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function swaks(args: string[], timeoutMs = 15_000): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('swaks', ['--timeout', '10', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}
