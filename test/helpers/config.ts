import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { checkConfig } from '../../src/config/index.js';
import { DEFAULT_COVER_TEXT } from '../../src/config/pdf.js';
import { DEFAULT_NOTICE_SUBJECT, DEFAULT_NOTICE_TEXT } from '../../src/config/webmail.js';
import type { Config } from '../../src/config/types.js';

/**
 * For config tests: each test gets a temporary folder with an empty policy.yaml; `check(yaml)`
 * writes postern.yaml there and validates it as `postern check` does.
 */
export function yamlConfigChecker(): { dir: () => string; check: (yaml: string) => ReturnType<typeof checkConfig> } {
  let dir = '';
  let cleanup = async () => undefined as void;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeFile(join(dir, 'policy.yaml'), 'rules: []\n');
  });
  afterEach(() => cleanup());
  return {
    dir: () => dir,
    check: async (yaml) => {
      const file = join(dir, 'postern.yaml');
      await writeFile(file, yaml);
      return checkConfig(file);
    },
  };
}

/** A temporary data dir, removed by the returned cleanup. */
export async function tempDir(prefix = 'postern-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/**
 * A valid Config for tests that do not go through the YAML loader: listens on 127.0.0.1 with an
 * ephemeral port, spool in `dataDir`, mail to anything delivered to a maildir inside it.
 */
export function testConfig(dataDir: string, over: DeepPartial<Config> = {}): Config {
  const base: Config = {
    file: join(dataDir, 'postern.yaml'),
    hostname: 'gw.test.example',
    data_dir: dataDir,
    internal_domains: ['example.com'],
    trusted_networks: ['127.0.0.0/8', '::1/128'],
    smtp: {
      listen: [{ host: '127.0.0.1', port: 0 }],
      max_message_size: 10 * 1024 * 1024,
      // No free-space check by default: the machine's /tmp is not the system under test.
      min_free_space: 0,
      max_recipients: 100,
      idle_timeout: 60_000,
      max_connections: 100,
      max_connections_per_client: 10,
      data_timeout: 600_000,
      session_timeout: 1_800_000,
      bare_newline: 'reject',
      reverse_dns: false,
      checkpoint: false,
    },
    relay: {
      routes: [{ pattern: '*', target: { kind: 'maildir', path: join(dataDir, 'maildir') } }],
      retry: [60_000, 300_000],
      max_queue_lifetime: 5 * 86_400_000,
      concurrency: 20,
      delay_warning: 4 * 3_600_000,
      bounce_size_limit: 50_000,
      connection_cache_time: 2_000,
      reply_rules: [],
      own_addresses: [],
      tls: 'may',
    },
    keystore: { sqlite: join(dataDir, 'postern.db') },
    cluster: { node: 'test-node', heartbeat: 10_000 },
    ca: { key_type: 'rsa-2048', validity: 730 * 86_400_000 },
    smime: { cipher: 'aes-256-cbc', prefer_gcm: true, rsa_padding: 'pkcs1', sign_hash: 'sha-256', signature: 'detached', encrypt_to_sender: false, allow_sha1: false, auto_import: true, strip_remote_content: true },
    header_protection: { mode: 'obscure', legacy_display: true },
    revocation: { mode: { inbound: 'soft', outbound: 'soft' }, timeout: 5_000, ocsp: true, crl: true, cache_ttl: 3_600_000 },
    kek: { file: join(dataDir, 'kek.key') },
    discovery: { wkd: { domains: [], timeout: 5_000 }, hkp: { servers: [] }, cache_ttl: 3_600_000, negative_ttl: 600_000, max_key_size: 512 * 1024, autocrypt: true },
    portal: {
      listen: [],
      wkd: true,
      index_ttl: 60_000,
      organisation: 'Example Ltd',
      max_upload: 25 * 1024 * 1024,
      max_uploads: 10,
      session_idle: 15 * 60_000,
      session_max: 8 * 3_600_000,
      lockout: { account: 5, client: 20, backoff: 60_000, max_backoff: 3_600_000 },
    },
    admin: {
      listen: [],
      session_idle: 15 * 60_000,
      session_max: 8 * 3_600_000,
      lockout: { account: 5, client: 20, backoff: 60_000, max_backoff: 3_600_000 },
      metrics_from: ['127.0.0.0/8', '::1/128'],
    },
    pdf: { cipher: 'aes-256', password_scope: 'pair', reply_validity: 90 * 86_400_000, organisation: 'Example Ltd', cover_text: DEFAULT_COVER_TEXT, reply_label: 'Reply', max_attachments: 1000 },
    webmail: { retention: 90 * 86_400_000, notice_subject: DEFAULT_NOTICE_SUBJECT, notice_text: DEFAULT_NOTICE_TEXT, notice_from: 'postmaster@gw.test.example' },
    ldap: { servers: [], cache_ttl: 900_000, negative_ttl: 120_000, retry_after: 30_000, on_failure: 'defer' },
    policy: { file: join(dataDir, 'policy.yaml'), document: { rules: [] } },
    workers: 1,
    worker: { transform_timeout: 60_000, retry: 60_000, max_decompressed_size: 20 * 1024 * 1024 },
    user: 'postern',
    import_environment: ['PATH', 'TZ', 'LANG', 'LC_ALL', 'LC_CTYPE', 'NODE_EXTRA_CA_CERTS', 'POSTERN_LOG_LEVEL'],
    log: { level: 'warn' },
  };
  return {
    ...base,
    ...over,
    smtp: { ...base.smtp, ...(over.smtp ?? {}) } as Config['smtp'],
    relay: { ...base.relay, ...(over.relay ?? {}) } as Config['relay'],
    smime: { ...base.smime, ...(over.smime ?? {}) } as Config['smime'],
    revocation: { ...base.revocation, ...(over.revocation ?? {}), mode: { ...base.revocation.mode, ...(over.revocation?.mode ?? {}) } } as Config['revocation'],
    log: { ...base.log, ...(over.log ?? {}) } as Config['log'],
    discovery: { ...base.discovery, ...(over.discovery ?? {}) } as Config['discovery'],
    portal: { ...base.portal, ...(over.portal ?? {}) } as Config['portal'],
    admin: { ...base.admin, ...(over.admin ?? {}) } as Config['admin'],
    webmail: { ...base.webmail, ...(over.webmail ?? {}) } as Config['webmail'],
    ldap: { ...base.ldap, ...(over.ldap ?? {}) } as Config['ldap'],
  } as Config;
}
