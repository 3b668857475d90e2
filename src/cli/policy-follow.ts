/**
 * The supervisor's policy follower for a cluster node (`postern start` with keystore.postgres):
 * the node's policy file is kept a copy of the cluster's newest version (policy/follow.ts), and
 * each new copy is loaded by the roles at once through `onFollowed` (a reload), not after the
 * policy file watcher's settling pause.
 */
import type { Config } from '../config/types.js';
import { isStoreUnavailable } from '../keystore/sql/types.js';
import type { Logger } from '../log/index.js';
import { FilePolicyVersions, PolicyFollower, policyVersionsDir, type DbPolicyVersions, type PolicyVersion } from '../policy/index.js';
import { openClusterPolicyVersions, type OpenedPolicyVersions } from './cluster-policy.js';

export interface RunningFollower {
  stop(): Promise<void>;
}

/**
 * Start following (after one check, so a node starts on the cluster's policy when it can reach
 * the database); null for a single gateway. An unreachable database does not stop the node: it
 * runs on its file and the follower keeps trying.
 */
export async function followPolicyWhileRunning(config: Config, log: Logger, onFollowed: (v: PolicyVersion) => void): Promise<RunningFollower | null> {
  const pg = config.keystore.postgres;
  if (!pg) return null;
  let opened: OpenedPolicyVersions<DbPolicyVersions>;
  try {
    opened = await openClusterPolicyVersions(pg, config.cluster.node, 'supervisor', { migrate: true });
  } catch (err) {
    if (!isStoreUnavailable(err)) throw err;
    // Not migrated now: the roles' keystore openers migrate when the database is back.
    opened = await openClusterPolicyVersions(pg, config.cluster.node, 'supervisor');
  }
  const follower = new PolicyFollower({
    file: config.policy.file,
    versions: opened.versions,
    local: new FilePolicyVersions(policyVersionsDir(config)),
    log,
    intervalMs: config.cluster.heartbeat,
    onFollowed,
  });
  await follower.start();
  return {
    async stop() {
      await follower.stop();
      await opened.close();
    },
  };
}
