/**
 * The policies that were in force, kept so an admin can see what changed and roll back. Behind one
 * interface: files in data_dir/policy-versions/ now; a shared table when several nodes share their
 * policy (issue 19, PostgreSQL).
 *
 * Why data_dir and not beside the policy file: the policy's directory is the admin's (often
 * /etc/postern, under configuration management, watched by the gateway for edits), while the
 * versions are state the gateway writes, like the spool and the keystore; data_dir is where the
 * gateway may write and what is backed up with the keystore.
 *
 * Each version is two files: `<id>.yaml`, the policy text byte for byte (an admin can diff it or
 * copy it back by hand), and `<id>.json`, who activated it. The id is `<UTC time>-<hash prefix>`,
 * so names sort by time and never hold anything a caller chose.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from './durable-file.js';

/** The hash a policy text is known by: what an edit started from, what activation compares. */
export const policyHash = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

export interface PolicyVersion {
  /** `20261203T124501123Z-0123456789ab`: when it was kept, and its text's hash prefix. */
  id: string;
  time: Date;
  /** The account that activated it; null for a text found in the file (edited outside Postern). */
  by: string | null;
  /** policyHash of its text. */
  hash: string;
  size: number;
}

export interface PolicyVersionStore {
  /** Newest first. */
  list(): Promise<PolicyVersion[]>;
  read(id: string): Promise<{ version: PolicyVersion; text: string } | null>;
  /** Keep `text` as the newest version, unless it already is the newest; then the older ones beyond the limit go. */
  keep(text: string, by: string | null, time?: Date): Promise<PolicyVersion>;
}

/** What an id must look like before it is joined to a path: time and hash only (no separators, no dots). */
export const POLICY_VERSION_ID = /^\d{8}T\d{9}Z-[0-9a-f]{12}$/;

export const DEFAULT_KEPT_VERSIONS = 50;

export const policyVersionsDir = (config: { data_dir: string }) => join(config.data_dir, 'policy-versions');

export class FilePolicyVersions implements PolicyVersionStore {
  constructor(
    readonly dir: string,
    readonly limit = DEFAULT_KEPT_VERSIONS,
  ) {}

  async list(): Promise<PolicyVersion[]> {
    const ids = await this.ids();
    const out: PolicyVersion[] = [];
    for (const id of ids) {
      const v = await this.info(id);
      if (v) out.push(v);
    }
    return out;
  }

  async read(id: string): Promise<{ version: PolicyVersion; text: string } | null> {
    if (!POLICY_VERSION_ID.test(id)) return null;
    const text = await readFile(join(this.dir, `${id}.yaml`), 'utf8').catch(notFound);
    if (text === null) return null;
    const version = await this.info(id, text);
    return version && { version, text };
  }

  async keep(text: string, by: string | null, time = new Date()): Promise<PolicyVersion> {
    const hash = policyHash(text);
    const [newest] = await this.ids();
    const last = newest ? await this.info(newest) : null;
    if (last && last.hash === hash) return last;
    // Strictly after the newest, so the order of the names is the order they were kept in (a
    // file's modification time, say, can be older than the version activated before it).
    if (last && time.getTime() <= last.time.getTime()) time = new Date(last.time.getTime() + 1);
    const id = `${time.toISOString().replace(/[-:.]/g, '')}-${hash.slice(0, 12)}`;
    const version: PolicyVersion = { id, time, by, hash, size: Buffer.byteLength(text) };
    // The text first: a version without its record is listed (by unknown), a record without its text never.
    await writeFileDurably(join(this.dir, `${id}.yaml`), Buffer.from(text, 'utf8'), { mode: 0o600, dirMode: 0o700 });
    await writeFileDurably(join(this.dir, `${id}.json`), Buffer.from(JSON.stringify({ by, time: time.toISOString() }), 'utf8'), { mode: 0o600, dirMode: 0o700 });
    for (const old of (await this.ids()).slice(this.limit)) {
      await rm(join(this.dir, `${old}.json`), { force: true });
      await rm(join(this.dir, `${old}.yaml`), { force: true });
    }
    return version;
  }

  /** Ids of the kept texts, newest first. */
  private async ids(): Promise<string[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    return names
      .filter((n) => n.endsWith('.yaml'))
      .map((n) => n.slice(0, -'.yaml'.length))
      .filter((id) => POLICY_VERSION_ID.test(id))
      .sort()
      .reverse();
  }

  private async info(id: string, text?: string): Promise<PolicyVersion | null> {
    const body = text ?? (await readFile(join(this.dir, `${id}.yaml`), 'utf8').catch(notFound));
    if (body === null) return null;
    // The record says who; the hash is always the text's own (a record is never trusted for it).
    const record = await readFile(join(this.dir, `${id}.json`), 'utf8').then(
      (s) => JSON.parse(s) as { by?: unknown },
      () => ({}) as { by?: unknown },
    );
    return { id, time: timeOf(id), by: typeof record.by === 'string' ? record.by : null, hash: policyHash(body), size: Buffer.byteLength(body) };
  }
}

function timeOf(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id)!;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

function notFound(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}
