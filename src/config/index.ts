/**
 * config: postern.yaml (and the policy file it names) → a validated, frozen Config, with every
 * problem reported by file, line, column and key. Untrusted input: the admin's files (typos, wrong
 * types, YAML errors). Secrets: none — secrets are named by environment variable or file, never
 * written in postern.yaml.
 */
export { loadConfig, checkConfig, checkConfigText, loadPolicyDocument, type CheckResult } from './load.js';
export { parseSize, parseDuration } from './units.js';
export { redactConfig, REDACTED } from './redact.js';
export type { Config, Route, RouteTarget, TlsLevel, ListenAddress, SmtpConfig, RelayConfig, KekConfig, LogConfig } from './types.js';
export type { DiscoveryConfig, HkpServerConfig, PortalConfig } from './types.js';
/** YAML with positions, for the policy compiler's line-accurate problems. */
export { parseYaml, problemAt, type ParsedYaml } from './load.js';
