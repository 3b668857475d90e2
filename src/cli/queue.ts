import { loadConfig } from '../config/index.js';
import { Spool, type QueueEntryInfo } from '../spool/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';

/** `postern queue list` (like postqueue -p): one line per spool entry, oldest first. */
export async function queueCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const sub = positionals[0];
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const spool = await Spool.open(config.data_dir);
  switch (sub) {
    case 'list': {
      const entries = (await spool.inspect()).sort((a, b) => a.mtime.getTime() - b.mtime.getTime());
      if (values.json) {
        for (const e of entries) io.out(JSON.stringify(toJson(e)));
        return 0;
      }
      io.out(['ID', 'STATE', 'AGE', 'SIZE', 'SENDER', 'RECIPIENTS'].join('\t'));
      for (const e of entries) {
        const j = toJson(e);
        io.out([j.name, j.state, formatAge(j.age_s), String(j.size), j.sender || '<>', j.recipients.join(',') || (j.error ?? '')].join('\t'));
      }
      io.out(`-- ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown queue command ${JSON.stringify(sub ?? '')}; expected: list`);
  }
}

function toJson(e: QueueEntryInfo) {
  const received = e.meta ? Date.parse(e.meta.envelope.receivedAt) : e.mtime.getTime();
  return {
    name: e.name,
    id: e.id,
    state: e.queue,
    age_s: Math.max(0, Math.round((Date.now() - received) / 1000)),
    size: e.size,
    sender: e.meta?.envelope.sender ?? '',
    recipients: e.meta?.envelope.recipients.map((r) => r.address) ?? [],
    ...(e.error ? { error: e.error } : {}),
  };
}

function formatAge(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
