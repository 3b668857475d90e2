#!/usr/bin/env node
/**
 * Composition root: argv → command. Adapters (spool, smtp-server, transports) are built in the
 * commands this dispatches to; nothing else in src/ reads argv or exits the process.
 */
import { fileURLToPath } from 'node:url';
import { runCli } from './cli/index.js';

const code = await runCli(process.argv.slice(2), fileURLToPath(import.meta.url));
process.exitCode = code;
// Roles and the supervisor may hold timers or sockets; exit once stdout is flushed.
process.stdout.write('', () => process.exit(code));
