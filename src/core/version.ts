/**
 * Postern's version, from package.json (two levels up from both src/core and dist/core, and
 * shipped in the image): what backups record and the admin role reports. Read once, at load.
 */
import { readFileSync } from 'node:fs';

export const POSTERN_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
