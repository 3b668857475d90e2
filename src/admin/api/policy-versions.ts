/**
 * Activating a policy through the admin API, the versions kept of it, and rolling back to one.
 * An activation is checked as the gateway checks the file, refused (409) when the file changed
 * since the caller read it, written atomically, kept as a version, audited with the texts before
 * and after, and then loaded by the running gateway through the supervisor.
 *
 * The audit record holds both whole texts rather than a diff: it stands alone in an export (no
 * version files needed to read it, and versions are pruned), and a diff is made from it at will.
 */
import { isStoreUnavailable } from '../../keystore/sql/types.js';
import { activatePolicy, FilePolicyVersions, followClusterPolicy, isClusterStore, POLICY_VERSION_ID, PolicyLockedError, policyVersionsDir, pushPolicy, readPolicyFile, type ActivateRequest, type ActivateResult, type PolicyVersion, type PolicyVersionStore } from '../../policy/index.js';
import { ApiError, ok, type AdminContext, type ApiRequest, type ApiResult, type ApiRoute } from '../routes.js';
import { invalidPolicy, policyHashSchema, policyText } from './policy.js';

/** Where the versions of this gateway's policy are kept: the cluster's database (issue 19), or data_dir. */
export const policyVersionsOf = (ctx: AdminContext): PolicyVersionStore => ctx.policyVersions ?? new FilePolicyVersions(policyVersionsDir(ctx.config()));

/**
 * A single gateway activates its file. A cluster node pushes the text as the cluster's newest
 * version, then writes its own file at once (as its follower would a moment later) so the reload
 * that follows takes it; the other nodes follow by themselves.
 */
async function activateHere(ctx: AdminContext, versions: PolicyVersionStore, req: ActivateRequest): Promise<ActivateResult> {
  const file = ctx.config().policy.file;
  if (!isClusterStore(versions)) return activatePolicy(file, versions, req);
  const r = await pushPolicy(file, versions, req).catch((err: unknown) => {
    if (isStoreUnavailable(err)) throw new ApiError(503, 'the cluster database cannot be reached: nothing activated; try again when it is back');
    throw err;
  });
  if (r.outcome === 'activated') {
    // Kept in the cluster whatever happens here: this node's follower retries a file it could not write.
    await followClusterPolicy(file, versions, new FilePolicyVersions(policyVersionsDir(ctx.config()))).catch((err: Error) =>
      ctx.log.error({ event: 'policy.cluster_check_failed', reason: err.message }, "the pushed policy is the cluster's; this node's file follows it at the next check"),
    );
  }
  return r;
}

const versionJson = (v: PolicyVersion, activeHash?: string) => ({
  id: v.id,
  time: v.time.toISOString(),
  by: v.by,
  hash: v.hash,
  size: v.size,
  ...(activeHash !== undefined ? { active: v.hash === activeHash } : {}),
});

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: POLICY_VERSION_ID.source } } };

/** Activate `text`, then reload; the answer says whether the running gateway took it. */
async function activate(req: ApiRequest, ctx: AdminContext, text: string, base: string | null, action: string, detail?: string): Promise<ApiResult> {
  const r = await activateHere(ctx, policyVersionsOf(ctx), { text, base, by: req.caller.account, groupsBesideFile: true }).catch((err: unknown) => {
    if (err instanceof PolicyLockedError) throw new ApiError(409, err.message);
    throw err;
  });
  if (r.outcome === 'invalid') throw invalidPolicy(r.problems);
  if (r.outcome === 'stale') throw new ApiError(409, 'the policy changed since it was read (someone else activated or edited it): read it again and redo the change', { hash: r.current });
  if (r.outcome === 'unchanged') return ok({ outcome: 'unchanged', version: versionJson(r.version), reloaded: false });
  await ctx.audit(req.caller, { action, object: 'policy', detail: `version ${r.version.id}${detail ? `; ${detail}` : ''}`, before: r.before, after: text });
  // The file is in place either way; a reload refused (postern.yaml broken since the start: the
  // supervisor logs why) keeps the old policy running until the config is fixed — the caller must know.
  const reloaded = await ctx.supervisor.reload();
  return ok({ outcome: 'activated', version: versionJson(r.version), rules: r.policy.rules.length, reloaded });
}

export const policyVersionRoutes: ApiRoute[] = [
  {
    method: 'POST',
    url: '/policy/activate',
    permission: 'policy.change',
    summary: 'Activate a policy text edited from the version `hash`: validated, written atomically, the old one kept, the gateway reloaded (409 when the file changed since)',
    tag: 'policy',
    schema: { body: { type: 'object', required: ['text', 'hash'], additionalProperties: false, properties: { text: policyText, hash: policyHashSchema } } },
    async handler(req, ctx) {
      const { text, hash } = req.body as { text: string; hash: string };
      return activate(req, ctx, text, hash, 'policy.activate');
    },
    example: { body: { text: 'rules:\n  - name: sign outbound\n    when: { direction: outbound }\n    do: [sign]\n', hash: '0'.repeat(64) } },
  },
  {
    method: 'GET',
    url: '/policy/versions',
    permission: 'policy.read',
    summary: 'The policies kept, newest first: when, who activated each (null: found in the file), and which is in force',
    tag: 'policy',
    async handler(_req, ctx) {
      const [versions, current] = await Promise.all([policyVersionsOf(ctx).list(), readPolicyFile(ctx.config().policy.file)]);
      return ok({ versions: versions.map((v) => versionJson(v, current.hash)) });
    },
    example: {},
  },
  {
    method: 'GET',
    url: '/policy/versions/:id',
    permission: 'policy.read',
    summary: 'One kept policy with its text',
    tag: 'policy',
    schema: { params: idParams },
    async handler(req, ctx) {
      const v = await policyVersionsOf(ctx).read(req.params.id!);
      if (!v) throw new ApiError(404, `no policy version ${req.params.id}`);
      return ok({ ...versionJson(v.version), text: v.text });
    },
    example: { params: { id: '20260101T000000000Z-000000000000' } },
  },
  {
    method: 'POST',
    url: '/policy/versions/:id/activate',
    permission: 'policy.change',
    summary: 'Roll back: activate a kept policy again (with `hash`, only if the file is still that version)',
    tag: 'policy',
    schema: { params: idParams, body: { type: 'object', additionalProperties: false, properties: { hash: policyHashSchema } } },
    async handler(req, ctx) {
      const v = await policyVersionsOf(ctx).read(req.params.id!);
      if (!v) throw new ApiError(404, `no policy version ${req.params.id}`);
      const { hash } = (req.body ?? {}) as { hash?: string };
      return activate(req, ctx, v.text, hash ?? null, 'policy.rollback', `from version ${v.version.id}`);
    },
    example: { params: { id: '20260101T000000000Z-000000000000' }, body: {} },
  },
];
