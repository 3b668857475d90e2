import { parseArgs, type ParseArgsConfig } from 'node:util';

export const DEFAULT_CONFIG = 'config/postern.yaml';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const stdio: CliIo = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** A usage problem: printed as one line, exit 2 (like most Unix tools). */
export class UsageError extends Error {}

const COMMON = { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } as const;

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options?: O) {
  try {
    return parseArgs({
      args: argv,
      options: { ...COMMON, ...(options ?? ({} as O)) },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
