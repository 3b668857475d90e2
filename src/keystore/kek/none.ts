/** A KEK for code that must never unseal anything (the Internet-facing portal, the backup's audit record): every use fails. */
import { KekError, type Kek } from './types.js';

export const NO_KEK: Kek = {
  id: 'none',
  algorithm: 'none',
  wrap: async () => {
    throw new KekError('this role holds no KEK: it cannot seal keys');
  },
  unwrap: async () => {
    throw new KekError('this role holds no KEK: private keys are out of its reach');
  },
  close: async () => undefined,
};
