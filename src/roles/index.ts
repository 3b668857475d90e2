/**
 * roles: one entry point per role — smtpd.ts, worker.ts, relay.ts, portal.ts, each a script the
 * supervisor starts as `node <roleEntry(role)> -c FILE [--user UID:GID]` — so each process loads
 * only what its role needs: smtpd and the portal never load the keystore or a KEK, and, started
 * as root, run as the unprivileged `user:` (the supervisor decides, by ROLE_PRIVILEGES). run.ts is
 * the life they share: config, start, privilege drop, IPC, stop.
 *
 * Untrusted input: none here (each role's module owns its own). Secrets: none here; the worker's
 * entry opens the keystore with the KEK variables only it is given.
 */
import { fileURLToPath } from 'node:url';
import type { RoleName } from '../supervisor/index.js';

/** The compiled entry point of `role`, beside this file in dist/roles/. */
export const roleEntry = (role: RoleName): string => fileURLToPath(new URL(`./${role}.js`, import.meta.url));
