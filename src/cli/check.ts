import { isAbsolute, relative } from 'node:path';
import { formatConfigProblem } from '../core/index.js';
import { checkConfigAndPolicy } from '../policy/index.js';
import { DEFAULT_CONFIG, parse, type CliIo } from './args.js';

/** `postern check -c FILE`: validate config and policy; every problem with file, line and key. */
export async function checkCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv);
  const file = values.config ?? DEFAULT_CONFIG;
  const result = await checkConfigAndPolicy(file);
  if (result.ok) {
    const rules = result.policy.rules.length;
    io.out(`${file}: OK (policy ${shortPath(result.config.policy.file)}: ${rules} rule${rules === 1 ? '' : 's'})`);
    return 0;
  }
  const { problems } = result;
  for (const p of problems) io.err(formatConfigProblem({ ...p, file: shortPath(p.file) }));
  io.err(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  return 1;
}

/** Paths as the admin typed them: relative to the working directory when below it. */
function shortPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}
