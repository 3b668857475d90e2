/**
 * Gateways on a real PostgreSQL (issue 19), as a cluster's admin runs them: each node its own
 * data_dir, spool, maildir and ports, all naming one database (keystore.postgres, the password in
 * an environment variable, never in the URL) and one KEK (the same file, as a copied one would be).
 * Nodes are started one after the other: the first makes the KEK and the schema.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './config.js';
import { freePort, runPostern, startGateway, writeGatewayConfig, type CliResult, type Gateway } from './gateway.js';
import type { Postgres } from './postgres.js';

/** The variable the test gateways read the database password from. */
export const PG_PASSWORD_ENV = 'POSTERN_TEST_PG_PASSWORD';

/** keystore: and cluster: of postern.yaml for a node of the cluster in `url`'s database. */
export function postgresYaml(url: string, node: string, opts: { kekFile?: string } = {}): string {
  return `keystore: { postgres: { url: "${url}", password_env: ${PG_PASSWORD_ENV} } }\ncluster: { node: ${node} }\n${opts.kekFile ? `kek: { file: "${opts.kekFile}" }\n` : ''}`;
}

export interface ClusterNode {
  name: string;
  dir: string;
  /** Its postern.yaml. */
  config: string;
  /** Its SMTP port. */
  port: number;
  /** The running gateway, while it runs. */
  gateway: Gateway | null;
  start(): Promise<Gateway>;
  /** `postern ARGS` with this node's config (and the database password). */
  cli(args: string[]): Promise<CliResult>;
}

export interface Cluster {
  url: string;
  /** The environment of every node and CLI run: the database password in PG_PASSWORD_ENV. */
  env: NodeJS.ProcessEnv;
  nodes: ClusterNode[];
  /** Stop every node still running and remove their directories (the database stays with its server). */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Node names (default a, b). */
  names?: string[];
  /** More postern.yaml for every node; `(node) => …` for what differs per node (ports). */
  extra?: string | ((node: { name: string; dir: string }) => Promise<string> | string);
  /** The policy of every node (default: rules: []). */
  policy?: string;
  route?: string;
}

/** Nodes on a fresh database of `pg`, configured, not started. */
export async function makeCluster(pg: Postgres, opts: ClusterOptions = {}): Promise<Cluster> {
  const url = await pg.createDatabase();
  const env = { ...process.env, [PG_PASSWORD_ENV]: pg.password };
  const shared = await tempDir('postern-cluster-');
  const kekFile = join(shared.dir, 'kek.key');
  const cleanups = [shared.cleanup];
  const nodes: ClusterNode[] = [];
  for (const name of opts.names ?? ['a', 'b']) {
    const { dir, cleanup } = await tempDir(`postern-node-${name}-`);
    cleanups.push(cleanup);
    const port = await freePort();
    const extra = typeof opts.extra === 'function' ? await opts.extra({ name, dir }) : (opts.extra ?? '');
    const config = await writeGatewayConfig(dir, port, `${postgresYaml(url, name, { kekFile })}${extra}`, opts.route);
    if (opts.policy) await writeFile(join(dir, 'policy.yaml'), opts.policy);
    const node: ClusterNode = {
      name,
      dir,
      config,
      port,
      gateway: null,
      async start() {
        // Two nodes' roles start at once on a shared machine: more time than one gateway's 20 s.
        node.gateway = await startGateway(config, { env, readyTimeoutMs: 60_000 });
        return node.gateway;
      },
      cli: (args) => runPostern(config, args, env),
    };
    nodes.push(node);
  }
  return {
    url,
    env,
    nodes,
    async stop() {
      await Promise.all(nodes.map(async (n) => n.gateway?.stop()));
      for (const c of cleanups) await c();
    },
  };
}

/** makeCluster, then each node started in turn. */
export async function startCluster(pg: Postgres, opts: ClusterOptions = {}): Promise<Cluster> {
  const cluster = await makeCluster(pg, opts);
  try {
    for (const n of cluster.nodes) await n.start();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
