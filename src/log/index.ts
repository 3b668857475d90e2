/**
 * log: pino JSON lines, one per message stage, keyed by queue id and a stable `event` code so
 * admins can grep and alert on them; the last lines kept in memory for the admin console
 * (recent.ts); the process's Prometheus metrics (metrics.ts). Untrusted input: addresses and client names appear in logs
 * (pino escapes them as JSON). Secrets: passwords, PINs, keys and message bodies are never
 * logged; the redaction list below is the safety net, not the policy. Every event code is listed,
 * with its level and meaning, in events.ts.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { keepingRecent } from './recent.js';

export type { Logger };
export { registry, initMetrics, countOutcome, countConnection, countAccepted, countRefused, countProcessed, countCryptoFailure, observeDelivery, countRoleRestart, metricsSnapshot, renderMetrics, type MetricsSnapshot, type ProcessedMethod, type ProcessedDirection, type CryptoOperation } from './metrics.js';
export { recentLogs, mergeLogs, clampLimit, LOG_LEVELS, MAX_LOG_LIMIT, type LogQuery, type LogRecord, type LogLevelName } from './recent.js';
export { EVENTS, eventLevels, isEventCode, type EventCode, type EventInfo, type EventLevel } from './events.js';

const REDACT = [
  'password',
  'passphrase',
  'pin',
  'key',
  'privateKey',
  'secret',
  'body',
  '*.password',
  '*.passphrase',
  '*.pin',
  '*.privateKey',
  '*.secret',
  '*.body',
];

export interface LogOptions {
  level?: string;
  /** The role writing (smtpd, worker, relay, supervisor, cli). */
  role?: string;
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const logger = pino(
    {
      level: opts.level ?? process.env.POSTERN_LOG_LEVEL ?? 'info',
      base: opts.role ? { role: opts.role, pid: process.pid } : { pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // The process's own log (stdout) is also kept in memory for the admin console (recent.ts).
    opts.destination ?? keepingRecent(stdoutBuffered()),
  );
  return logger;
}

/**
 * stdout, written in blocks of up to 4 KB instead of a syscall per line: a line per message per
 * role otherwise costs a measurable share of the per-message CPU. The buffer is flushed every
 * 250 ms and on exit, so at most a quarter second of log lines is lost if a role is SIGKILLed.
 */
function stdoutBuffered(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => dest.flush?.(), 250);
  timer.unref();
  process.once('exit', () => {
    try {
      dest.flushSync();
    } catch {
      // stdout closed: nothing to save
    }
  });
  return dest;
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
