/**
 * `postern kek rotate`: re-wrap every data key in the keystore under a new KEK, in one
 * transaction; afterwards only the new KEK is needed and the config must name it. The new KEK is
 * given by flags (a file, a passphrase variable, or a PKCS#11 token and key label); a PKCS#11 key
 * is created in the token with --create-key when the label does not exist yet.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/index.js';
import type { KekConfig } from '../config/types.js';
import { createPkcs11Key, openKek, openKeyStore, saltFile } from '../keystore/index.js';
import { DEFAULT_CONFIG, parse, UsageError, type CliIo } from './args.js';
import { cliActor } from './keys-common.js';

const USAGE =
  'kek rotate (--to-file PATH | --to-passphrase-env VAR | --to-pkcs11-module LIB --to-token LABEL --to-pin-env VAR --to-key-label LABEL [--create-key])';

export async function kekCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, {
    'to-file': { type: 'string' },
    'to-passphrase-env': { type: 'string' },
    'to-pkcs11-module': { type: 'string' },
    'to-token': { type: 'string' },
    'to-pin-env': { type: 'string' },
    'to-key-label': { type: 'string' },
    'create-key': { type: 'boolean' },
  });
  if (positionals[0] !== 'rotate' || positionals.length !== 1) throw new UsageError(`usage: postern ${USAGE}`);
  const target = newKekConfig(values);
  const config = await loadConfig(values.config ?? DEFAULT_CONFIG);
  if ('pkcs11' in target && values['create-key']) {
    await createPkcs11Key(target.pkcs11);
    io.out(`created: AES-256 key "${target.pkcs11.key_label}" in token "${target.pkcs11.token}" (non-extractable)`);
  }
  const store = await openKeyStore(config, { createKek: false });
  try {
    const to = await openKek(target, { saltFile: saltFile(config), create: 'file' in target });
    const from = store.kekId;
    if (to.id === from) {
      await to.close();
      io.err(`postern: the new KEK is the one in use (${from})`);
      return 1;
    }
    const n = await store.rotateKek(to, cliActor());
    io.out(`rotated: ${n} key${n === 1 ? '' : 's'} re-wrapped from ${from} to ${to.id}`);
    io.out(`now set in ${config.file}:  kek: ${JSON.stringify(target)}`);
    return 0;
  } finally {
    await store.close();
  }
}

function newKekConfig(v: Record<string, string | boolean | undefined>): KekConfig {
  const file = v['to-file'] as string | undefined;
  const pass = v['to-passphrase-env'] as string | undefined;
  const mod = v['to-pkcs11-module'] as string | undefined;
  const chosen = [file, pass, mod].filter((x) => x !== undefined).length;
  if (chosen !== 1) throw new UsageError(`name exactly one new KEK; usage: postern ${USAGE}`);
  if (file) return { file: resolve(file) };
  if (pass) return { passphrase_env: pass };
  const token = v['to-token'] as string | undefined;
  const pin = v['to-pin-env'] as string | undefined;
  const label = v['to-key-label'] as string | undefined;
  if (!token || !pin || !label) throw new UsageError('a PKCS#11 KEK needs --to-token, --to-pin-env and --to-key-label');
  return { pkcs11: { module: resolve(mod!), token, pin_env: pin, key_label: label } };
}
