import { isAbsolute, relative } from 'node:path';
import { checkConfig } from '../config/index.js';
import { ConfigError, formatConfigProblem } from '../core/index.js';
import { loadPolicy } from './policy-load.js';
import { DEFAULT_CONFIG, parse, type CliIo } from './args.js';

/** `postern check -c FILE`: validate config and policy; every problem with file, line and key. */
export async function checkCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv);
  const file = values.config ?? DEFAULT_CONFIG;
  const result = await checkConfig(file);
  let problems = result.ok ? [] : result.problems;
  let rules = 0;
  if (result.ok) {
    try {
      rules = (await loadPolicy(result.config)).rules.length;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
  }
  if (result.ok && !problems.length) {
    io.out(`${file}: OK (policy ${shortPath(result.config.policy.file)}: ${rules} rule${rules === 1 ? '' : 's'})`);
    return 0;
  }
  for (const p of problems) io.err(formatConfigProblem({ ...p, file: shortPath(p.file) }));
  io.err(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`);
  return 1;
}

/** Paths as the admin typed them: relative to the working directory when below it. */
function shortPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}
