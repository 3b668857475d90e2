/**
 * The Python interpreter the tests use as an independent mail reader. `python3` on PATH may be a
 * version manager's shim (pyenv's is a bash script that runs pyenv before Python: ~0.5 s a call
 * against ~0.1 s), and the suites call it hundreds of times: ask it once where the interpreter it
 * chose lives and run that directly. Same interpreter, same email package, same verdicts.
 */
import { execFileSync } from 'node:child_process';

let resolved: string | undefined;

/** Path of the interpreter `python3` runs (resolved on first use, once per test file). */
export function python3(): string {
  resolved ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || 'python3';
  return resolved;
}
