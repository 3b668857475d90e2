/**
 * The policy in the admin API: the text in force, validating a draft (every problem with line and
 * column, as `postern check` reports them) and explaining a message against the policy in force
 * or a draft (what `postern policy explain` prints). Activation and versions: policy-versions.ts.
 *
 * Untrusted input: drafts, addresses, header fields and messages from the caller's browser, which
 * a hostile page may drive: bounded by the schemas, compiled and never run before they validate.
 */
import { ConfigError, parseAddress, type ConfigProblem } from '../../core/index.js';
import { checkPolicyText, loadPolicy, readPolicyFile, type CompiledPolicy } from '../../policy/index.js';
import { describedMessage, explainMessage, explanationJson, explanationLines, messageFileFacts } from '../../worker/explain.js';
import { ApiError, ok, type AdminContext, type ApiRoute, type JsonSchema } from '../routes.js';

/** A policy file of a few thousand rules is some hundred KiB; more is not a policy but an attack. */
export const MAX_POLICY_TEXT = 512 * 1024;
const MAX_MESSAGE = 512 * 1024;

export const policyText: JsonSchema = { type: 'string', maxLength: MAX_POLICY_TEXT, description: 'policy YAML, as policy.yaml would hold it' };
export const policyHashSchema: JsonSchema = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'hash of the policy text an edit started from (GET /policy)' };
const address: JsonSchema = { type: 'string', maxLength: 320 };

/** Problems as the API reports them: where, which key, what — the fields of `postern check`'s lines. */
export const problemsOf = (problems: readonly ConfigProblem[]) => problems.map(({ file, line, column, key, message }) => ({ file, line, column, key, message }));

/** A draft that does not validate: 400 with every problem. */
export function invalidPolicy(problems: readonly ConfigProblem[]): ApiError {
  return new ApiError(400, `the policy does not validate: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { problems: problemsOf(problems) });
}

/** The address as smtpd would store it (the plan is for that form), or 400 with the reason. */
function canonical(a: string, field: string): string {
  if (a === '') return a;
  const c = parseAddress(a);
  if (!c.ok) throw new ApiError(400, `${field}: ${c.detail}`);
  return c.address;
}

async function policyFor(ctx: AdminContext, draft: string | undefined): Promise<CompiledPolicy> {
  const config = ctx.config();
  if (draft === undefined) {
    try {
      return await loadPolicy(config);
    } catch (err) {
      // The file in force was broken by hand: the gateway runs the last good one, explain cannot.
      if (err instanceof ConfigError) throw new ApiError(409, 'the policy file does not validate; explain against a draft instead', { problems: problemsOf(err.problems) });
      throw err;
    }
  }
  // A draft is read as if it were the policy file: its groups: path is relative to that.
  const r = await checkPolicyText(draft, config.policy.file, { groupsBesideFile: true });
  if (!r.ok) throw invalidPolicy(r.problems);
  return r.policy;
}

interface ExplainBody {
  from: string;
  to: string[];
  subject?: string;
  headers?: { name: string; value: string }[];
  message?: string;
  client?: 'trusted' | 'untrusted';
  text?: string;
}

export const policyRoutes: ApiRoute[] = [
  {
    method: 'GET',
    url: '/policy',
    permission: 'policy.read',
    summary: 'The policy in force: its YAML text, its hash (the version an edit starts from) and when the file changed',
    tag: 'policy',
    async handler(_req, ctx) {
      const p = await readPolicyFile(ctx.config().policy.file);
      return ok({ file: p.file, hash: p.hash, modified: p.modified.toISOString(), size: Buffer.byteLength(p.text), text: p.text });
    },
    example: {},
  },
  {
    method: 'POST',
    url: '/policy/validate',
    permission: 'policy.read',
    summary: 'Validate a policy draft: every problem with line and column, as postern check reports them',
    tag: 'policy',
    schema: { body: { type: 'object', required: ['text'], additionalProperties: false, properties: { text: policyText } } },
    async handler(req, ctx) {
      const { text } = req.body as { text: string };
      const r = await checkPolicyText(text, ctx.config().policy.file, { groupsBesideFile: true });
      return ok(r.ok ? { valid: true, rules: r.policy.rules.length, problems: [] } : { valid: false, problems: problemsOf(r.problems) });
    },
    example: { body: { text: 'rules:\n  - name: sign outbound\n    when: { direction: outbound }\n    do: [sign]\n' } },
  },
  {
    method: 'POST',
    url: '/policy/explain',
    permission: 'policy.read',
    summary: 'What the policy in force (or a draft) would do with a message, per recipient, as postern policy explain prints it',
    tag: 'policy',
    schema: {
      body: {
        type: 'object',
        required: ['from', 'to'],
        additionalProperties: false,
        properties: {
          from: { ...address, description: 'envelope sender; "" for <>' },
          to: { type: 'array', minItems: 1, maxItems: 100, items: address },
          subject: { type: 'string', maxLength: 998 },
          headers: {
            type: 'array',
            maxItems: 100,
            items: {
              type: 'object',
              required: ['name', 'value'],
              additionalProperties: false,
              // A field name is printable ASCII without colon (RFC 5322 §3.6.8).
              properties: { name: { type: 'string', pattern: '^[!-9;-~]{1,76}$' }, value: { type: 'string', maxLength: 998 } },
            },
          },
          message: { type: 'string', maxLength: MAX_MESSAGE, description: 'a whole message (headers and body); subject and headers are then ignored' },
          client: { type: 'string', enum: ['trusted', 'untrusted'] },
          text: { ...policyText, description: 'a draft to explain against instead of the policy in force' },
        },
      },
    },
    async handler(req, ctx) {
      const b = req.body as ExplainBody;
      const from = canonical(b.from, 'from');
      const to = b.to.map((a, i) => canonical(a, `to[${i}]`));
      const config = ctx.config();
      const policy = await policyFor(ctx, b.text);
      const { message, body } = b.message !== undefined ? messageFileFacts(Buffer.from(b.message, 'utf8')) : describedMessage(b.subject, b.headers ?? []);
      const e = await explainMessage({ from, to, message, body, clientTrusted: b.client !== 'untrusted' }, { config, policy, store: ctx.store, portal: ctx.portal });
      // `printed`: the lines `postern policy explain` prints, for the console to show as they are.
      return ok({ ...explanationJson(e), draft: b.text !== undefined, printed: explanationLines(e) });
    },
    example: { body: { from: 'alice@example.com', to: ['bob@partner.example'], subject: 'Quarterly report' } },
  },
];
