/**
 * Directory facts for conditions on groups and attributes, behind one interface: the static YAML
 * file shipped now, LDAP with the directory issue. Group members may be addresses or globs
 * ("*@hr.example.com"); look-ups are case-insensitive.
 */
import { readFile } from 'node:fs/promises';
import { parseYaml, problemAt } from '../config/index.js';
import { ConfigError, type ConfigProblem } from '../core/index.js';

export interface Directory {
  groupsOf(address: string): Promise<string[]>;
  attributesOf(address: string): Promise<Record<string, string[]>>;
}

export const emptyDirectory: Directory = {
  groupsOf: async () => [],
  attributesOf: async () => ({}),
};

const globRe = (g: string) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');

/**
 * groups.yaml:
 *   groups: { Board: [ceo@example.com, "*@board.example.com"] }
 *   users:  { alice@example.com: { department: Finance, title: [CFO, Director] } }
 */
export async function loadStaticDirectory(file: string): Promise<Directory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 0, column: 0, key: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const yaml = parseYaml(text, file);
  if (!yaml.ok) throw new ConfigError(yaml.problems);
  const doc = (yaml.doc.toJS() ?? {}) as Record<string, unknown>;
  const problems: ConfigProblem[] = [];
  const groups: { name: string; members: RegExp[] }[] = [];
  const users = new Map<string, Record<string, string[]>>();
  for (const k of Object.keys(doc)) if (k !== 'groups' && k !== 'users') problems.push(problemAt(yaml, file, [k], 'unknown key (expected groups, users)', true));
  if (doc.groups !== undefined) {
    if (typeof doc.groups !== 'object' || doc.groups === null || Array.isArray(doc.groups)) problems.push(problemAt(yaml, file, ['groups'], 'expected a mapping of group name → list of addresses'));
    else {
      for (const [name, members] of Object.entries(doc.groups)) {
        const list = Array.isArray(members) ? members : [members];
        if (list.some((m) => typeof m !== 'string')) problems.push(problemAt(yaml, file, ['groups', name], 'expected a list of addresses or patterns like "*@hr.example.com"'));
        groups.push({ name, members: list.filter((m): m is string => typeof m === 'string').map(globRe) });
      }
    }
  }
  if (doc.users !== undefined) {
    if (typeof doc.users !== 'object' || doc.users === null || Array.isArray(doc.users)) problems.push(problemAt(yaml, file, ['users'], 'expected a mapping of address → attributes'));
    else {
      for (const [address, attrs] of Object.entries(doc.users)) {
        if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) {
          problems.push(problemAt(yaml, file, ['users', address], 'expected a mapping of attribute → value(s)'));
          continue;
        }
        users.set(address.toLowerCase(), Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k.toLowerCase(), (Array.isArray(v) ? v : [v]).map(String)])));
      }
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    groupsOf: async (address) => groups.filter((g) => g.members.some((m) => m.test(address))).map((g) => g.name),
    attributesOf: async (address) => users.get(address.toLowerCase()) ?? {},
  };
}
