import { isAbsolute, relative } from 'node:path';
import { checkConfig } from '../config/index.js';
import { formatConfigProblem } from '../core/index.js';
import { DEFAULT_CONFIG, parse, type CliIo } from './args.js';

/** `postern check -c FILE`: validate config and policy; every problem with file, line and key. */
export async function checkCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv);
  const file = values.config ?? DEFAULT_CONFIG;
  const result = await checkConfig(file);
  if (result.ok) {
    io.out(`${file}: OK (policy ${result.config.policy.file})`);
    return 0;
  }
  for (const p of result.problems) io.err(formatConfigProblem({ ...p, file: shortPath(p.file) }));
  io.err(`${file}: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}`);
  return 1;
}

/** Paths as the admin typed them: relative to the working directory when below it. */
function shortPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}
