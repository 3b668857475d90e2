/** `postern ca init|issue|show`: the organisation's internal S/MIME CA. */
import { initCa, internalCa, issueFromCa, publishInternalCrl, revokeAndPublish } from '../keystore/index.js';
import { certificateToPem, KEY_TYPES, type KeyType } from '../pki/index.js';
import { parse, UsageError, type CliIo } from './args.js';
import { cliActor, output, shortDate, withStore } from './keys-common.js';

const USAGE = 'ca init [--name "Example Mail CA"] [--org ORG] [--key-type TYPE] | issue ADDRESS [--name "Display Name"] [--key-type TYPE] | show [--out FILE] | revoke ADDRESS|SERIAL [--reason keyCompromise|superseded|…]';

export async function caCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    name: { type: 'string' },
    org: { type: 'string' },
    'key-type': { type: 'string' },
    out: { type: 'string' },
    reason: { type: 'string' },
  });
  const [sub, ...args] = positionals;
  const keyType = values['key-type'];
  if (keyType !== undefined && !(KEY_TYPES as readonly string[]).includes(keyType)) throw new UsageError(`--key-type must be one of ${KEY_TYPES.join(', ')}`);
  switch (sub) {
    case 'init':
      return withStore(values.config, async (store, config) => {
        const ca = await initCa(store, {
          commonName: values.name ?? `${config.hostname} Mail CA`,
          organization: values.org,
          keyType: keyType as KeyType | undefined,
          actor: cliActor(),
        });
        io.out(`created: ${ca.fingerprint.slice(0, 16)} ${ca.subject}, valid until ${shortDate(ca.notAfter)} (a trust anchor; its key is sealed in the keystore)`);
        // Its (empty) CRL at once, so ca.crl_url answers before the first revocation.
        await publishInternalCrl(store, config, { actor: cliActor() });
        return 0;
      });
    case 'issue':
      if (args.length !== 1) throw new UsageError('ca issue needs one ADDRESS');
      return withStore(values.config, async (store, config) => {
        const cert = await issueFromCa(store, config, { address: args[0]!, name: values.name, keyType: keyType as KeyType | undefined, actor: cliActor() });
        io.out(`issued: ${cert.fingerprint.slice(0, 16)} ${cert.subject} <${cert.emails.join(', ')}>, valid until ${shortDate(cert.notAfter)}`);
        return 0;
      });
    case 'show':
      return withStore(values.config, async (store) => {
        const ca = await internalCa(store);
        if (!ca) {
          io.err('postern: there is no internal CA yet: run `postern ca init` first');
          return 1;
        }
        const pem = certificateToPem(ca.der);
        await output(io, values.out, pem, false);
        return 0;
      });
    case 'revoke':
      if (args.length !== 1) throw new UsageError('ca revoke needs one ADDRESS or SERIAL');
      return withStore(values.config, async (store, config) => {
        const revoked = await revokeAndPublish(store, config, args[0]!, { reason: values.reason, actor: cliActor() });
        for (const r of revoked) {
          const c = r.certificate;
          io.out(`${r.status === 'added' ? 'revoked' : 'already revoked'}: serial ${c.serial} ${c.subject} <${c.emails.join(', ')}>${values.reason ? ` (${values.reason})` : ''}; the internal CA's CRL is published`);
        }
        return 0;
      });
    default:
      throw new UsageError(`unknown ca command ${JSON.stringify(sub ?? '')}; usage: postern ${USAGE}`);
  }
}
