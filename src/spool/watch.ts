import { watch, type FSWatcher } from 'node:fs';

/**
 * Call `onChange` soon after files appear in a queue directory. inotify (fs.watch) gives low
 * latency; the periodic tick is the safety net for events it can drop (overflow, NFS).
 */
export function watchQueue(dir: string, onChange: () => void, intervalMs = 1000): () => void {
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dir, { persistent: false }, () => onChange());
    watcher.on('error', () => undefined);
  } catch {
    watcher = null;
  }
  const timer = setInterval(onChange, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    watcher?.close();
  };
}
