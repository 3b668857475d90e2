/**
 * `postern policy activate FILE [--hash HASH]`, `postern policy push FILE [--hash HASH] [--comment
 * TEXT]` and `postern policy versions`: the admin API's activation from a shell — the same checks,
 * the same kept versions, audited through the CLI.
 *
 * A single gateway: activate writes the policy file atomically (policy/activate.ts) and a running
 * gateway takes it by itself (it watches the file). A cluster (keystore.postgres): the policy's
 * source of truth is the database, so activate and push both store the text as the cluster's
 * newest version (policy/push.ts) and every node's follower, this one's included, writes it to its
 * policy file; push refuses to run without a cluster, so a script meant for one cannot quietly
 * change a lone gateway.
 */
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { formatConfigProblem } from '../core/index.js';
import type { KeyStore } from '../keystore/index.js';
import { activatePolicy, isClusterStore, pushPolicy, type ActivateResult } from '../policy/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { openPolicyVersions } from './cluster-policy.js';
import { cliActor, withStore } from './keys-common.js';

const HASH = /^[0-9a-f]{64}$/;

export async function policyActivateCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { hash: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('usage: postern policy activate FILE [--hash HASH-OF-THE-POLICY-IT-WAS-EDITED-FROM]');
  return activateOrPush(positionals[0]!, values.config, values.hash, undefined, 'activate', io);
}

export async function policyPushCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { hash: { type: 'string' }, comment: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('usage: postern policy push FILE [--hash HASH-OF-THE-VERSION-IT-WAS-EDITED-FROM] [--comment TEXT]');
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  if (!config.keystore.postgres) {
    io.err('push is for a cluster (keystore.postgres); use `postern policy activate` for a single gateway');
    return 1;
  }
  return activateOrPush(positionals[0]!, values.config, values.hash, values.comment, 'push', io);
}

async function activateOrPush(source: string, configFile: string | undefined, hash: string | undefined, comment: string | undefined, verb: 'activate' | 'push', io: CliIo): Promise<number> {
  if (hash !== undefined && !HASH.test(hash)) throw new UsageError('--hash: expected the 64 hex digits `postern policy versions` shows');
  if (comment !== undefined && /[\r\n]/.test(comment)) throw new UsageError('--comment: one line');
  const text = await readFile(source, 'utf8');
  // The keystore first: an activation that could not be audited must not happen.
  return withStore(configFile, async (store, config) => {
    const opened = await openPolicyVersions(config, 'cli', { migrate: true });
    try {
      const req = { text, base: hash ?? null, by: cliActor() };
      const { versions } = opened;
      const cluster = isClusterStore(versions);
      const r = isClusterStore(versions) ? await pushPolicy(config.policy.file, versions, req) : await activatePolicy(config.policy.file, versions, req);
      return await report(r, { source, config, cluster, comment, verb, store, text }, io);
    } finally {
      await opened.close();
    }
  });
}

interface Reported {
  source: string;
  config: Config;
  cluster: boolean;
  comment: string | undefined;
  verb: 'activate' | 'push';
  store: KeyStore;
  text: string;
}

async function report(r: ActivateResult, c: Reported, io: CliIo): Promise<number> {
  const policyFile = c.config.policy.file;
  const what = c.cluster ? "the cluster's policy" : policyFile;
  switch (r.outcome) {
    case 'invalid':
      // Checked as if it were the policy file; the admin knows it by the name given.
      for (const p of r.problems) io.err(formatConfigProblem(p.file === policyFile ? { ...p, file: c.source } : p));
      io.err(`${c.source}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}; nothing ${c.cluster ? 'pushed' : 'activated'}`);
      return 1;
    case 'stale':
      io.err(`${what} changed since the version --hash names (now ${r.current}); nothing ${c.cluster ? 'pushed' : 'activated'}`);
      return 1;
    case 'unchanged':
      io.out(`${what} already is this policy (version ${r.version.id})`);
      return 0;
    case 'activated': {
      const detail = `version ${r.version.id}${c.comment ? `; ${c.comment}` : ''}`;
      await c.store.audit({ actor: cliActor(), action: `policy.${c.verb}`, object: 'policy', detail, before: r.before, after: c.text });
      const rules = `${r.policy.rules.length} rule${r.policy.rules.length === 1 ? '' : 's'}`;
      if (c.cluster) io.out(`pushed ${c.source} as the cluster's policy version ${r.version.id} (${rules}); every node follows it`);
      else io.out(`activated ${c.source} as ${policyFile} (version ${r.version.id}, ${rules}); a running gateway reloads it by itself`);
      // Alone on the last line, for scripts.
      if (c.verb === 'push') io.out(r.version.id);
      return 0;
    }
  }
}

export async function policyVersionsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  if (positionals.length) throw new UsageError('usage: postern policy versions [--json]');
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  const opened = await openPolicyVersions(config, 'cli');
  try {
    const versions = await opened.versions.list();
    // A version without an author was found in a policy file: edited by hand, or the file a cluster started from.
    const found = isClusterStore(opened.versions) ? "(a node's policy file)" : '(found in the file)';
    if (values.json) io.out(JSON.stringify(versions, null, 2));
    else for (const v of versions) io.out(`${v.id}\t${v.time.toISOString()}\t${v.by ?? found}\t${v.hash}`);
  } finally {
    await opened.close();
  }
  return 0;
}
