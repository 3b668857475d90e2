/**
 * `postern crl import FILE… | list`: CRLs for offline revocation checking (a partner CA whose
 * distribution point we cannot reach, or an air-gapped gateway). Untrusted input: the CRL files;
 * each is verified against a CA certificate already in the store before it is kept.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { importCrl } from '../keystore/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor, withStore } from './keys-common.js';

const USAGE = 'crl import FILE… | list [--json]';
const when = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

export async function crlCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const [sub, ...args] = positionals;
  switch (sub) {
    case 'import':
      if (!args.length) throw new UsageError('crl import needs at least one FILE');
      return withStore(values.config, async (store) => {
        let failed = 0;
        for (const file of args) {
          try {
            const r = await importCrl(store, await readFile(file), { source: `import:${basename(file)}`, actor: cliActor() });
            const verb = r.status === 'older' ? 'not imported (older than the one held)' : r.status === 'updated' ? 'updated' : 'imported';
            io.out(`${verb}: ${file}: ${r.crl.issuer}, ${r.crl.entries} revoked, next update ${when(r.crl.nextUpdate)} (verified with ${r.issuer.fingerprint.slice(0, 16)})`);
          } catch (err) {
            failed++;
            io.err(`postern: ${file}: ${(err as Error).message}`);
          }
        }
        return failed ? 1 : 0;
      });
    case 'list':
      return withStore(values.config, async (store) => {
        const crls = await store.listCrls();
        const now = Date.now();
        if (values.json) {
          io.out(JSON.stringify(crls.map(({ der: _der, ...c }) => ({ ...c, expired: !!c.nextUpdate && c.nextUpdate.getTime() < now }))));
          return 0;
        }
        if (!crls.length) io.out('no CRLs imported');
        for (const c of crls) {
          const expired = c.nextUpdate && c.nextUpdate.getTime() < now ? ' EXPIRED' : '';
          io.out(`${c.issuer}  this ${when(c.thisUpdate)}  next ${when(c.nextUpdate)}${expired}  ${c.entries} revoked  ${c.source}${c.crlNumber ? `  #${c.crlNumber}` : ''}`);
        }
        return 0;
      });
    default:
      throw new UsageError(`unknown crl command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  }
}
